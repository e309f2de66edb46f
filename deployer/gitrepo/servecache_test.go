package gitrepo

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pack found servable is remembered for the revision served: asked
// again, it is served from the verdict; once info/refs changes (a new
// revision), the path is checked afresh, and a symlink put on it then is
// refused. Refs are never remembered.
func TestHandlerRemembersImmutableFiles(t *testing.T) {
	w := newWorld(t)
	root := w.deployDir
	h := Handler(root).(*handler)
	gitDir := filepath.Join(root, "svc", ".git")
	packs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "pack-*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack: %v", err)
	}
	pack := "/svc/.git/objects/pack/" + filepath.Base(packs[0])
	for range 2 {
		if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d", pack, rec.Code)
		}
	}
	get(t, h, http.MethodGet, "/svc/.git/HEAD")
	h.seen.mu.Lock()
	_, packSeen := h.seen.m[strings.TrimPrefix(pack, "/")]
	_, headSeen := h.seen.m["svc/.git/HEAD"]
	h.seen.mu.Unlock()
	if !packSeen || headSeen {
		t.Fatalf("verdicts: pack remembered %v, HEAD remembered %v; want true, false", packSeen, headSeen)
	}

	// The pack directory becomes a symlink to a copy of itself, and the
	// repository changes (info/refs rewritten, as UpdateServerInfo does).
	packDir := filepath.Join(gitDir, "objects", "pack")
	moved := filepath.Join(gitDir, "objects", "pack-moved")
	if err := os.Rename(packDir, moved); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "pack-moved", packDir)
	refs := filepath.Join(gitDir, "info", "refs")
	data := readFile(t, refs)
	if err := os.Remove(refs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(refs, []byte(data+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusNotFound {
		t.Fatalf("GET %s through a symlink after info/refs changed = %d, want 404", pack, rec.Code)
	}
}
