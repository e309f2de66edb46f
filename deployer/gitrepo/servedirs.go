package gitrepo

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxDirs bounds a dirCache; past it, expired entries go, and then all of
// them (the directories files are served from are few: a git dir's own,
// objects/pack, objects/info and info, per git dir).
const maxDirs = 512

// dirCache keeps open the directories files were served from, so that the
// hundreds of hosts fetching one revision do not each have the path of
// every file walked again, one component at a time (an lstat, an open and
// a close per directory, and the checks that the git dir is one). An
// entry was found by that walk: it is used for a request for a file in
// the same directory (the same URL path) while the path still leads to
// that directory without a symlink anywhere on it (one openat2 with
// RESOLVE_NO_SYMLINKS, and an fstat) and for at most verdictAge, after
// which the walk decides again, as it does for a git dir that is no
// longer one. A directory inside a submodule's git dir is used only while
// the info/refs of every git dir above it is the one seen when the walk
// found the submodule declared there (one lstat each): whether a
// submodule may be served changes with the revision at HEAD above it, as
// for modulesCache. The file itself is always looked at and opened afresh
// (openFile). Without openat2 (Linux before 5.6) nothing is kept.
type dirCache struct {
	mu sync.Mutex
	m  map[string]*servedDir // the directory's URL path under root
}

// servedDir is one open directory. It is closed once it has left the
// cache and no request uses it.
type servedDir struct {
	dir  *os.Root
	id   fs.FileInfo // the directory dir is
	rest []string    // the directory's path inside its git dir
	// parents: the info/refs of the git dirs above, for a directory inside
	// a submodule's git dir.
	parents []parentRefs
	at      time.Time
	refs    int  // requests using dir (under dirCache.mu)
	gone    bool // no longer in the cache (under dirCache.mu)
}

// get returns the entry for the directory at the URL path key (under
// root, a filesystem path), in use until put; false when there is none
// to trust.
func (c *dirCache) get(root, key string) (*servedDir, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	if ok && time.Since(e.at) > verdictAge {
		c.dropLocked(key, e)
		ok = false
	}
	if ok {
		e.refs++
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if !sameDir(filepath.Join(root, filepath.FromSlash(key)), e.id) || !e.parentsSame() {
		c.mu.Lock()
		if c.m[key] == e {
			c.dropLocked(key, e)
		}
		c.mu.Unlock()
		c.put(e)
		return nil, false
	}
	return e, true
}

// add caches dir, the directory at the URL path key found by the walk,
// rest its path inside its git dir, parents the info/refs of the git dirs
// above it (gitFS.dir), and returns its entry, in use until
// put. dir is the cache's from then on (closed with the entry).
func (c *dirCache) add(key string, dir *os.Root, rest []string, parents []parentRefs) (*servedDir, bool) {
	id, err := dir.Stat(".")
	if err != nil {
		dir.Close()
		return nil, false
	}
	e := &servedDir{dir: dir, id: id, rest: rest, parents: parents, at: time.Now(), refs: 1}
	if noOpenat2.Load() {
		e.gone = true // not kept: it could never be checked; closed by put
		return e, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.dropLocked(key, old)
	}
	if len(c.m) >= maxDirs {
		for k, x := range c.m {
			if time.Since(x.at) > verdictAge {
				c.dropLocked(k, x)
			}
		}
		if len(c.m) >= maxDirs {
			for k, x := range c.m {
				c.dropLocked(k, x)
			}
		}
	}
	if c.m == nil {
		c.m = map[string]*servedDir{}
	}
	c.m[key] = e
	return e, true
}

// put ends a request's use of e.
func (c *dirCache) put(e *servedDir) {
	c.mu.Lock()
	e.refs--
	closeIt := e.gone && e.refs == 0
	c.mu.Unlock()
	if closeIt {
		e.dir.Close()
	}
}

// dropLocked takes e, at key, out of the cache; it is closed now when no
// request uses it, else by the last put.
func (c *dirCache) dropLocked(key string, e *servedDir) {
	delete(c.m, key)
	e.gone = true
	if e.refs == 0 {
		e.dir.Close()
	}
}

// parentRefs is the info/refs of a git dir (its path) as the walk read it.
type parentRefs struct {
	path string
	refs refStamp
}

// parentsSame reports whether the info/refs of every git dir above e is
// still the one the walk saw.
func (e *servedDir) parentsSame() bool {
	for _, p := range e.parents {
		fi, err := os.Lstat(p.path)
		if err != nil || !fi.Mode().IsRegular() || stampOf(fi) != p.refs {
			return false
		}
	}
	return true
}

// noOpenat2 is set once openat2 turned out to be missing (Linux before
// 5.6): no directory is kept from then on.
var noOpenat2 atomic.Bool

// sameDir reports whether path, with no symlink on it, is the directory
// id.
func sameDir(path string, id fs.FileInfo) bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			noOpenat2.Store(true)
		}
		return false
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	want, ok := id.Sys().(*syscall.Stat_t)
	return err == nil && ok && uint64(st.Dev) == uint64(want.Dev) && st.Ino == want.Ino
}

// dirKey is the URL path of the directory the file at segs is in.
func dirKey(segs []string) string {
	return strings.Join(segs[:len(segs)-1], "/")
}
