//go:build race

package locnet_test

const raceEnabled = true
