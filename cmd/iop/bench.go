package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/internal/profile/search/searchbench"
)

func benchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Re-runnable benchmarks of IoP components"}
	var cfg searchbench.Config
	srch := &cobra.Command{
		Use:   "search",
		Short: "Search index against a linear scan over synthetic profiles (default 2.2M)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := searchbench.Run(cmd.Context(), cfg, g.stderr)
			if err != nil {
				return err
			}
			if err := g.print(rep, func(w io.Writer) { rep.WriteTable(w) }); err != nil {
				return err
			}
			if rep.Mismatches > 0 {
				return fmt.Errorf("%d result mismatches between index and scan", rep.Mismatches)
			}
			return nil
		},
	}
	srch.Flags().IntVar(&cfg.N, "n", 2_200_000, "number of profiles")
	srch.Flags().IntVar(&cfg.Queries, "queries", 200, "queries per kind")
	srch.Flags().IntVar(&cfg.Cap, "cap", 10000, "result cap of every query")
	srch.Flags().Uint64Var(&cfg.Seed, "seed", 1, "data and query seed")
	cmd.AddCommand(srch)
	return cmd
}
