package gitrepo

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// go-git's transport for local repositories (plain paths and file:// URLs)
// runs the git-upload-pack binary. The deployment host must not need git,
// so this package replaces it, for the whole process, with go-git's
// in-process server reading the repository directly. It is installed at
// init, before any goroutine can use go-git's transports: the protocol
// table is a plain map.
func init() {
	client.InstallProtocol("file", localTransport{})
}

// localTransport is go-git's in-process server used as a client, with one
// fix: the "have" commits the client announces that the upstream does not
// have (local commits, or commits the upstream lost in a force-push) are
// dropped before the server sees them — go-git's server fails on them,
// where git-upload-pack ignores them.
type localTransport struct{}

func (localTransport) NewUploadPackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
	st, err := localLoader{}.Load(ep)
	if err != nil {
		return nil, err
	}
	s, err := server.NewClient(fixedLoader{st}).NewUploadPackSession(ep, auth)
	if err != nil {
		return nil, err
	}
	return &knownHavesSession{UploadPackSession: s, st: st}, nil
}

func (localTransport) NewReceivePackSession(ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
	return server.NewClient(localLoader{}).NewReceivePackSession(ep, auth)
}

type fixedLoader struct{ st storer.Storer }

func (l fixedLoader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

type knownHavesSession struct {
	transport.UploadPackSession
	st storer.Storer
}

func (s *knownHavesSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	known := req.Haves[:0:0]
	for _, h := range req.Haves {
		if s.st.HasEncodedObject(h) == nil {
			known = append(known, h)
		}
	}
	req.Haves = known
	return s.UploadPackSession.UploadPack(ctx, req)
}

// localLoader opens the repository at a local endpoint's path: a working
// copy (its .git directory, or the git dir a ".git" file points to) or a
// bare repository. go-git's own server.FilesystemLoader takes a working
// copy's top directory for its git dir, hence this one.
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	dir, err := localGitDir(ep.Path)
	if err != nil {
		return nil, err
	}
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault()), nil
}

func localGitDir(p string) (string, error) {
	if p == "" {
		return "", transport.ErrRepositoryNotFound
	}
	p = filepath.Clean(p)
	dotgit := filepath.Join(p, ".git")
	fi, err := os.Stat(dotgit)
	switch {
	case err == nil && fi.IsDir():
		return dotgit, nil
	case err == nil && fi.Mode().IsRegular():
		return readGitFile(p, dotgit)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	if isGitDirOS(p) {
		return p, nil
	}
	return "", transport.ErrRepositoryNotFound
}

// readGitFile follows a ".git" file ("gitdir: <path>", relative to the
// working copy), as submodules' working copies have.
func readGitFile(worktree, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", transport.ErrRepositoryNotFound
	}
	gd, ok := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
	if !ok {
		return "", transport.ErrRepositoryNotFound
	}
	gd = strings.TrimSpace(gd)
	if !filepath.IsAbs(gd) {
		gd = filepath.Join(worktree, gd)
	}
	if !isGitDirOS(gd) {
		return "", transport.ErrRepositoryNotFound
	}
	return gd, nil
}
