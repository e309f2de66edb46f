package gitrepo

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// discard is a ResponseWriter that keeps the status only, so that the
// benchmark measures the handler rather than a recorder's buffers.
type discard struct {
	hdr  http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.hdr }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// dumbFetch is the sequence of requests git's dumb HTTP walker makes to
// fetch one new revision from the git dir at url (a URL path): the refs,
// HEAD, a loose-object probe that is not found (the commit is packed),
// the pack list, then the pack's index and the pack. want is each
// request's status.
type dumbFetch struct {
	reqs []*http.Request
	want []int
}

func newDumbFetch(b *testing.B, w *world, gitDir, url string) dumbFetch {
	b.Helper()
	packs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.pack"))
	if err != nil || len(packs) != 1 {
		b.Fatalf("%s: want one pack, have %q (%v)", gitDir, packs, err)
	}
	pack := url + "/objects/pack/" + filepath.Base(packs[0])
	head := runGit(b, gitDir, gitEnv(), "--git-dir=.", "rev-parse", "HEAD")
	var d dumbFetch
	for _, c := range []struct {
		path string
		want int
	}{
		{url + "/info/refs?service=git-upload-pack", http.StatusOK},
		{url + "/HEAD", http.StatusOK},
		{url + "/objects/" + head[:2] + "/" + head[2:], http.StatusNotFound},
		{url + "/objects/info/packs", http.StatusOK},
		{strings.TrimSuffix(pack, ".pack") + ".idx", http.StatusOK},
		{pack, http.StatusOK},
	} {
		d.reqs = append(d.reqs, httptest.NewRequest(http.MethodGet, "http://deploy.example"+c.path, nil))
		d.want = append(d.want, c.want)
	}
	return d
}

// BenchmarkServe serves, per operation, the requests of one dumb fetch
// (six requests) of the deploy repository, and of a nested submodule's
// git dir.
func BenchmarkServe(b *testing.B) {
	w := newWorld(b)
	h := Handler(w.deployDir)
	gitDir := filepath.Join(w.deployDir, "svc", ".git")
	for _, c := range []struct {
		name, dir, url string
	}{
		{"repo", gitDir, "/svc/.git"},
		{"submodule", filepath.Join(gitDir, "modules", "lib", "modules", "deps", "inner"),
			"/svc/.git/modules/lib/modules/deps/inner"},
	} {
		d := newDumbFetch(b, w, c.dir, c.url)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			rw := &discard{}
			for b.Loop() {
				for i, req := range d.reqs {
					*rw = discard{hdr: http.Header{}, code: http.StatusOK}
					h.ServeHTTP(rw, req)
					if rw.code != d.want[i] {
						b.Fatalf("GET %s = %d, want %d", req.URL, rw.code, d.want[i])
					}
				}
			}
		})
	}
}
