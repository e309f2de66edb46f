package remote

import (
	"context"
	"fmt"
)

// State returns the revision current points at and the last revision
// marked done on the target ("" when there is none); one session.
func (c *Conn) State(ctx context.Context, t Target) (current, done string, err error) {
	st, err := c.Status(ctx, t)
	return st.Current, st.Done, err
}

// TargetState is what Status reads on a target.
type TargetState struct {
	Current   string // revision current points at
	Done      string // last revision marked done
	Deploying string // revision of a deploy not finalized nor rolled back
}

// StatusScript returns the script Status runs (scripts/status.sh).
func (t Target) StatusScript() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	return prelude(shellVar{"DEPLOY_DIR", t.Dir}) + commonSh + statusSh, nil
}

// Status reads current, .done and .deploying on the target; one session.
func (c *Conn) Status(ctx context.Context, t Target) (TargetState, error) {
	script, err := t.StatusScript()
	if err != nil {
		return TargetState{}, err
	}
	res, pr, err := c.run(ctx, script, 0, newParser())
	if err != nil {
		return TargetState{}, err
	}
	if res.ExitCode != 0 {
		return TargetState{}, &StageError{Host: c.host.String(), Stage: "state", ExitCode: res.ExitCode, Output: res.Output}
	}
	_, _, marks, _ := pr.result()
	st := TargetState{Current: marks["current"], Done: marks["done"], Deploying: marks["deploying"]}
	for name, v := range map[string]string{"current": st.Current, "done": st.Done, "deploying": st.Deploying} {
		if v != "" && !ValidSHA(v) {
			return st, fmt.Errorf("%s: %s on the target is %q, not a revision", c.host, name, clip(v, 80))
		}
	}
	return st, nil
}
