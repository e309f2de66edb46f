package bot

import (
	"fmt"
	"strings"

	"deploybot/deployer"
)

// unsupportedText is the line that names the Scap3 settings of a scap:
// true service that a deploy does not carry out: each by key (and file
// and line), the reasons being in the deploy's log and check-config.
func unsupportedText(ev deployer.Event) string {
	keys := make([]string, 0, len(ev.Notes))
	for _, n := range ev.Notes {
		// "file:line: key: why" → "key (file:line)"
		where, rest, ok := strings.Cut(n, ": ")
		key, _, ok2 := strings.Cut(rest, ": ")
		if !ok || !ok2 {
			keys = append(keys, n)
			continue
		}
		keys = append(keys, key+" ("+where+")")
	}
	return fmt.Sprintf("%s: not carried out from scap/ (%d): %s — reasons in the deploy log and check-config",
		ev.Service, len(ev.Notes), strings.Join(keys, ", "))
}
