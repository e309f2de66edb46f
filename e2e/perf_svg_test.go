package e2e

import (
	"fmt"
	"math"
	"strings"
)

// svg draws two panels against fleet size (a log axis): the wall time of
// a deploy, and the bot's CPU per host.
func (r *perfReport) svg() string {
	var xs, wall, cpu []float64
	for _, s := range r.Sim {
		xs = append(xs, float64(s.Hosts))
		wall = append(wall, s.Wall.Seconds())
		cpu = append(cpu, ms(s.BotCPU)/float64(s.Hosts))
	}
	var w strings.Builder
	fmt.Fprintf(&w, `<svg xmlns="http://www.w3.org/2000/svg" width="880" height="340" font-family="sans-serif" font-size="12">`+"\n")
	fmt.Fprintf(&w, `<rect width="880" height="340" fill="white"/>`+"\n")
	panel(&w, 0, "deploy wall time (s)", xs, wall, "#1f77b4")
	panel(&w, 440, "bot CPU per host (ms)", xs, cpu, "#d62728")
	w.WriteString("</svg>\n")
	return w.String()
}

// panel draws one plot at horizontal offset x0: y against x, x on a log
// scale, y from 0.
func panel(w *strings.Builder, x0 float64, title string, xs, ys []float64, color string) {
	const left, top, width, height = 60.0, 40.0, 340.0, 240.0
	lx := func(x float64) float64 {
		lo, hi := math.Log10(xs[0]), math.Log10(xs[len(xs)-1])
		if hi == lo {
			return x0 + left + width/2
		}
		return x0 + left + (math.Log10(x)-lo)/(hi-lo)*width
	}
	ymax := 0.0
	for _, y := range ys {
		ymax = math.Max(ymax, y)
	}
	ymax = niceCeil(ymax)
	ly := func(y float64) float64 { return top + height - y/ymax*height }
	fmt.Fprintf(w, `<text x="%.0f" y="22" font-size="14" text-anchor="middle">%s</text>`+"\n", x0+left+width/2, title)
	fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", x0+left, top, width, height)
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0+left, x0+left+width, ly(y), ly(y))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0+left-6, ly(y)+4, trimFloat(y))
	}
	var pts []string
	for i, x := range xs {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(x), ly(ys[i])))
		fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", lx(x), ly(ys[i]), color)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", lx(x), top+height+16, x)
	}
	fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), color)
	fmt.Fprintf(w, `<text x="%.0f" y="%.0f" text-anchor="middle">simulated hosts (log scale)</text>`+"\n", x0+left+width/2, top+height+34)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
