package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// journalFile is a journal found on disk, known by its name only.
type journalFile struct {
	id, service, path string
}

// journals lists the journals of service under dir (service "" = every
// service), newest id first. Files whose name is not a valid id of the
// directory's service are ignored.
func journals(dir, service string) ([]journalFile, error) {
	var services []string
	if service != "" {
		if err := ValidService(service); err != nil {
			return nil, err
		}
		services = []string{service}
	} else {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && ValidService(e.Name()) == nil {
				services = append(services, e.Name())
			}
		}
	}
	var out []journalFile
	for _, svc := range services {
		ents, err := os.ReadDir(filepath.Join(dir, svc))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := e.Name()
			id, ok := strings.CutSuffix(name, ".jsonl")
			if !ok || !e.Type().IsRegular() {
				continue
			}
			if s, _, err := ParseID(id); err != nil || s != svc {
				continue
			}
			out = append(out, journalFile{id: id, service: svc, path: filepath.Join(dir, svc, name)})
		}
	}
	// The id starts with the time, so this is newest first to the second.
	sort.Slice(out, func(i, j int) bool { return out[i].id > out[j].id })
	return out, nil
}

// List returns a summary of every deploy of service under dir (service ""
// = every service), newest first. A journal that cannot be read is listed
// with ReadErr set.
func List(dir, service string) ([]Summary, error) { return ListN(dir, service, 0) }

// ListN is List limited to the n newest deploys (n <= 0: all). Only the
// journals needed are read.
func ListN(dir, service string, n int) ([]Summary, error) {
	files, err := journals(dir, service)
	if err != nil {
		return nil, err
	}
	if n > 0 && n < len(files) {
		// Ids are to the second: keep every journal of the same second
		// as the n-th, the start times decide below.
		cut := n
		for cut < len(files) && sameSecond(files[cut].id, files[n-1].id) {
			cut++
		}
		files = files[:cut]
	}
	out := make([]Summary, 0, len(files))
	for _, jf := range files {
		d, err := Read(jf.path)
		if err != nil {
			_, t, _ := ParseID(jf.id)
			out = append(out, Summary{ID: jf.id, Service: jf.service, Path: jf.path, Started: t, ReadErr: err.Error()})
			continue
		}
		out = append(out, d.Summary())
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

func sameSecond(a, b string) bool {
	const n = len("20060102-150405")
	return len(a) >= n && len(b) >= n && a[:n] == b[:n]
}

// Latest returns the path of the newest journal of service (service "" =
// of any service), or an error wrapping ErrNoDeploys.
func Latest(dir, service string) (string, error) {
	l, err := ListN(dir, service, 1)
	if err != nil {
		return "", err
	}
	if len(l) == 0 {
		if service == "" {
			return "", fmt.Errorf("%w in %s", ErrNoDeploys, dir)
		}
		return "", fmt.Errorf("%w for %s", ErrNoDeploys, service)
	}
	return l[0].Path, nil
}

// Unfinished returns the deploys under dir that have no finished event and
// are not running, newest first: their process died (crash, kill, power
// loss). A deploy is running when the deploy lock of its service is held
// and its holder names that deploy (or names no deploy, to be safe). Only
// the end of a finished journal is read.
func Unfinished(dir string) ([]*Deploy, error) {
	files, err := journals(dir, "")
	if err != nil {
		return nil, err
	}
	type lockState struct {
		busy   bool
		holder *Holder
	}
	locks := map[string]*lockState{}
	var out []*Deploy
	for _, jf := range files {
		done, err := endsFinished(jf.path)
		if err != nil {
			return nil, err
		}
		if done {
			continue
		}
		ls := locks[jf.service]
		if ls == nil {
			ls = &lockState{}
			if ls.busy, err = deployBusy(dir, jf.service); err != nil {
				return nil, err
			}
			if ls.busy {
				ls.holder = readDeployHolder(dir, jf.service)
			}
			locks[jf.service] = ls
		}
		if ls.busy && (ls.holder == nil || ls.holder.DeployID == "" || ls.holder.DeployID == jf.id) {
			continue // running
		}
		d, err := Read(jf.path)
		if err != nil {
			return nil, err
		}
		if !d.Finished {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Meta.Started.After(out[j].Meta.Started) })
	return out, nil
}

// endsFinished reports whether the last complete line of a journal is a
// finished event, reading only the end of the file. A journal that ends
// with a torn line is not finished: nothing is written after a finished
// event.
func endsFinished(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	size := st.Size()
	const chunk = 64 << 10
	off := max(size-chunk, 0)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return false, err
	}
	if len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return false, nil
	}
	body := buf[:len(buf)-1]
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && off > 0 {
		// A last line longer than the chunk: read it all.
		d, err := Read(path)
		if err != nil {
			return false, err
		}
		return d.Finished, nil
	}
	ev, err := decodeLine(body[i+1:])
	return err == nil && ev.Type == TypeFinished, nil
}
