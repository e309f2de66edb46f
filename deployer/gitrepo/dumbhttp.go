package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrDumbHTTP is the cause of a clone, list or fetch that failed because
// the upstream is served over git's dumb HTTP protocol (static files), which
// go-git does not speak.
var ErrDumbHTTP = errors.New("the upstream is served over git's dumb HTTP protocol, which deploybot cannot fetch from: " +
	"serve it over smart HTTP (git http-backend), or set the upstream to an ssh:// URL or a local path")

// upstreamErr explains err, an upstream operation's failure: when the
// upstream is an http(s) URL answered by a dumb HTTP server, the error
// says so and what to use instead (ErrDumbHTTP); otherwise err is
// returned as it is.
func upstreamErr(ctx context.Context, upstream string, err error) error {
	if err == nil || !isHTTP(upstream) || ctx.Err() != nil {
		return err
	}
	if dumbHTTP(ctx, upstream) {
		return fmt.Errorf("%w (%v)", ErrDumbHTTP, err)
	}
	return err
}

func isHTTP(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// dumbHTTP reports whether the server at upstream answers git's smart
// HTTP discovery request the way a dumb server does: 200 with the static
// info/refs file, not the upload-pack advertisement.
func dumbHTTP(ctx context.Context, upstream string) bool {
	u, err := url.Parse(upstream)
	if err != nil {
		return false
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/info/refs"
	u.RawQuery = "service=git-upload-pack"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	smart := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-git-upload-pack-advertisement")
	return resp.StatusCode == http.StatusOK && !smart
}
