package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/serverinfo"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// UpdateServerInfo writes, for the repository's git dir and for every
// submodule git dir under it (.git/modules/<name>, and their own
// modules/<name2>, at any depth — including submodules HEAD no longer has,
// which older revisions may need), the files git's dumb HTTP protocol
// reads: info/refs (the refs) and objects/info/packs (the packs). It uses
// go-git's plumbing/serverinfo, like `git update-server-info`, and replaces
// each file atomically, so a target fetching meanwhile never reads half a
// file. Open (after a clone) and Update call it; it is idempotent.
func (r *Repo) UpdateServerInfo() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updateServerInfo()
}

func (r *Repo) updateServerInfo() error {
	if err := serverInfoTree(r.GitDir()); err != nil {
		return fmt.Errorf("gitrepo: %s: update server info: %w", r.opts.Dir, err)
	}
	return nil
}

// serverInfoTree updates the server info of gitDir and of every git dir
// under its modules/ directory.
func serverInfoTree(gitDir string) error {
	if err := writeServerInfo(gitDir); err != nil {
		return fmt.Errorf("%s: %w", gitDir, err)
	}
	return walkModules(filepath.Join(gitDir, "modules"))
}

// walkModules finds the git dirs under dir (module names may contain
// slashes, so a directory that is not a git dir is searched further).
func walkModules(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue // symlinks included: never followed
		}
		d := filepath.Join(dir, e.Name())
		if isGitDirOS(d) {
			if err := serverInfoTree(d); err != nil {
				return err
			}
			continue
		}
		if err := walkModules(d); err != nil {
			return err
		}
	}
	return nil
}

func isGitDirOS(d string) bool {
	head, err := os.Lstat(filepath.Join(d, "HEAD"))
	if err != nil || !head.Mode().IsRegular() {
		return false
	}
	objs, err := os.Lstat(filepath.Join(d, "objects"))
	return err == nil && objs.IsDir()
}

// writeServerInfo runs go-git's serverinfo on gitDir into memory, then
// replaces the files that changed.
func writeServerInfo(gitDir string) error {
	st := filesystem.NewStorage(osfs.New(gitDir), cache.NewObjectLRUDefault())
	defer st.Close()
	mem := memfs.New()
	if err := serverinfo.UpdateServerInfo(st, mem); err != nil {
		return err
	}
	for _, name := range []string{"info/refs", "objects/info/packs"} {
		f, err := mem.Open(name)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return err
		}
		if err := replaceFile(filepath.Join(gitDir, filepath.FromSlash(name)), data); err != nil {
			return err
		}
	}
	return nil
}

