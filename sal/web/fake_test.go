package web

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"deploybot/sal"
)

// fakeStore is an in-memory sal.Store that implements every Query filter
// the way the interface documents them, so the web tests do not depend on
// how far a real store has come.
type fakeStore struct {
	mu      sync.Mutex
	entries []sal.Entry // by id, ascending
	queries []sal.Query // every List query, for tests that check them
	err     error       // returned by List and Get when set
}

func (s *fakeStore) Append(_ context.Context, e *sal.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.ID = int64(len(s.entries) + 1)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	if e.Source == "" {
		e.Source = sal.SourceIRC
	}
	s.entries = append(s.entries, *e)
	return nil
}

// add appends entries as given (tests build them by hand).
func (s *fakeStore) add(es ...sal.Entry) *fakeStore {
	for i := range es {
		s.Append(context.Background(), &es[i])
	}
	return s
}

func (s *fakeStore) List(_ context.Context, q sal.Query) ([]sal.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	if s.err != nil {
		return nil, s.err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	words := strings.Fields(strings.ToLower(q.Search))
	var out []sal.Entry
	for _, e := range slices.Backward(s.entries) {
		switch {
		case q.Project != "" && e.Project != q.Project,
			q.Channel != "" && e.Channel != q.Channel,
			!q.Since.IsZero() && e.Time.Before(q.Since),
			!q.Until.IsZero() && !e.Time.Before(q.Until),
			q.Before > 0 && e.ID >= q.Before:
			continue
		}
		text := strings.ToLower(e.Nick + " " + e.Message)
		match := true
		for _, w := range words {
			if !strings.Contains(text, w) {
				match = false
			}
		}
		if !match {
			continue
		}
		out = append(out, e)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (s *fakeStore) Get(_ context.Context, id int64) (sal.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return sal.Entry{}, s.err
	}
	if id < 1 || id > int64(len(s.entries)) {
		return sal.Entry{}, sal.ErrNotFound
	}
	return s.entries[id-1], nil
}

func (s *fakeStore) Close() error { return nil }
