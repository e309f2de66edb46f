package bot

import (
	"context"
	"errors"
	"os"
	"time"

	"deploybot/deployer"
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
		if _, ok := b.cfg.Service(d.Meta.Service); !ok {
			seen[d.Meta.ID] = true
			continue
		}
		announce, retry := b.claimAnnouncement(d)
		seen[d.Meta.ID] = !retry
		if announce {
			b.log.Warn("interrupted deploy found", "deploy", d.Meta.ID, "service", d.Meta.Service, "host", d.Meta.Host)
			b.say(b.announceChannel(), PriorityUrgent, interruptedText(d, time.Now()))
		}
	}
}

// claimAnnouncement says whether this bot announces the interrupted
// deploy d, and whether to ask again later (the state store failed).
// Without a shared deploy state, it always does. With one, every bot
// watching that state (another deploy host's, with a nick of its own)
// sees the deploy, and only the one whose claim is recorded first
// announces it (Engine.ClaimAnnouncement); none does while the deploy's
// lock is held (its recovery runs), except for a manual lock, which
// would otherwise silence it for good.
func (b *Bot) claimAnnouncement(d *deployer.Deploy) (announce, retry bool) {
	if b.cfg.Deploy.State == "" {
		return true, false
	}
	host, _ := os.Hostname()
	ok, err := b.dep.eng.ClaimAnnouncement(d.Meta.ID, b.cfg.IRC.Nick+" on "+host)
	var locked *deployer.LockedError
	switch {
	case errors.As(err, &locked):
		return locked.Manual, false
	case errors.Is(err, deployer.ErrFinished):
		return false, false
	case err != nil:
		b.log.Warn("claiming the announcement of an interrupted deploy", "deploy", d.Meta.ID, "err", err)
		return false, true
	}
	return ok, false
}
