package pgstate

import (
	"context"
	"encoding/json"
	"fmt"

	"deploybot/deployer/journal"

	"github.com/jackc/pgx/v5"
)

// row is a deploy_journals row as listings read it.
type row struct {
	id       string
	finished bool
	summary  journal.Summary
	groups   []journal.GroupRevs
}

const rowColumns = `id, finished, summary, groups`

func scanRows(rows pgx.Rows) ([]row, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var out row
		var sum, groups []byte
		if err := r.Scan(&out.id, &out.finished, &sum, &groups); err != nil {
			return out, err
		}
		if err := json.Unmarshal(sum, &out.summary); err != nil {
			out.summary = journal.Summary{ID: out.id, ReadErr: "unreadable summary: " + err.Error()}
		}
		if groups != nil {
			_ = json.Unmarshal(groups, &out.groups)
		}
		return out, nil
	})
}

// summaries are the summaries of rs; an unfinished deploy's is read
// from its events, which say how far it got.
func (s *Store) summaries(ctx context.Context, rs []row) []journal.Summary {
	out := make([]journal.Summary, 0, len(rs))
	for _, r := range rs {
		sum := r.summary
		if !r.finished {
			if d, err := s.readCtx(ctx, r.id); err == nil {
				sum = d.Summary()
			} else {
				sum.ReadErr = err.Error()
			}
		}
		out = append(out, sum)
	}
	return out
}

func (s *Store) readCtx(ctx context.Context, id string) (*journal.Deploy, error) {
	lines, err := readLines(ctx, s.pool, id, 0)
	if err != nil {
		return nil, fmt.Errorf("read deploy %s: %w", id, err)
	}
	return build(id, lines)
}

// List implements journal.Store.
func (s *Store) List(service string, n int) ([]journal.Summary, error) {
	if service != "" {
		if err := journal.ValidService(service); err != nil {
			return nil, err
		}
	}
	ctx, cancel := opCtx()
	defer cancel()
	limit := any(nil)
	if n > 0 {
		limit = n
	}
	rows, err := s.pool.Query(ctx, `SELECT `+rowColumns+` FROM deploy_journals
		WHERE $1 = '' OR service = $1 ORDER BY started DESC, id DESC LIMIT $2`, service, limit)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	rs, err := scanRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	return s.summaries(ctx, rs), nil
}

// Unfinished implements journal.Store: the deploys without a finished
// event whose deploy lock no session holds for them.
func (s *Store) Unfinished() ([]*journal.Deploy, error) {
	ctx, cancel := opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id, service FROM deploy_journals WHERE NOT finished ORDER BY started DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("unfinished deploys: %w", err)
	}
	type idService struct{ id, service string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idService, error) {
		var v idService
		return v, r.Scan(&v.id, &v.service)
	})
	if err != nil {
		return nil, fmt.Errorf("unfinished deploys: %w", err)
	}
	holders := map[string]*journal.Holder{}
	var out []*journal.Deploy
	for _, u := range list {
		h, ok := holders[u.service]
		if !ok {
			if h, err = s.running(ctx, u.service); err != nil {
				return nil, fmt.Errorf("unfinished deploys: %w", err)
			}
			holders[u.service] = h
		}
		if h != nil && (h.DeployID == "" || h.DeployID == u.id) {
			continue // running
		}
		d, err := s.readCtx(ctx, u.id)
		if err != nil {
			return nil, err
		}
		if !d.Finished {
			out = append(out, d)
		}
	}
	return out, nil
}

// ReadIndex implements journal.Store: the index is computed by queries.
func (s *Store) ReadIndex(service string) (*journal.Index, *journal.Deploy, error) {
	if err := journal.ValidService(service); err != nil {
		return nil, nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+rowColumns+` FROM deploy_journals
		WHERE service = $1 ORDER BY started DESC, id DESC LIMIT $2`, service, journal.IndexRecent)
	if err != nil {
		return nil, nil, fmt.Errorf("index of %s: %w", service, err)
	}
	rs, err := scanRows(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("index of %s: %w", service, err)
	}
	ix := &journal.Index{Version: 1, Service: service, Recent: s.summaries(ctx, rs)}
	if err := s.lastGood(ctx, ix); err != nil {
		return nil, nil, fmt.Errorf("index of %s: %w", service, err)
	}
	if len(rs) == 0 {
		return ix, nil, nil
	}
	if rs[0].finished {
		ix.Groups = rs[0].groups
		return ix, nil, nil
	}
	d, err := s.readCtx(ctx, rs[0].id)
	return ix, d, err
}

// lastGood fills in ix.LastGood and ix.PrevGoodRev.
func (s *Store) lastGood(ctx context.Context, ix *journal.Index) error {
	good := `service = $1 AND finished AND outcome IN ('` + string(journal.OutcomeSuccess) + `', '` + string(journal.OutcomeNoop) + `') AND rev <> ''`
	rows, err := s.pool.Query(ctx, `SELECT `+rowColumns+` FROM deploy_journals WHERE `+good+`
		ORDER BY started DESC, id DESC LIMIT 1`, ix.Service)
	if err != nil {
		return err
	}
	rs, err := scanRows(rows)
	if err != nil || len(rs) == 0 {
		return err
	}
	lg := rs[0].summary
	ix.LastGood = &lg
	err = s.pool.QueryRow(ctx, `SELECT rev FROM deploy_journals WHERE `+good+` AND rev <> $2
		AND (started, id) < ($3, $4) ORDER BY started DESC, id DESC LIMIT 1`,
		ix.Service, lg.Rev, lg.Started, lg.ID).Scan(&ix.PrevGoodRev)
	if isNoRows(err) {
		return nil
	}
	return err
}
