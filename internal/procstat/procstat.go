// Package procstat reads this process's resident memory and CPU time from
// /proc, for benchmarks that report what a node costs.
package procstat

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS returns the process's resident set size in bytes.
func RSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// CPUTime returns the process's user plus system CPU time.
func CPUTime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, errors.New("cannot parse /proc/self/stat")
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 13 {
		return 0, errors.New("cannot parse /proc/self/stat")
	}
	// After the command: state is [0], utime [11], stime [12].
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("cannot parse /proc/self/stat")
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}
