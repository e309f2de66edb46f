package gitrepo

import (
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// verdictAge bounds how long the submodules read at a git dir's HEAD are
// trusted, whatever else.
const verdictAge = 10 * time.Second

// maxVerdicts bounds a modulesCache; past it, it starts again (git dirs
// are few).
const maxVerdicts = 4096

// modulesCache remembers, per git dir, the names of the submodules
// declared at its HEAD, so that the hundreds of hosts fetching one
// revision of a submodule do not each have the HEAD of every git dir above
// it resolved again (go-git reading HEAD, refs and packed-refs, dozens of
// syscalls per level). The names hold while the git dir's info/refs is the
// one seen when they were read, and at most verdictAge. info/refs lists
// the commit of HEAD (of its branch, or HEAD itself when detached), and
// UpdateServerInfo — the last step of Open and of every Update — replaces
// it on every change of the repository: each revision is read afresh, and
// the names in use are those of the revision info/refs advertises. Only
// the names are remembered: every request for a file inside a submodule's
// git dir still walks its path, and checks that each git dir on it is one
// (the directories of the repository's own git dir are kept open for a
// while: dirCache).
type modulesCache struct {
	mu sync.Mutex
	m  map[string]modulesEntry // git dir → names at head
}

type modulesEntry struct {
	refs  refStamp // its info/refs when the names were read
	at    time.Time
	head  plumbing.Hash
	names []string
}

// refStamp tells one version of a file from another.
type refStamp struct {
	ino, size int64
	mtime     time.Time
}

// stamp is the refStamp of the info/refs of the git dir gd; false if it
// is not a regular file.
func stamp(gd *os.Root) (refStamp, bool) {
	fi, err := gd.Lstat("info/refs")
	if err != nil || !fi.Mode().IsRegular() {
		return refStamp{}, false
	}
	return stampOf(fi), true
}

// stampOf is the refStamp of the file fi describes.
func stampOf(fi fs.FileInfo) refStamp {
	return refStamp{ino: inode(fi), size: fi.Size(), mtime: fi.ModTime()}
}

func inode(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Ino)
	}
	return 0
}

// declared returns the names of the submodules declared in the .gitmodules
// of the HEAD of the git dir gd, at gitDir (with a gitlink in its tree);
// none when anything cannot be read.
func (c *modulesCache) declared(gd *os.Root, gitDir string) []string {
	refs, stamped := stamp(gd)
	c.mu.Lock()
	e, ok := c.m[gitDir]
	c.mu.Unlock()
	if ok && stamped && e.refs == refs && time.Since(e.at) <= verdictAge {
		return e.names
	}
	now := time.Now()
	st := filesystem.NewStorage(osfs.New(gitDir), cache.NewObjectLRU(cache.MiByte))
	defer st.Close()
	ref, err := storer.ResolveReference(st, plumbing.HEAD)
	if err != nil {
		return nil
	}
	head := ref.Hash()
	names := e.names
	if !ok || e.head != head {
		names = modulesAt(st, head)
	}
	c.mu.Lock()
	if len(c.m) >= maxVerdicts {
		clear(c.m)
	}
	c.m[gitDir] = modulesEntry{refs: refs, at: now, head: head, names: names}
	c.mu.Unlock()
	return names
}

// modulesAt returns the names of the submodules declared at commit head.
func modulesAt(st *filesystem.Storage, head plumbing.Hash) []string {
	var names []string
	if commit, err := object.GetCommit(st, head); err == nil {
		if tree, err := commit.Tree(); err == nil {
			mods, _ := modulesInTree(tree)
			for _, m := range mods {
				names = append(names, m.Name)
			}
		}
	}
	return names
}