// replaceFile atomically replaces the file at p with data, unless it
// already holds data.
func replaceFile(p string, data []byte) error {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Handler serves the deploy repositories under root (deploy_dir) read-only
// over plain HTTP, for git's dumb protocol: <url>/<repo>/.git is the git dir
// of the deploy repository <root>/<repo>, and
// <url>/<repo>/.git/modules/<name> the git dir of its submodule <name>
// (nested ones at .../modules/<name>/modules/<name2>). When repos are given,
// only those deploy repositories (paths under root, such as "citoid/deploy")
// are served; otherwise any working copy's .git under root is. Nothing else
// under root is served: no bare repository, no git dir that is not a
// working copy's .git, and under modules/ only the git dirs of the
// submodules declared in the .gitmodules of the HEAD of the git dir above
// (with a gitlink in its tree) — a git dir left there by an older revision
// or copied in by hand is 404. The names declared are read again whenever
// that git dir's info/refs changes (UpdateServerInfo), and at least every
// 10 seconds.
//
// It only serves regular files that git's dumb protocol reads inside those
// git dirs: HEAD, packed-refs, info/refs, objects/info/packs, refs/…, loose
// objects (objects/xx/<38 hex>) and packs (objects/pack/pack-<40 hex>.pack
// and .idx). Everything else is 404: working-copy files, config (it may hold
// credentials in the upstream URL), index, hooks, logs, alternates,
// directories (no listings). Only GET and HEAD are allowed (405 otherwise).
// A path with a "." or ".." segment, a backslash or a NUL is 400. Symbolic
// links under root are never followed (404), and files are opened through
// an os.Root, so nothing outside root can be reached. Query strings are
// ignored: git's smart-protocol probe
// (info/refs?service=git-upload-pack) gets the plain file, and git falls
// back to the dumb protocol.
//
// Mount it at the root of the listener (or under http.StripPrefix).
func Handler(root string, repos ...string) http.Handler {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	if resolved, err := filepath.EvalSymlinks(root); err == nil {
		root = resolved // root itself may be a symlink; nothing under it may
	}
	h := &handler{root: root, top: &topRoot{path: root}, mods: &modulesCache{m: map[string]modulesEntry{}}}
	if len(repos) > 0 {
		h.repos = map[string]bool{}
		for _, r := range repos {
			h.repos[strings.Trim(path.Clean("/"+r), "/")] = true
		}
	}
	return h
}

type handler struct {
	root  string
	repos map[string]bool // nil: any working copy under root
	top   *topRoot
	mods  *modulesCache
	dirs  dirCache
}

// topRoot keeps root open between requests. It is opened again when the
// directory at its path is no longer the one held (root replaced) or when
// it could not be opened: checking costs one stat where opening costs
// three syscalls.
type topRoot struct {
	path string
	mu   sync.Mutex
	r    *os.Root
	id   fs.FileInfo // the directory r is
}

// get returns the root directory, open.
func (t *topRoot) get() (*os.Root, bool) {
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r != nil && os.SameFile(fi, t.id) {
		return t.r, true
	}
	r, err := os.OpenRoot(t.path)
	if err != nil {
		return nil, false
	}
	id, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, false
	}
	if t.r != nil {
		// A request still walking the old root fails (404): what it
		// walks was replaced.
		t.r.Close()
	}
	t.r, t.id = r, id
	return r, true
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	segs, ok := splitPath(req.URL.Path)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	if len(segs) == 0 {
		http.NotFound(w, req)
		return
	}
	f, fi, kind, ok := h.open(segs)
	if !ok {
		http.NotFound(w, req)
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch kind {
	case kindLooseObject:
		hdr.Set("Content-Type", "application/x-git-loose-object")
	case kindPack:
		hdr.Set("Content-Type", "application/x-git-packed-objects")
	case kindPackIndex:
		hdr.Set("Content-Type", "application/x-git-packed-objects-toc")
	default:
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if kind == kindRef {
		hdr.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	} else {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	http.ServeContent(w, req, segs[len(segs)-1], fi.ModTime(), f)
}

// open opens the file at segs if it may be served, and says what it is:
// in a directory the cache holds (dirCache), or else one the walk finds
// (gitFS.dir), which the cache then keeps.
func (h *handler) open(segs []string) (*os.File, fs.FileInfo, fileKind, bool) {
	key := dirKey(segs)
	e, ok := h.dirs.get(h.root, key)
	if !ok {
		root, ok := h.top.get()
		if !ok {
			return nil, nil, 0, false
		}
		dir, rest, parents, ok := gitFS{root: root, h: h}.dir(segs)
		if !ok {
			return nil, nil, 0, false
		}
		if e, ok = h.dirs.add(key, dir, slices.Clone(rest[:len(rest)-1]), parents); !ok {
			return nil, nil, 0, false
		}
	}
	defer h.dirs.put(e)
	name := segs[len(segs)-1]
	kind, ok := dumbFile(append(slices.Clip(e.rest), name))
	if !ok {
		return nil, nil, 0, false
	}
	f, fi, ok := openFile(e.dir, name)
	return f, fi, kind, ok
}

// splitPath splits a URL path into its segments, refusing ".", "..",
// backslashes and NULs. Empty segments (a leading, trailing or doubled
// slash) are dropped.
func splitPath(p string) ([]string, bool) {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "":
			continue
		case s == "." || s == "..", strings.ContainsAny(s, "\\\x00"):
			return nil, false
		}
		segs = append(segs, s)
	}
	return segs, true
}

// What a served file is, for its headers.
type fileKind int

const (
	kindRef         fileKind = iota // HEAD, refs, info files: change over time
	kindLooseObject                 // objects/xx/…: immutable
	kindPack                        // objects/pack/pack-….pack: immutable
	kindPackIndex                   // objects/pack/pack-….idx: immutable
)

// gitFS finds the files to serve under root, never following symlinks: it
// walks down the path one directory at a time, each lstat'ed in its parent
// before it is opened as a sub-root, so that every component is looked at
// once (a full-path Lstat per prefix would open every directory above it
// again).
type gitFS struct {
	root *os.Root
	h    *handler
}

// subdir opens the directory name of r, which must be a directory and not
// a symlink.
func subdir(r *os.Root, name string) (*os.Root, bool) {
	fi, err := r.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil, false
	}
	d, err := r.OpenRoot(name)
	return d, err == nil
}

// descend opens the directory at names (at least one) under r, one
// component at a time. r stays open; the result is for the caller to
// close.
func descend(r *os.Root, names []string) (*os.Root, bool) {
	d, ok := subdir(r, names[0])
	for _, name := range names[1:] {
		if !ok {
			break
		}
		var next *os.Root
		next, ok = subdir(d, name)
		d.Close()
		d = next
	}
	return d, ok
}

// openFile opens the regular file name of r. It must be one before it is
// opened (not a symlink, a FIFO or a device), and the file opened must be
// the one looked at. It is opened non-blocking: that is a no-op for a
// regular file, spares the os package putting it into non-blocking mode
// and back (four fcntl), and a FIFO swapped in meanwhile cannot block.
func openFile(r *os.Root, name string) (*os.File, fs.FileInfo, bool) {
	lfi, err := r.Lstat(name)
	if err != nil || !lfi.Mode().IsRegular() {
		return nil, nil, false
	}
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(lfi, fi) {
		f.Close()
		return nil, nil, false
	}
	return f, fi, true
}

