package bot

import (
	"context"
	"time"
)

// unfinishedEvery is how often a bot whose deploy state is shared with
// other deploy hosts (deploy.state) looks for deploys whose process died.
var unfinishedEvery = 5 * time.Second

// watchUnfinished announces, while the bot runs, each deploy whose
// process died on any host sharing the state (its lock released by the
// database when the session ended) with the state of its hosts and the
// offer of !rollback and !continue, once: seen holds the ids announced
// already. Only the copy of the bot that holds the primary nick posts.
func (b *Bot) watchUnfinished(ctx context.Context, seen map[string]bool) {
	t := time.NewTicker(unfinishedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if b.holdsNick() {
			b.postNewUnfinished(seen)
		}
	}
}

// postNewUnfinished announces the unfinished deploys not in seen, and
// adds them to it.
func (b *Bot) postNewUnfinished(seen map[string]bool) {
	list, err := b.dep.eng.Unfinished()
	if err != nil {
		b.log.Warn("reading unfinished deploys", "err", err)
		return
	}
	for _, d := range list {
		if seen[d.Meta.ID] {
			continue
		}
		seen[d.Meta.ID] = true
		if _, ok := b.cfg.Service(d.Meta.Service); !ok {
			continue
		}
		b.log.Warn("interrupted deploy found", "deploy", d.Meta.ID, "service", d.Meta.Service, "host", d.Meta.Host)
		b.say(b.announceChannel(), PriorityUrgent, interruptedText(d, time.Now()))
	}
}
