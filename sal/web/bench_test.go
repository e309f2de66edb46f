package web

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"deploybot/sal"
)

// BenchmarkRenderDay500 renders the page of one busy day: 500 entries,
// every one linkified (tasks, sha1s, URLs), grouped and templated. The
// store is in memory, so this measures the web package alone.
func BenchmarkRenderDay500(b *testing.B) {
	store := &fakeStore{}
	day := at("2016-04-22T00:00:00Z")
	msgs := []string{
		"deploying citoid %07x for T%d",
		"restarted citoid on scb1%03d <ok> & healthy",
		"https://gerrit.wikimedia.org/r/c/mediawiki/core/+/%d merged (T%d)",
		"depooling mw%d for kernel upgrade; see https://phabricator.wikimedia.org/T%d",
	}
	for i := range 500 {
		m := msgs[i%len(msgs)]
		store.add(sal.Entry{
			Time:    day.Add(time.Duration(i) * 170 * time.Second),
			Nick:    fmt.Sprintf("deployer%d", i%7),
			Project: "production",
			Message: fmt.Sprintf(m, 0x5d6e7f8+i, 120000+i),
		})
	}
	h := New(Options{Store: store, TaskURL: phab, PageSize: 500, Now: func() time.Time { return now }})
	req := httptest.NewRequest("GET", "/production?d=2016-04-22", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%d %s", w.Code, w.Body)
	}
	if n := strings.Count(w.Body.String(), `<li id="e`); n != 500 {
		b.Fatalf("%d entries shown", n)
	}
	b.SetBytes(int64(w.Body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}
