package gitrepo

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The submodules declared at a git dir's HEAD are read again when its
// info/refs changes, not before: HEAD moved by hand to a commit without
// lib leaves lib served until the server info is written again.
func TestHandlerRereadsSubmodulesWithRefs(t *testing.T) {
	w := newWorld(t)
	h := Handler(w.deployDir)
	lib := "/svc/.git/modules/lib/HEAD"
	if rec := get(t, h, http.MethodGet, lib); rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", lib, rec.Code)
	}
	gitDir := filepath.Join(w.deployDir, "svc", ".git")
	if err := os.WriteFile(filepath.Join(gitDir, "HEAD"), []byte(w.c1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, lib); rec.Code != http.StatusOK {
		t.Errorf("GET %s, info/refs unchanged = %d, want 200 (names remembered)", lib, rec.Code)
	}
	if err := w.repo.UpdateServerInfo(); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, lib); rec.Code != http.StatusNotFound {
		t.Errorf("GET %s, info/refs of a HEAD without lib = %d, want 404", lib, rec.Code)
	}
}

// Remembering the submodules declared does not remember their git dirs:
// a symlink put on the path of a submodule's files already served is
// refused at once.
func TestHandlerRefusesSymlinkInSubmodulePath(t *testing.T) {
	w := newWorld(t)
	h := Handler(w.deployDir)
	gitDir := filepath.Join(w.deployDir, "svc", ".git")
	paths := []string{
		"/svc/.git/modules/lib/HEAD",
		"/svc/.git/modules/lib/info/refs",
		"/svc/.git/modules/lib/modules/deps/inner/HEAD",
		"/svc/.git/modules/lib/modules/deps/inner/objects/info/packs",
	}
	expect := func(when string, want int) {
		t.Helper()
		for _, p := range paths {
			if rec := get(t, h, http.MethodGet, p); rec.Code != want {
				t.Errorf("%s: GET %s = %d, want %d", when, p, rec.Code, want)
			}
		}
	}
	expect("before", http.StatusOK)
	for _, dir := range []string{
		filepath.Join(gitDir, "modules"),
		filepath.Join(gitDir, "modules", "lib"),
	} {
		if err := os.Rename(dir, dir+"-moved"); err != nil {
			t.Fatal(err)
		}
		mustSymlink(t, filepath.Base(dir)+"-moved", dir)
		expect(dir+" a symlink", http.StatusNotFound)
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dir+"-moved", dir); err != nil {
			t.Fatal(err)
		}
		expect(dir+" back", http.StatusOK)
	}
	deps := filepath.Join(gitDir, "modules", "lib", "modules", "deps")
	if err := os.Rename(deps, deps+"-moved"); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "deps-moved", deps)
	for _, p := range paths[2:] {
		if rec := get(t, h, http.MethodGet, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s, modules/deps a symlink = %d, want 404", p, rec.Code)
		}
	}
}

// The directories files were served from are kept open (dirCache), and
// one replaced by another directory is not served from any more: a file
// only the old one had is 404 at once, and the old one back serves again.
func TestHandlerFollowsDirReplaced(t *testing.T) {
	w := newWorld(t)
	h := Handler(w.deployDir)
	packDir := filepath.Join(w.deployDir, "svc", ".git", "objects", "pack")
	packs, err := filepath.Glob(filepath.Join(packDir, "pack-*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pack: %v", err)
	}
	pack := "/svc/.git/objects/pack/" + filepath.Base(packs[0])
	if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", pack, rec.Code)
	}
	dirs := &h.(*handler).dirs
	dirs.mu.Lock()
	_, kept := dirs.m["svc/.git/objects/pack"]
	dirs.mu.Unlock()
	if !kept {
		t.Error("objects/pack not kept open after serving from it")
	}
	if err := os.Rename(packDir, packDir+"-moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(packDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusNotFound {
		t.Errorf("GET %s, objects/pack replaced by an empty directory = %d, want 404", pack, rec.Code)
	}
	if err := os.Remove(packDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(packDir+"-moved", packDir); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, http.MethodGet, pack); rec.Code != http.StatusOK {
		t.Errorf("GET %s, objects/pack back = %d, want 200", pack, rec.Code)
	}
}

// Without openat2 (Linux before 5.6) no directory is kept, and files are
// served all the same.
func TestHandlerWithoutOpenat2(t *testing.T) {
	noOpenat2.Store(true)
	defer noOpenat2.Store(false)
	w := newWorld(t)
	h := Handler(w.deployDir)
	for range 2 {
		if rec := get(t, h, http.MethodGet, "/svc/.git/HEAD"); rec.Code != http.StatusOK {
			t.Fatalf("GET HEAD = %d", rec.Code)
		}
	}
	dirs := &h.(*handler).dirs
	dirs.mu.Lock()
	defer dirs.mu.Unlock()
	if len(dirs.m) != 0 {
		t.Errorf("%d directories kept without openat2", len(dirs.m))
	}
}
