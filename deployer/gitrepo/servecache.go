package gitrepo

import (
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"time"
)

// verdictAge bounds how long a verdict is trusted, whatever else.
const verdictAge = 10 * time.Second

// maxVerdicts bounds a verdicts cache; past it, it starts again.
const maxVerdicts = 1 << 16

// verdicts remembers which immutable files (loose objects, packs and
// their indexes) Handler found servable, so that the hundreds of hosts
// fetching one revision do not each have every directory on the path
// checked again (a dozen lstats through an os.Root per request). A
// verdict holds while the git dir's info/refs is the one seen when it was
// made — UpdateServerInfo replaces that file on every change of the
// repository, so each revision served is checked afresh — and at most
// verdictAge. Refs and info files are never remembered. The file itself is
// still opened through the os.Root and must be a regular file.
type verdicts struct {
	mu sync.Mutex
	m  map[string]verdict // URL path → verdict
}

type verdict struct {
	kind   fileKind
	gitDir string   // the git dir holding the file, as a URL path
	refs   refStamp // its info/refs when the verdict was made
	at     time.Time
}

// refStamp tells one version of a file from another.
type refStamp struct {
	ino, size int64
	mtime     time.Time
}

// stamp is the refStamp of gitDir's info/refs; false if it is not a
// regular file.
func (g gitFS) stamp(gitDir string) (refStamp, bool) {
	fi, err := g.root.Lstat(gitDir + "/info/refs")
	if err != nil || !fi.Mode().IsRegular() {
		return refStamp{}, false
	}
	return refStamp{ino: inode(fi), size: fi.Size(), mtime: fi.ModTime()}, true
}

func inode(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Ino)
	}
	return 0
}

// lookup returns the kind of the file at name when a verdict still
// holds for it.
func (v *verdicts) lookup(g gitFS, name string) (fileKind, bool) {
	v.mu.Lock()
	e, ok := v.m[name]
	v.mu.Unlock()
	if !ok || time.Since(e.at) > verdictAge {
		return 0, false
	}
	if st, ok := g.stamp(e.gitDir); !ok || st != e.refs {
		return 0, false
	}
	return e.kind, true
}

// remember records that the file at name, in git dir dir, was found
// servable as kind, if it is immutable.
func (v *verdicts) remember(g gitFS, name string, kind fileKind, dir []string) {
	if kind == kindRef {
		return
	}
	gitDir := strings.Join(dir, "/")
	st, ok := g.stamp(gitDir)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerdicts {
		clear(v.m)
	}
	v.m[name] = verdict{kind: kind, gitDir: gitDir, refs: st, at: time.Now()}
}
