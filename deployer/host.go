package deployer

import (
	"context"
	"time"

	"deploybot/config"
	"deploybot/deployer/remote"
)

// Host is what the engine needs of one target: the stages of a deploy,
// its checks, and the connection's health. *remote.Conn (one SSH
// connection, reused for every step) implements it; tests use an
// in-memory fleet.
type Host interface {
	// Deploy fetches, checks out, promotes and restarts sha, reporting
	// each stage; an error is a failed host.
	Deploy(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, error)
	// Finalize marks sha done and prunes old revisions.
	Finalize(ctx context.Context, t remote.Target, sha string) (remote.StageResult, error)
	// Rollback points the host back at its last done revision, restarts,
	// and returns that revision.
	Rollback(ctx context.Context, t remote.Target) (remote.StageResult, string, error)
	// Stop ends the operation opID (a deploy whose process died) if it
	// still runs on the host: TERM to its process group, KILL after
	// grace; it returns once the group is gone.
	Stop(ctx context.Context, t remote.Target, opID string, grace time.Duration) (remote.StopResult, error)
	// Status reads the host's current, done and deploying revisions.
	Status(ctx context.Context, t remote.Target) (remote.TargetState, error)
	// CheckPort waits until the service port accepts a connection.
	CheckPort(ctx context.Context, port int, within time.Duration) remote.CheckResult
	// Check runs one configured HTTP or command check.
	Check(ctx context.Context, t remote.Target, chk config.Check) remote.CheckResult
	// Err is non-nil once the connection is lost; the engine dials again.
	Err() error
	Close() error
}

// Dialer connects to hosts.
type Dialer interface {
	Dial(ctx context.Context, h config.Host) (Host, error)
	Close() error
}

// sshDialer is the Dialer of real targets: x/crypto/ssh, one connection per
// host.
type sshDialer struct{ d *remote.Dialer }

func (s sshDialer) Dial(ctx context.Context, h config.Host) (Host, error) {
	c, err := s.d.Dial(ctx, h)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s sshDialer) Close() error { return s.d.Close() }

// DialerFunc adapts a function to Dialer (Close does nothing).
type DialerFunc func(ctx context.Context, h config.Host) (Host, error)

// Dial calls f.
func (f DialerFunc) Dial(ctx context.Context, h config.Host) (Host, error) { return f(ctx, h) }

// Close does nothing.
func (f DialerFunc) Close() error { return nil }
