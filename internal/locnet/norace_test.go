//go:build !race

package locnet_test

const raceEnabled = false
