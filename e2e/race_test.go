//go:build race

package e2e

// raceEnabled is true when the suite runs under the race detector; gslb is
// then built with -race too.
const raceEnabled = true
