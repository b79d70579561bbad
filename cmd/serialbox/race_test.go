//go:build race

package main

// raceEnabled reports whether the tests run with the race detector, so that the
// appliance they start is built with it too.
const raceEnabled = true
