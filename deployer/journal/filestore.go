package journal

import (
	"context"
	"fmt"
)

// Files is the Store of one deploy host: the journal directory Dir, as
// described in the package documentation. It is the default; it needs no
// server, and every process sharing Dir shares the state.
type Files struct {
	Dir string
}

// NewFiles returns the Store on the journal directory dir.
func NewFiles(dir string) *Files { return &Files{Dir: dir} }

var _ Store = (*Files)(nil)

// AcquireDeploy implements Store (see AcquireDeploy).
func (f *Files) AcquireDeploy(service string, h Holder) (Lease, error) {
	l, err := AcquireDeploy(f.Dir, service, h)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Running implements Store.
func (f *Files) Running(service string) (*Holder, error) { return Running(f.Dir, service) }

// Lock implements Store.
func (f *Files) Lock(service string, h Holder) error { return Lock(f.Dir, service, h) }

// Unlock implements Store.
func (f *Files) Unlock(service, who string) (Holder, error) { return Unlock(f.Dir, service, who) }

// Held implements Store.
func (f *Files) Held(service string) (*Holder, error) { return Held(f.Dir, service) }

// Locks implements Store.
func (f *Files) Locks() ([]ServiceLock, error) { return Locks(f.Dir) }

// Create implements Store.
func (f *Files) Create(l Lease, meta Meta) (EventWriter, error) {
	if err := f.owns(l, meta.ID); err != nil {
		return nil, err
	}
	w, err := Create(f.Dir, l.Service(), meta)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Reopen implements Store.
func (f *Files) Reopen(l Lease) (EventWriter, *Deploy, error) {
	dl, ok := l.(*DeployLock)
	if !ok || dl.dir != f.Dir {
		return nil, nil, fmt.Errorf("reopen: the lease is not a deploy lock of %s", f.Dir)
	}
	path, err := JournalPath(f.Dir, dl.service, dl.holder.DeployID)
	if err != nil {
		return nil, nil, err
	}
	w, d, err := Reopen(path, dl)
	if err != nil {
		return nil, nil, err
	}
	return w, d, nil
}

// owns checks that l is a deploy lock of this directory held for id.
func (f *Files) owns(l Lease, id string) error {
	dl, ok := l.(*DeployLock)
	if !ok || dl.dir != f.Dir || !dl.held() || dl.holder.DeployID != id {
		return fmt.Errorf("journal %s: the deploy lock must be held for it in %s", quoteShort(id), f.Dir)
	}
	return nil
}

// path is the journal of deploy id.
func (f *Files) path(id string) (string, error) {
	service, _, err := ParseID(id)
	if err != nil {
		return "", err
	}
	return JournalPath(f.Dir, service, id)
}

// Read implements Store.
func (f *Files) Read(id string) (*Deploy, error) {
	path, err := f.path(id)
	if err != nil {
		return nil, err
	}
	return Read(path)
}

// Follow implements Store (see Follow).
func (f *Files) Follow(ctx context.Context, id string, fn func(Event) error) error {
	path, err := f.path(id)
	if err != nil {
		return err
	}
	return Follow(ctx, path, 0, fn)
}

// List implements Store (see ListN).
func (f *Files) List(service string, n int) ([]Summary, error) { return ListN(f.Dir, service, n) }

// Unfinished implements Store.
func (f *Files) Unfinished() ([]*Deploy, error) { return Unfinished(f.Dir) }

// ReadIndex implements Store.
func (f *Files) ReadIndex(service string) (*Index, *Deploy, error) { return ReadIndex(f.Dir, service) }

// Close implements Store; there is nothing to close.
func (f *Files) Close() error { return nil }

// Lost implements Lease: a flock is held until its process lets it go or
// dies, so it is never lost.
func (l *DeployLock) Lost() <-chan struct{} { return nil }
