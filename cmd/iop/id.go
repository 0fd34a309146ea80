package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/identity"
)

type idView struct {
	ID        identity.ID `json:"id"`
	Name      string      `json:"name,omitempty"`
	PublicKey string      `json:"public_key"`
	Created   string      `json:"created"`
	Default   bool        `json:"default"`
	Home      string      `json:"home"`
}

func (g *globals) view(ks *identity.Keystore, e identity.Entry) idView {
	def, _ := ks.Default()
	return idView{ID: e.ID, Name: e.Name, PublicKey: hex.EncodeToString(e.PublicKey),
		Created: e.Created.UTC().Format("2006-01-02T15:04:05Z"), Default: def.ID == e.ID, Home: g.home}
}

func idCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "id", Short: "Create and manage identities (Ed25519 keys, encrypted at rest)"}
	var name string
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Create a new identity and print its network ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := g.keystore()
			if err != nil {
				return err
			}
			pass, err := g.passphrase("New passphrase: ", true)
			if err != nil {
				return err
			}
			k, err := identity.GenerateKey(nil)
			if err != nil {
				return err
			}
			e, err := ks.Add(k, name, pass)
			if err != nil {
				return err
			}
			return g.print(g.view(ks, e), func(w io.Writer) { fmt.Fprintln(w, e.ID) })
		},
	}
	newCmd.Flags().StringVar(&name, "name", "", "a local label for the identity")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the identities in the home directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := g.keystore()
			if err != nil {
				return err
			}
			es, err := ks.List()
			if err != nil {
				return err
			}
			views := make([]idView, 0, len(es))
			for _, e := range es {
				views = append(views, g.view(ks, e))
			}
			return g.print(views, func(w io.Writer) {
				for _, v := range views {
					mark := " "
					if v.Default {
						mark = "*"
					}
					fmt.Fprintf(w, "%s %s %s\n", mark, v.ID, v.Name)
				}
			})
		},
	}
	show := &cobra.Command{
		Use:   "show [ID|name]",
		Short: "Show an identity (default: the default identity)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, e, err := g.resolve(firstArg(args))
			if err != nil {
				return err
			}
			v := g.view(ks, e)
			return g.print(v, func(w io.Writer) {
				fmt.Fprintf(w, "id:         %s\nname:       %s\npublic key: %s\ncreated:    %s\ndefault:    %v\n",
					v.ID, v.Name, v.PublicKey, v.Created, v.Default)
			})
		},
	}
	var out string
	export := &cobra.Command{
		Use:   "export [ID|name]",
		Short: "Write an identity's encrypted key file (to --out or stdout)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, e, err := g.resolve(firstArg(args))
			if err != nil {
				return err
			}
			data, err := ks.Export(e.ID)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = g.stdout.Write(data)
				return err
			}
			return os.WriteFile(out, data, 0o600)
		},
	}
	export.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import an exported key file (its passphrase is checked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ks, err := g.keystore()
			if err != nil {
				return err
			}
			pass, err := g.passphrase("Passphrase of the key file: ", false)
			if err != nil {
				return err
			}
			e, err := ks.Import(data, pass)
			if err != nil {
				return err
			}
			return g.print(g.view(ks, e), func(w io.Writer) { fmt.Fprintln(w, e.ID) })
		},
	}
	use := &cobra.Command{
		Use:   "use ID|name",
		Short: "Make an identity the default of the home directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, e, err := g.resolve(args[0])
			if err != nil {
				return err
			}
			if err := ks.SetDefault(e.ID); err != nil {
				return err
			}
			return g.print(g.view(ks, e), func(w io.Writer) { fmt.Fprintln(w, e.ID) })
		},
	}
	cmd.AddCommand(newCmd, list, show, export, imp, use)
	return cmd
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
