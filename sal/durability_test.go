package sal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// durabilityChildEnv, when set, makes TestDurabilityKill the child: it
// appends durabilityEntries entries to the SQLite database at that path,
// printing "<id> <n>" on stdout after each Append returns.
const durabilityChildEnv = "DEPLOYBOT_SAL_DURABILITY_CHILD"

const durabilityEntries = 10000

func durabilityMessage(n int) string {
	return fmt.Sprintf("durable entry %d of the kill test", n)
}

// TestDurabilityKill: a child process appends entries and reports each one
// as Append returns; it is killed with SIGKILL at a random moment; every
// entry it reported is in the store afterwards, intact, and the database
// passes SQLite's integrity checks.
func TestDurabilityKill(t *testing.T) {
	if path := os.Getenv(durabilityChildEnv); path != "" {
		durabilityChild(t, path)
		return
	}
	// Appends take most of the time (~0.5 ms each): one round may kill
	// anywhere up to 9,000 appends in, the others early, to keep the
	// whole within a few seconds.
	upTo := []int{9000, 2500, 2500}
	if testing.Short() {
		upTo = []int{2500}
	}
	for round, hi := range upTo {
		t.Run(fmt.Sprintf("round%d", round+1), func(t *testing.T) {
			durabilityRound(t, 100+rand.IntN(hi-100+1))
		})
	}
}

func durabilityChild(t *testing.T, path string) {
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= durabilityEntries; n++ {
		e := Entry{Nick: "killtest", Channel: "#ops", Project: "ops", Message: durabilityMessage(n), Source: SourceCLI}
		if err := s.Append(context.Background(), &e); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "%d %d\n", e.ID, n) // unbuffered: out once written
	}
	s.Close()
}

func durabilityRound(t *testing.T, killAfter int) {
	path := filepath.Join(t.TempDir(), "sal.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityKill$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), durabilityChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	start := time.Now()

	// Read acknowledgements; kill after killAfter of them, a random
	// fraction of an append later; then read whatever else was printed
	// before the kill: those were acknowledged too.
	acked := map[int64]int{} // id → n
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		id, n, ok := parseAck(sc.Text())
		if !ok {
			continue // the test framework's own lines
		}
		acked[id] = n
		if !killed && len(acked) >= killAfter {
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("the child ended before it was killed (%d entries acknowledged): %v", len(acked), err)
	}
	t.Logf("killed after %d acknowledged appends (asked for %d), %v", len(acked), killAfter, time.Since(start).Round(time.Millisecond))

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	for id, n := range acked {
		e, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged entry %d (#%d): %v", id, n, err)
		}
		if id != int64(n) || e.Message != durabilityMessage(n) || e.Nick != "killtest" || e.Project != "ops" || e.Source != SourceCLI {
			t.Fatalf("acknowledged entry %d (#%d) = %+v", id, n, e)
		}
	}
	// At most one entry more than acknowledged: the one in flight.
	var count, maxID int64
	if err := s.db.QueryRow(`SELECT count(*), coalesce(max(id), 0) FROM entries`).Scan(&count, &maxID); err != nil {
		t.Fatal(err)
	}
	if count < int64(len(acked)) || count > int64(len(acked))+1 || maxID != count {
		t.Fatalf("store holds %d entries (max id %d) after %d acknowledged", count, maxID, len(acked))
	}
	var integrity string
	if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}
	if _, err := s.db.Exec(`INSERT INTO entries_fts(entries_fts) VALUES ('integrity-check')`); err != nil {
		t.Fatalf("full-text index integrity-check: %v", err)
	}
	// The search index has the last entries too.
	last := durabilityMessage(int(count))
	got, err := s.List(ctx, Query{Search: strings.Fields(last)[2] + " durable"})
	if err != nil || len(got) != 1 || got[0].Message != last {
		t.Fatalf("searching for the last entry: %+v, %v", got, err)
	}
	// And the store takes new entries.
	e := Entry{Nick: "after", Message: "after the kill", Source: SourceCLI}
	if err := s.Append(ctx, &e); err != nil || e.ID != count+1 {
		t.Fatalf("append after the kill: id %d, %v", e.ID, err)
	}
}

func parseAck(line string) (id int64, n int, ok bool) {
	a, b, found := strings.Cut(line, " ")
	if !found {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.Atoi(b)
	return id, n, err1 == nil && err2 == nil && id > 0 && n > 0
}
