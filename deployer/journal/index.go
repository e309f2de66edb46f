package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// IndexRecent is how many of a service's newest deploys its index keeps.
const IndexRecent = 50

// indexVersion is the format of the index files; another version is
// rebuilt.
const indexVersion = 1

// Index is the summary of a service's deploys that status and listings
// read instead of every journal: the newest deploys, the last one that
// left every host on its revision, the good revision before that one,
// and the revision each group runs. The journals stay the source of
// truth: whoever writes a journal updates the index (Create before the
// journal exists, the finished event after it is written), a reader folds
// in the end of a deploy it finds finished, and an index that is missing,
// unreadable, or names a journal that does not exist is rebuilt from the
// journals.
type Index struct {
	Version int    `json:"version"`
	Service string `json:"service"`
	// Recent are the newest deploys, newest first (at most IndexRecent).
	Recent []Summary `json:"recent"`
	// LastGood is the newest deploy that ended success or no-op.
	LastGood *Summary `json:"last_good,omitempty"`
	// PrevGoodRev is the revision of the newest good deploy before
	// LastGood whose revision differs from LastGood's.
	PrevGoodRev string `json:"prev_good_rev,omitempty"`
	// Groups are the revisions per group according to Recent[0], set once
	// it finished (an unfinished deploy's are read from its journal).
	Groups []GroupRevs `json:"groups,omitempty"`
}

// GroupRevs counts the hosts of one group by revision, most hosts first,
// known revisions before RevUnknown.
type GroupRevs struct {
	Group string     `json:"group"`
	Revs  []RevCount `json:"revs"`
}

// RevCount is a number of hosts on one revision.
type RevCount struct {
	Rev   string `json:"rev"`
	Hosts int    `json:"hosts"`
}

// RevUnknown stands for the revision of a host whose state is unknown: a
// stage was in flight when the deploy's process died (or is in flight).
const RevUnknown = "?"

func indexPath(dir, service string) string { return filepath.Join(dir, ".index", service+".json") }

// ReadIndex returns the index of service under dir, and the newest deploy
// read whole when it is not finished (nil otherwise). It rebuilds the index
// from the journals when needed, and folds in the end of a deploy that
// finished without the index being told (its process died in between).
func ReadIndex(dir, service string) (*Index, *Deploy, error) {
	if err := ValidService(service); err != nil {
		return nil, nil, err
	}
	ix, err := loadIndex(dir, service)
	if err != nil {
		if ix, err = rebuildIndex(dir, service); err != nil {
			return nil, nil, err
		}
	}
	if len(ix.Recent) == 0 || ix.Recent[0].Finished {
		return ix, nil, nil
	}
	d, err := Read(ix.Recent[0].Path)
	if errors.Is(err, fs.ErrNotExist) {
		// Its process died between the index and the journal.
		if ix, err = rebuildIndex(dir, service); err != nil {
			return nil, nil, err
		}
		if len(ix.Recent) == 0 || ix.Recent[0].Finished {
			return ix, nil, nil
		}
		d, err = Read(ix.Recent[0].Path)
	}
	if err != nil {
		return ix, nil, err
	}
	if d.Finished {
		err := updateIndex(dir, service, func(ix *Index) { ix.add(d) })
		ix, _ = loadIndex(dir, service)
		return ix, nil, err
	}
	return ix, d, nil
}

// indexCache keeps the indexes read by this process, by path, with the
// identity of the file they were read from: an index is replaced by
// rename, never changed in place, so an unchanged identity means an
// unchanged index.
var indexCache struct {
	sync.Mutex
	m map[string]cachedIndex
}

type cachedIndex struct {
	fi os.FileInfo
	ix *Index
}

// loadIndex reads the index of service; the result is shared and must not
// be changed (updateIndex works on a copy).
func loadIndex(dir, service string) (*Index, error) {
	p := indexPath(dir, service)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	indexCache.Lock()
	c, ok := indexCache.m[p]
	indexCache.Unlock()
	if ok && os.SameFile(c.fi, fi) && c.fi.ModTime().Equal(fi.ModTime()) && c.fi.Size() == fi.Size() {
		return c.ix, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, err
	}
	if ix.Version != indexVersion || ix.Service != service {
		return nil, fmt.Errorf("index of %s: version %d", service, ix.Version)
	}
	indexCache.Lock()
	if indexCache.m == nil {
		indexCache.m = map[string]cachedIndex{}
	}
	indexCache.m[p] = cachedIndex{fi, &ix}
	indexCache.Unlock()
	return &ix, nil
}

// clone is a copy of ix that can be changed.
func (ix *Index) clone() *Index {
	c := *ix
	c.Recent = slices.Clone(ix.Recent)
	c.Groups = slices.Clone(ix.Groups)
	if ix.LastGood != nil {
		g := *ix.LastGood
		c.LastGood = &g
	}
	return &c
}

