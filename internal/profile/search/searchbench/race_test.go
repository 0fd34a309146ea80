//go:build race

package searchbench

// raceEnabled shrinks the correctness test under the race detector, which
// makes the scans about ten times slower.
const raceEnabled = true