// isGitDir: a directory with a HEAD file and an objects directory.
func isGitDir(r *os.Root) bool {
	head, err := r.Lstat("HEAD")
	if err != nil || !head.Mode().IsRegular() {
		return false
	}
	objs, err := r.Lstat("objects")
	return err == nil && objs.IsDir()
}

func join(segs []string, more ...string) []string {
	return append(append(make([]string, 0, len(segs)+len(more)), segs...), more...)
}

// dir opens the directory of the file at segs if that file may be
// served, and returns it (the caller's to close) with the file's path
// inside its git dir and, for a file inside a submodule's git dir, the
// info/refs of each git dir above it as the walk read it (the submodules
// each declares were looked up at that info/refs).
func (g gitFS) dir(segs []string) (*os.Root, []string, []parentRefs, bool) {
	// A deploy repository's .git: <repo>/.git, <repo> a working copy.
	i := indexOf(segs, ".git")
	if i < 1 {
		return nil, nil, nil, false
	}
	if g.h.repos != nil && !g.h.repos[strings.Join(segs[:i], "/")] {
		return nil, nil, nil, false
	}
	dir, rest := segs[:i+1], segs[i+1:]
	gd, ok := descend(g.root, dir)
	if !ok {
		return nil, nil, nil, false
	}
	defer func() {
		if gd != nil {
			gd.Close()
		}
	}()
	if !isGitDir(gd) {
		return nil, nil, nil, false
	}

	// Submodule git dirs: modules/<name>, <name> (which may have slashes)
	// declared in the .gitmodules of the HEAD of the git dir above, nested
	// at any depth.
	var parents []parentRefs
	for len(rest) > 0 && rest[0] == "modules" {
		st, ok := stamp(gd)
		if !ok {
			return nil, nil, nil, false
		}
		parents = append(parents, parentRefs{path: filepath.Join(g.h.root, filepath.Join(dir...), "info", "refs"), refs: st})
		sub, n, ok := g.submodule(gd, dir, rest)
		if !ok {
			return nil, nil, nil, false
		}
		gd.Close()
		gd = sub
		dir, rest = join(dir, rest[:1+n]...), rest[1+n:]
	}
	if _, ok := dumbFile(rest); !ok {
		return nil, nil, nil, false
	}
	if len(rest) == 1 {
		parent := gd
		gd = nil // the caller's now
		return parent, rest, parents, true
	}
	parent, ok := descend(gd, rest[:len(rest)-1])
	return parent, rest, parents, ok
}

// submodule opens the git dir of the submodule that rest (modules/<name>/…,
// inside the git dir gd at the URL path dir) is in: the one with the
// longest name declared at gd's HEAD. It returns the git dir and how many
// segments its name has.
func (g gitFS) submodule(gd *os.Root, dir, rest []string) (*os.Root, int, bool) {
	var names [][]string
	for _, name := range g.h.mods.declared(gd, filepath.Join(g.h.root, filepath.Join(dir...))) {
		n := strings.Split(name, "/")
		if len(rest) > len(n)+1 && equal(rest[1:1+len(n)], n) {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b []string) int { return len(b) - len(a) })
	for _, n := range names {
		sub, ok := descend(gd, rest[:1+len(n)])
		if !ok {
			continue
		}
		if isGitDir(sub) {
			return sub, len(n), true
		}
		sub.Close()
	}
	return nil, 0, false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func indexOf(segs []string, s string) int {
	for i, x := range segs {
		if x == s {
			return i
		}
	}
	return -1
}

// dumbFile says whether rest, a path inside a git dir, is a file git's dumb
// HTTP protocol reads.
func dumbFile(rest []string) (fileKind, bool) {
	switch strings.Join(rest, "/") {
	case "HEAD", "packed-refs", "info/refs", "objects/info/packs":
		return kindRef, true
	}
	switch {
	case len(rest) >= 2 && rest[0] == "refs":
		return kindRef, true
	case len(rest) == 3 && rest[0] == "objects" && len(rest[1]) == 2 && len(rest[2]) == 38 &&
		isLowerHex(rest[1]) && isLowerHex(rest[2]):
		return kindLooseObject, true
	case len(rest) == 3 && rest[0] == "objects" && rest[1] == "pack":
		name := rest[2]
		for ext, kind := range map[string]fileKind{".pack": kindPack, ".idx": kindPackIndex} {
			sha, ok := strings.CutSuffix(strings.TrimPrefix(name, "pack-"), ext)
			if ok && strings.HasPrefix(name, "pack-") && len(sha) == 40 && isLowerHex(sha) {
				return kind, true
			}
		}
	}
	return 0, false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
