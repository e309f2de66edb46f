package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// This file reads a revision's files without a checkout: the tree of a
// commit as an fs.FS (package scap reads a service's scap/ directory at
// the revision being deployed this way).

// maxSymlinkHops bounds how many symbolic links one lookup follows.
const maxSymlinkHops = 40

// errLinkOutside is the error of a symbolic link that leaves the tree.
var errLinkOutside = errors.New("symbolic link points outside the tree")

// TreeFS returns the git tree as a read-only fs.FS: directories are trees,
// files are blobs (mode 0644, or 0755 when executable), and symbolic links
// are followed within the tree (one that leads outside it is an error); a
// submodule is an empty directory, its files being in another repository.
// Modification times are zero. It also
// implements fs.ReadFileFS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS.
// Open reads a file whole into memory. The FS is safe for concurrent use:
// it reads the repository's objects one call at a time.
func TreeFS(tree *object.Tree) fs.FS {
	return &treeFS{root: tree, mu: new(sync.Mutex)}
}

// FSAt returns the tree of revision rev ("" for HEAD, otherwise resolved
// like Resolve) as TreeFS does. Its reads take turns with the Repo's other
// methods, so it may be used while Update runs.
func (r *Repo) FSAt(rev string) (fs.FS, error) {
	if err := ValidateRev(rev); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := object.GetCommit(r.repo.Storer, h)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: %s: commit %s: %w", r.opts.Dir, h, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("gitrepo: %s: tree of %s: %w", r.opts.Dir, h, err)
	}
	return &treeFS{root: tree, mu: &r.mu}, nil
}

type treeFS struct {
	root *object.Tree
	mu   sync.Locker
}

// node is what a path names: a directory (tree set) or another entry.
type node struct {
	name  string // base name ("." for the root)
	tree  *object.Tree
	entry *object.TreeEntry // nil for the root
	in    *object.Tree      // the tree holding entry
}

func (n *node) isDir() bool { return n.tree != nil }

// lookup finds name (a valid fs path), following symbolic links; the last
// element's link is followed only when follow is set.
func (t *treeFS) lookup(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	hops := 0
	rest := name
	if rest == "." {
		rest = ""
	}
restart:
	cur := &node{name: ".", tree: t.root}
	dir := "" // path of cur
	parts := strings.Split(rest, "/")
	if rest == "" {
		parts = nil
	}
	for i, p := range parts {
		if !cur.isDir() {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		e := findEntry(cur.tree, p)
		if e == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		last := i == len(parts)-1
		switch e.Mode {
		case filemode.Dir:
			sub, err := cur.tree.Tree(p)
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			cur = &node{name: p, tree: sub, entry: e, in: cur.tree}
		case filemode.Symlink:
			if last && !follow {
				return &node{name: p, entry: e, in: cur.tree}, nil
			}
			if hops++; hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := readBlob(cur.tree, e)
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			next := path.Join(dir, string(target))
			if strings.HasPrefix(string(target), "/") || next == ".." || strings.HasPrefix(next, "../") {
				return nil, &fs.PathError{Op: op, Path: name, Err: errLinkOutside}
			}
			rest = path.Join(append([]string{next}, parts[i+1:]...)...)
			if rest == "." {
				rest = ""
			}
			goto restart
		case filemode.Submodule:
			// Its files are in another repository: an empty directory, as
			// in a checkout without submodules.
			cur = &node{name: p, tree: &object.Tree{}, entry: e, in: cur.tree}
		default:
			cur = &node{name: p, entry: e, in: cur.tree}
		}
		dir = path.Join(dir, p)
	}
	return cur, nil
}

// findEntry is the entry named name in tree, or nil.
func findEntry(tree *object.Tree, name string) *object.TreeEntry {
	for i := range tree.Entries {
		if tree.Entries[i].Name == name {
			return &tree.Entries[i]
		}
	}
	return nil
}

func readBlob(in *object.Tree, e *object.TreeEntry) ([]byte, error) {
	f, err := in.TreeEntryFile(e)
	if err != nil {
		return nil, err
	}
	rc, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// info describes n; the size of a blob is read from the store.
func (n *node) info() (fs.FileInfo, error) {
	fi := &fileInfo{name: n.name}
	switch {
	case n.isDir():
		fi.mode = fs.ModeDir | 0o755
		return fi, nil
	case n.entry.Mode == filemode.Symlink:
		fi.mode = fs.ModeSymlink | 0o777
	case n.entry.Mode == filemode.Executable:
		fi.mode = 0o755
	default:
		fi.mode = 0o644
	}
	size, err := n.in.Size(n.entry.Name)
	if err != nil {
		return nil, err
	}
	fi.size = size
	return fi, nil
}

func (t *treeFS) Open(name string) (fs.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	fi, err := n.info()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.isDir() {
		ents, err := t.entries(n)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &treeDir{info: fi, entries: ents, path: name}, nil
	}
	data, err := readBlob(n.in, n.entry)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: fi, Reader: bytes.NewReader(data)}, nil
}

func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("readfile", name, true)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	data, err := readBlob(n.in, n.entry)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	ents, err := t.entries(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return ents, nil
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	return t.stat("stat", name, true)
}

// Lstat is Stat without following a final symbolic link.
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) {
	return t.stat("lstat", name, false)
}

func (t *treeFS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup(op, name, follow)
	if err != nil {
		return nil, err
	}
	fi, err := n.info()
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return fi, nil
}

// ReadLink returns the target of the symbolic link name, as stored.
func (t *treeFS) ReadLink(name string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.isDir() || n.entry.Mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	data, err := readBlob(n.in, n.entry)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(data), nil
}

// entries lists directory n, sorted by name; sizes are read later, on
// Info, with the FS's lock.
func (t *treeFS) entries(n *node) ([]fs.DirEntry, error) {
	out := make([]fs.DirEntry, 0, len(n.tree.Entries))
	for i := range n.tree.Entries {
		e := &n.tree.Entries[i]
		var typ fs.FileMode
		switch e.Mode {
		case filemode.Dir:
			typ = fs.ModeDir
		case filemode.Symlink:
			typ = fs.ModeSymlink
		case filemode.Submodule:
			typ = fs.ModeDir // an empty directory, see lookup
		}
		out = append(out, &dirEntry{fs: t, in: n.tree, entry: e, typ: typ})
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return time.Time{} }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fs    *treeFS
	in    *object.Tree
	entry *object.TreeEntry
	typ   fs.FileMode
}

func (d *dirEntry) Name() string      { return d.entry.Name }
func (d *dirEntry) IsDir() bool       { return d.typ.IsDir() }
func (d *dirEntry) Type() fs.FileMode { return d.typ }

func (d *dirEntry) Info() (fs.FileInfo, error) {
	if d.entry.Mode == filemode.Submodule {
		return &fileInfo{name: d.entry.Name, mode: fs.ModeDir | 0o755}, nil
	}
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n := &node{name: d.entry.Name, entry: d.entry, in: d.in}
	if d.entry.Mode == filemode.Dir {
		sub, err := d.in.Tree(d.entry.Name)
		if err != nil {
			return nil, err
		}
		n.tree = sub
	}
	return n.info()
}

func (d *dirEntry) String() string { return fs.FormatDirEntry(d) }

type treeFile struct {
	info fs.FileInfo
	*bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Close() error               { return nil }

type treeDir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
	path    string
	off     int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Close() error               { return nil }

func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
