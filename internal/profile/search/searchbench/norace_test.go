//go:build !race

package searchbench

const raceEnabled = false