// rebuildIndex makes the index of service from its journals and saves it.
func rebuildIndex(dir, service string) (*Index, error) {
	var ix *Index
	err := updateIndex(dir, service, func(cur *Index) {
		*cur = Index{Version: indexVersion, Service: service}
		ix = cur
	}, rebuilding)
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// rebuilding, passed to updateIndex, starts from the journals.
const rebuilding = true

// updateIndex changes the index of service under its file lock and saves
// it atomically. With rebuild, fn starts from an empty index that is then
// filled from the journals.
func updateIndex(dir, service string, fn func(*Index), rebuild ...bool) error {
	p := indexPath(dir, service)
	if err := ensureDir(filepath.Dir(p)); err != nil {
		return err
	}
	lf, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := lockWait(lf); err != nil {
		return err
	}
	defer unlock(lf)
	ix, err := loadIndex(dir, service)
	full := len(rebuild) > 0 && rebuild[0]
	if err != nil || full {
		ix = &Index{Version: indexVersion, Service: service}
		full = true
	} else {
		ix = ix.clone()
	}
	fn(ix)
	if full {
		if err := ix.fill(dir, service); err != nil {
			return err
		}
	}
	b, err := json.Marshal(ix)
	if err != nil {
		return err
	}
	return replaceFile(p, b)
}

// fill builds ix from every journal of service.
func (ix *Index) fill(dir, service string) error {
	list, err := List(dir, service)
	if err != nil {
		return err
	}
	for i := len(list) - 1; i >= 0; i-- { // oldest first, as they happened
		s := list[i]
		if s.ReadErr != "" {
			continue
		}
		ix.addSummary(s)
	}
	if len(ix.Recent) > 0 && ix.Recent[0].Finished {
		if d, err := Read(ix.Recent[0].Path); err == nil {
			ix.Groups = d.GroupRevs()
		}
	}
	return nil
}

// refresh folds in the end of every deploy the index holds unfinished
// whose journal says it finished (its process died before telling the
// index).
func (ix *Index) refresh() {
	for _, s := range ix.Recent {
		if s.Finished {
			continue
		}
		if d, err := Read(s.Path); err == nil && d.Finished {
			ix.add(d)
		}
	}
}

// add records deploy d (new, or ended).
func (ix *Index) add(d *Deploy) {
	ix.addSummary(d.Summary())
	if len(ix.Recent) > 0 && ix.Recent[0].ID == d.Meta.ID && d.Finished {
		ix.Groups = d.GroupRevs()
	}
}

// newer reports whether deploy a started after deploy b (ids are to the
// second; the start times decide within one).
func newer(a, b *Summary) bool {
	if !a.Started.Equal(b.Started) {
		return a.Started.After(b.Started)
	}
	return a.ID > b.ID
}

func (ix *Index) addSummary(s Summary) {
	for i := range ix.Recent {
		if ix.Recent[i].ID == s.ID {
			ix.Recent = append(ix.Recent[:i], ix.Recent[i+1:]...)
			break
		}
	}
	i := sort.Search(len(ix.Recent), func(i int) bool { return !newer(&ix.Recent[i], &s) })
	ix.Recent = slices.Insert(ix.Recent, i, s)
	if len(ix.Recent) > IndexRecent {
		ix.Recent = ix.Recent[:IndexRecent]
	}
	if i == 0 {
		ix.Groups = nil
	}
	if !s.Finished || !s.Outcome.Good() || s.Rev == "" {
		return
	}
	switch {
	case ix.LastGood == nil:
		ix.LastGood = &s
	case ix.LastGood.ID == s.ID || newer(&s, ix.LastGood):
		if s.Rev != ix.LastGood.Rev {
			ix.PrevGoodRev = ix.LastGood.Rev
		}
		ix.LastGood = &s
	}
}

// GroupRevs counts the hosts of each group of d by revision: the one a
// host was switched to; for a host d never switched, d's revision once d
// succeeded, else the one before d; RevUnknown while a stage is (or was,
// when d's process died) in flight.
func (d *Deploy) GroupRevs() []GroupRevs {
	var out []GroupRevs
	for _, g := range d.Meta.Groups() {
		counts := map[string]int{}
		for _, h := range d.Meta.Hosts[g] {
			counts[d.hostRev(h)]++
		}
		gr := GroupRevs{Group: g}
		for rev, n := range counts {
			gr.Revs = append(gr.Revs, RevCount{Rev: rev, Hosts: n})
		}
		sort.Slice(gr.Revs, func(i, j int) bool {
			a, b := gr.Revs[i], gr.Revs[j]
			if a.Hosts != b.Hosts {
				return a.Hosts > b.Hosts
			}
			if (a.Rev == RevUnknown) != (b.Rev == RevUnknown) {
				return b.Rev == RevUnknown
			}
			return a.Rev < b.Rev
		})
		out = append(out, gr)
	}
	return out
}

func (d *Deploy) hostRev(host string) string {
	hs, ok := d.HostState[host]
	switch {
	case ok && hs.Rev != "":
		return hs.Rev
	case ok && hs.InFlight:
		return RevUnknown
	case d.Finished && d.Outcome.Good():
		return d.Meta.Rev
	case d.Meta.FromRev != "":
		return d.Meta.FromRev
	}
	return RevUnknown
}
