package e2e

import (
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"deploybot/e2e/scale"
	"deploybot/sal"
	"deploybot/sal/web"
)

// chromiumPath is Debian's Chromium (scripts/install-deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// TestSALWebInChromium drives the SAL page in headless Chromium the way a
// person does: type a word into the search box, submit, read the results,
// follow a permalink, read the entry. The page runs no JavaScript; the
// test only uses the browser's DOM to read what is shown.
//
// Set SAL_WEB_SCREENSHOTS to a folder to keep screenshots of the page at
// desktop and phone width.
func TestSALWebInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed at %s (scripts/install-deps.sh installs it): %v", chromiumPath, err)
		}
		t.Skipf("skipping: chromium is not installed at %s (scripts/install-deps.sh installs it)", chromiumPath)
	}

	store, err := sal.OpenSQLite(filepath.Join(t.TempDir(), "sal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	day := time.Date(2016, 4, 22, 0, 0, 0, 0, time.UTC)
	for _, e := range []sal.Entry{
		{Time: day.Add(-14 * time.Hour), Nick: "carol", Project: "releng", Channel: "#wikimedia-releng", Message: "beta cluster rebooted"},
		{Time: day.Add(5*time.Hour + 2*time.Minute), Nick: "alice", Project: "production", Channel: "#wikimedia-operations", Message: "restarted citoid on scb1001"},
		{Time: day.Add(5*time.Hour + 10*time.Minute), Nick: "mallory", Project: "production", Channel: "#wikimedia-operations", Message: `<script>document.title="pwned"</script> "><img src=x onerror=alert(1)>`},
		{Time: day.Add(5*time.Hour + 16*time.Minute), Nick: "bd808", Project: "production", Channel: "#wikimedia-operations", Message: "deploying citoid 5d6e7f8 for T12345, see https://gerrit.example.org/r/c/T999/5d6e7f8a"},
		{Time: day.Add(7 * time.Hour), Nick: "dave", Project: "production", Channel: "#wikimedia-operations", Message: "depooled mw1234 for kernel upgrade"},
	} {
		e.Source = sal.SourceIRC
		if err := store.Append(t.Context(), &e); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(web.New(web.Options{
		Store:   store,
		TaskURL: "https://phabricator.wikimedia.org/%s",
		Now:     func() time.Time { return day.Add(12 * time.Hour) },
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(t.Context(), scale.D(90*time.Second))
	defer cancel()
	ctx, cancel = chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// No network here: without these Chromium waits on connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	defer cancel()

	// The front page: every entry, the hostile one as text.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(`#q`)); err != nil {
		t.Fatalf("opening the SAL page: %v", err)
	}
	items := shownEntries(t, ctx)
	if len(items) != 5 {
		t.Fatalf("front page shows %d entries: %q", len(items), items)
	}
	title := run(t, ctx, chromedp.Title())
	if title != "Server Admin Log" {
		t.Errorf("title %q: a message ran as script?", title)
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img, main script").length`)); n != 0 {
		t.Errorf("a message became %d elements", n)
	}
	// The inline style applied (the CSP allows it by hash).
	if s := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("ul.log")).listStyleType`)); s != "none" {
		t.Errorf("page style not applied (list-style-type %q): blocked by the CSP?", s)
	}
	screenshot(t, ctx, "sal-page.png", 1280, 900)
	screenshot(t, ctx, "sal-page-phone.png", 390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))

	// Search: type a word and submit the form with its button.
	if err := chromedp.Do(ctx, chromedp.SendKeys(`#q`, "citoid")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(`form[role=search] button`)); err != nil {
		t.Fatalf("submitting the search: %v", err)
	}
	loc := run(t, ctx, chromedp.Location())
	if u, err := url.Parse(loc); err != nil || u.Query().Get("q") != "citoid" {
		t.Errorf("search went to %q", loc)
	}
	items = shownEntries(t, ctx)
	want := []string{
		"05:16 production bd808: deploying citoid 5d6e7f8 for T12345, see https://gerrit.example.org/r/c/T999/5d6e7f8a",
		"05:02 production alice: restarted citoid on scb1001",
	}
	if strings.Join(items, "\n") != strings.Join(want, "\n") {
		t.Fatalf("search for citoid shows:\n%q\nwant:\n%q", items, want)
	}
	if h := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("main h2").innerText`)); h != "2016-04-22" {
		t.Errorf("day heading %q", h)
	}
	// The links in the first result: task, sha1 and URL, none inside another.
	links := run(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ul.log li:first-child .msg a")).map(a => a.textContent + " -> " + a.href)`))
	wantLinks := []string{
		"5d6e7f8 -> " + srv.URL + "/?q=5d6e7f8",
		"T12345 -> https://phabricator.wikimedia.org/T12345",
		"https://gerrit.example.org/r/c/T999/5d6e7f8a -> https://gerrit.example.org/r/c/T999/5d6e7f8a",
	}
	if strings.Join(links, "\n") != strings.Join(wantLinks, "\n") {
		t.Errorf("links:\n%q\nwant:\n%q", links, wantLinks)
	}
	if v := run(t, ctx, chromedp.Value(`#q`)); v != "citoid" {
		t.Errorf("search box holds %q after the search", v)
	}

	// Follow the permalink of the first result.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(`ul.log li:first-child a.permalink`)); err != nil {
		t.Fatalf("following the permalink: %v", err)
	}
	loc = run(t, ctx, chromedp.Location())
	if u, err := url.Parse(loc); err != nil || u.Path != "/log/4" {
		t.Errorf("permalink went to %q, want /log/4", loc)
	}
	entry := run(t, ctx, chromedp.Text(`article.entry`))
	for _, s := range []string{
		"2016-04-22 05:16:00 UTC", "bd808: deploying citoid 5d6e7f8 for T12345",
		"production", "#wikimedia-operations", "irc", srv.URL + "/log/4",
	} {
		if !strings.Contains(entry, s) {
			t.Errorf("entry page lacks %q:\n%s", s, entry)
		}
	}
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("ul.log li").length`)); n != 0 {
		t.Errorf("the permalink page shows %d list entries besides its own", n)
	}
	screenshot(t, ctx, "sal-entry-phone.png", 390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))
}

// run runs one action that returns a value, failing the test on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// shownEntries are the log lines on the page, as the reader sees them.
func shownEntries(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ul.log li")).map(li => li.innerText.replace(/\s+/g, " ").trim())`))
}

// screenshot captures the page at width × height (CSS pixels); it keeps the PNG in
// $SAL_WEB_SCREENSHOTS when that is set.
func screenshot(t *testing.T, ctx context.Context, name string, width, height int64, opts ...chromedp.EmulateViewportOption) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...)); err != nil {
		t.Fatal(err)
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(img) < 1000 {
		t.Fatalf("screenshot at %dx%d: %d bytes, %v", width, height, len(img), err)
	}
	if dir := os.Getenv("SAL_WEB_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), img, 0o644); err != nil {
			t.Error(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}
}
