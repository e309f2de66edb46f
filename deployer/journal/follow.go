package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrInterrupted is returned by Follow when the deploy stopped without a
// finished event: its process is gone (see Unfinished).
var ErrInterrupted = errors.New("deploy interrupted: its process is gone and the journal has no finished event")

// How often Follow looks for new lines, and how often, while nothing
// comes, it checks that the deploy is still running.
var (
	followPoll     = 200 * time.Millisecond
	followLiveness = time.Second
)

// Follow calls fn for each event of the journal at path, from byte offset
// from (0: the beginning; Deploy.Size: only new events; an offset inside a
// line skips to the next line), then waits for new events, until:
//
//   - a finished event was passed to fn: nil;
//   - fn returns an error: that error;
//   - ctx is done: ctx.Err();
//   - the deploy is no longer running and no finished event came (the
//     deploying process died): ErrInterrupted. This is checked through the
//     deploy lock when path is a journal under a journal directory
//     (<dir>/<service>/<id>.jsonl); for any other path Follow waits for ctx.
//
// Only complete lines are passed on; undecodable lines are skipped.
func Follow(ctx context.Context, path string, from int64, fn func(Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dir, service, id, checkLive := splitJournalPath(path)

	skipFirst := false
	if from > 0 {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, from-1); err == nil && b[0] != '\n' {
			skipFirst = true // from is inside a line
		}
	}
	offset := from // end of the complete lines passed on
	buf := make([]byte, 64<<10)

	// drain reads from offset to the end of the file and passes complete
	// lines on; a partial last line is read again next time (so a torn
	// line cut off by Reopen is never glued to what follows). done is
	// true after a finished event; grew is true if a line was passed.
	drain := func() (done, grew bool, err error) {
		var pending []byte
		pos := offset
		for {
			n, rerr := f.ReadAt(buf, pos)
			pos += int64(n)
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := pending[:i+1]
				pending = pending[i+1:]
				offset += int64(len(line))
				grew = true
				skip := skipFirst
				skipFirst = false
				ev, derr := decodeLine(line)
				if skip || derr != nil {
					continue
				}
				if err := fn(ev); err != nil {
					return false, grew, err
				}
				if ev.Type == TypeFinished {
					return true, grew, nil
				}
			}
			if rerr == io.EOF || (rerr == nil && n == 0) {
				return false, grew, nil
			}
			if rerr != nil {
				return false, grew, rerr
			}
		}
	}

	var lastCheck time.Time
	ticker := time.NewTicker(followPoll)
	defer ticker.Stop()
	for {
		done, grew, err := drain()
		if done || err != nil {
			return err
		}
		if grew {
			lastCheck = time.Now() // news: the writer is alive
		} else if checkLive && time.Since(lastCheck) >= followLiveness {
			lastCheck = time.Now()
			running, err := deployRunning(dir, service, id)
			if err != nil {
				return fmt.Errorf("follow %s: %w", path, err)
			}
			if !running {
				// Whatever was written before the lock was released
				// is in the file now.
				done, _, err := drain()
				if done || err != nil {
					return err
				}
				return ErrInterrupted
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}
