package deployer

import (
	"context"
	"sync"
)

// eachBounded runs fn for every item, at most par at once (par <= 0: all
// at once), and waits for the ones it started. Before each start it looks
// at stop and ctx: once stop is closed or ctx is done, no new item starts,
// and the items not started are returned in order.
func eachBounded[T any](ctx context.Context, items []T, par int, stop <-chan struct{}, fn func(T)) (notStarted []T) {
	if par <= 0 || par > len(items) {
		par = len(items)
	}
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-stop:
		case <-ctx.Done():
		}
		if stopped(stop) || ctx.Err() != nil {
			notStarted = items[i:]
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
	return notStarted
}

// stopped reports whether stop is closed (a nil stop never is).
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
