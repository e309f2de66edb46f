package simfleet

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"deploybot/e2e/scale"
)

// fetcher is one dumb-HTTP fetch of a host, as git's: one HTTP connection
// for all its requests, every object the host lacks fetched (loose
// objects one by one, walking commit, trees and blobs; packs whole, when
// an object is packed).
type fetcher struct {
	h      *Host
	url    string
	client *http.Client
	packs  bool // objects/info/packs read
	n      int  // requests made
}

// fetch brings sha and everything it reaches into the host's store; the
// status is the fetch stage's (2: the revision is not on the server).
func (h *Host) fetch(url, sha string, out *bytes.Buffer) int {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	f := &fetcher{h: h, url: url, client: &http.Client{Transport: tr, Timeout: scale.D(60 * time.Second)}}
	if _, err := f.get("info/refs"); err != nil {
		fmt.Fprintf(out, "fatal: %v\n", err)
		return 128
	}
	if err := f.walk(sha, true); err != nil {
		fmt.Fprintf(out, "revision %s is not in %s: %v\n", sha, url, err)
		return 2
	}
	fmt.Fprintf(out, "fetched %s (%d requests)\n", sha, f.n)
	return 0
}

var errNotFound = errors.New("not found")

func (f *fetcher) get(path string) ([]byte, error) {
	f.n++
	resp, err := f.client.Get(f.url + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func (f *fetcher) has(id string) bool {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	return f.h.have[id]
}

func (f *fetcher) add(ids ...string) {
	f.h.mu.Lock()
	for _, id := range ids {
		f.h.have[id] = true
	}
	f.h.mu.Unlock()
}

// walk fetches object id and what it reaches; need: it must exist.
func (f *fetcher) walk(id string, need bool) error {
	if f.has(id) {
		return nil
	}
	data, err := f.get("objects/" + id[:2] + "/" + id[2:])
	if errors.Is(err, errNotFound) {
		if err := f.fetchPacks(); err != nil {
			return err
		}
		if f.has(id) || !need {
			return nil
		}
		return fmt.Errorf("object %s: %w", id, errNotFound)
	}
	if err != nil {
		return err
	}
	kind, body, err := inflate(data)
	if err != nil {
		return fmt.Errorf("object %s: %w", id, err)
	}
	f.add(id)
	for _, next := range links(kind, body) {
		if err := f.walk(next, false); err != nil {
			return err
		}
	}
	return nil
}

// fetchPacks downloads every pack (and its index) the host lacks.
func (f *fetcher) fetchPacks() error {
	if f.packs {
		return nil
	}
	f.packs = true
	list, err := f.get("objects/info/packs")
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(string(list), "\n") {
		name, ok := strings.CutPrefix(line, "P ")
		if !ok || f.has(name) {
			continue
		}
		base := "objects/pack/" + strings.TrimSuffix(name, ".pack")
		idx, err := f.get(base + ".idx")
		if err != nil {
			return err
		}
		if _, err := f.get(base + ".pack"); err != nil {
			return err
		}
		ids, err := idxNames(idx)
		if err != nil {
			return fmt.Errorf("%s.idx: %w", base, err)
		}
		f.add(append(ids, name)...)
	}
	return nil
}

// inflate decodes a loose object: its type and body.
func inflate(data []byte) (kind string, body []byte, err error) {
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return "", nil, err
	}
	hdr, body, ok := bytes.Cut(raw, []byte{0})
	if !ok {
		return "", nil, errors.New("no object header")
	}
	kind, _, _ = strings.Cut(string(hdr), " ")
	return kind, body, nil
}

// links are the objects a commit (tree, parents) or tree (entries but
// submodule commits) names.
func links(kind string, body []byte) []string {
	var out []string
	switch kind {
	case "commit":
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			l := sc.Text()
			if l == "" {
				break
			}
			if v, ok := strings.CutPrefix(l, "tree "); ok {
				out = append(out, v)
			} else if v, ok := strings.CutPrefix(l, "parent "); ok {
				out = append(out, v)
			}
		}
	case "tree":
		for len(body) > 0 {
			sp := bytes.IndexByte(body, ' ')
			nul := bytes.IndexByte(body, 0)
			if sp < 0 || nul < sp || len(body) < nul+21 {
				break
			}
			if string(body[:sp]) != "160000" {
				out = append(out, hex.EncodeToString(body[nul+1:nul+21]))
			}
			body = body[nul+21:]
		}
	}
	return out
}

// idxNames lists the object names of a version 2 pack index.
func idxNames(idx []byte) ([]string, error) {
	if len(idx) < 8+256*4 || !bytes.Equal(idx[:4], []byte{0xff, 't', 'O', 'c'}) || binary.BigEndian.Uint32(idx[4:8]) != 2 {
		return nil, errors.New("not a version 2 pack index")
	}
	n := int(binary.BigEndian.Uint32(idx[8+255*4:]))
	names := idx[8+256*4:]
	if len(names) < n*20 {
		return nil, errors.New("truncated")
	}
	out := make([]string, n)
	for i := range out {
		out[i] = hex.EncodeToString(names[i*20 : i*20+20])
	}
	return out, nil
}
