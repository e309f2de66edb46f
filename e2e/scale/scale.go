// Package scale is the one scale factor every test timeout derives from:
// DEPLOYBOT_TEST_SCALE (a positive number, default 1) multiplies each
// wait, so the suite passes on a machine busier than the one it was
// written on (`DEPLOYBOT_TEST_SCALE=3 make test`). It holds nothing else,
// and nothing outside tests uses it.
package scale

import (
	"os"
	"strconv"
	"time"
)

// Env is the environment variable that holds the factor.
const Env = "DEPLOYBOT_TEST_SCALE"

// Factor is the scale factor: DEPLOYBOT_TEST_SCALE, or 1 when it is unset
// or not a positive number.
var Factor = func() float64 {
	f, err := strconv.ParseFloat(os.Getenv(Env), 64)
	if err != nil || f <= 0 {
		return 1
	}
	return f
}()

// D is d scaled: the timeout a test waits for something that takes at
// most d on an idle machine, with room to spare.
func D(d time.Duration) time.Duration { return time.Duration(float64(d) * Factor) }
