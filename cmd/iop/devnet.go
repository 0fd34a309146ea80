package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/internal/devnet"
)

func devnetCmd(g *globals) *cobra.Command {
	var n int
	var dir string
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local IoP network of full nodes on loopback until interrupted",
		Long: `Start N full nodes in this process, on loopback, each with its own key and
embedded database under --dir and placed at a different world city. The
nodes' addresses are printed and written to DIR/devnet.json. Running devnet
again with the same --dir brings back the same nodes with their data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(g.stderr, "starting devnet in %s ...\n", dir)
			d, err := devnet.Start(devnet.Config{Dir: dir, Nodes: n, Logger: g.logger()})
			if err != nil {
				return err
			}
			info := d.Info()
			if err := g.print(info, func(w io.Writer) {
				fmt.Fprintf(w, "devnet with %d node(s); description in %s\n\n", len(info.Nodes), filepath.Join(info.Dir, "devnet.json"))
				for _, nd := range info.Nodes {
					fmt.Fprintf(w, "%s at %s\n  addr: %s\n  http: %s\n", nd.Name, nd.Location, nd.Addr, nd.HTTP)
				}
				if len(info.Nodes) > 0 {
					fmt.Fprintf(w, "\nTry, in another terminal:\n  export IOP_PASSPHRASE=devnet IOP_SERVER=%s\n  iop id new --home A\n  iop agent --home A &\n  iop profile set --home A --type chat/user --name Ada --location 51.50,-0.12\n  iop search --type 'chat/*' --json\n", info.Nodes[0].Addr)
				}
				fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
			}); err != nil {
				d.Close()
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	cmd.Flags().IntVarP(&n, "nodes", "n", 0, "number of nodes (default 5, or as many as --dir already holds)")
	cmd.Flags().StringVar(&dir, "dir", ".iop-devnet", "directory of the nodes' keys and data")
	return cmd
}
