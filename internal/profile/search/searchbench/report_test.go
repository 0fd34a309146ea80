package searchbench

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// TestReport runs the full benchmark and prints its table. It is skipped
// unless IOP_SEARCHBENCH_REPORT is set:
//
//	IOP_SEARCHBENCH_REPORT=1 go test ./internal/profile/search/searchbench -run TestReport -v -timeout 30m
//
// IOP_SEARCHBENCH_N (default 2,200,000), IOP_SEARCHBENCH_QUERIES (200),
// IOP_SEARCHBENCH_CAP (10,000) and IOP_SEARCHBENCH_SEED (1) override the
// configuration; IOP_SEARCHBENCH_JSON names a file for the JSON report.
func TestReport(t *testing.T) {
	if os.Getenv("IOP_SEARCHBENCH_REPORT") == "" {
		t.Skip("set IOP_SEARCHBENCH_REPORT=1 to run the full benchmark")
	}
	cfg := Config{
		N:       envInt(t, "IOP_SEARCHBENCH_N"),
		Queries: envInt(t, "IOP_SEARCHBENCH_QUERIES"),
		Cap:     envInt(t, "IOP_SEARCHBENCH_CAP"),
		Seed:    uint64(envInt(t, "IOP_SEARCHBENCH_SEED")),
	}
	rep, err := Run(context.Background(), cfg, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		t.Fatal(err)
	}
	if path := os.Getenv("IOP_SEARCHBENCH_JSON"); path != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if rep.Mismatches != 0 {
		t.Errorf("%d mismatches between index and scan", rep.Mismatches)
	}
}

func envInt(t *testing.T, name string) int {
	s := os.Getenv(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}
