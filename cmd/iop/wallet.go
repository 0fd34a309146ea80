package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/p2p"
)

// nodeAddr is the node given by --server or IOP_SERVER.
func nodeAddr(server string) (peer.AddrInfo, error) {
	if server == "" {
		server = envServer()
	}
	if server == "" {
		return peer.AddrInfo{}, errors.New("no node: pass --server or set IOP_SERVER to a node address as printed by `iop devnet`")
	}
	return p2p.ParseAddr(server)
}

// chainRequest asks the chain API of the node given by --server or
// IOP_SERVER one question.
func chainRequest(ctx context.Context, server string, req chainapi.Request) (*chainapi.Response, error) {
	ai, err := nodeAddr(server)
	if err != nil {
		return nil, err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return chainapi.NewClient(h, ai).Do(ctx, req)
}

// openWallet opens the wallet of an identity at the node.
func (g *globals) openWallet(ctx context.Context, which, server string) (*client.Wallet, func(), error) {
	key, err := g.loadKey(which)
	if err != nil {
		return nil, nil, err
	}
	return openWalletKey(ctx, server, key)
}

// openWalletKey opens key's wallet at the node given by server or
// IOP_SERVER.
func openWalletKey(ctx context.Context, server string, key *identity.Key) (*client.Wallet, func(), error) {
	ai, err := nodeAddr(server)
	if err != nil {
		return nil, nil, err
	}
	h, err := p2p.New(p2p.Config{Limits: p2p.ClientLimits()})
	if err != nil {
		return nil, nil, err
	}
	w, err := client.OpenWallet(ctx, h, ai, key)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return w, func() { h.Close() }, nil
}

func walletCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "wallet", Short: "Hold and pay IoP tokens with your identity's key"}
	var which, server, network string
	var devnetAdmin int
	var wait bool
	var confs int64
	addFlags := func(c *cobra.Command) {
		c.Flags().StringVar(&which, "id", "", "identity whose key holds the tokens (default: the home's default)")
		c.Flags().StringVar(&server, "server", "", "node address (default IOP_SERVER)")
	}
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Print the token address of your identity's key (creating an identity if the home has none)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := chaincfg.ByName(network)
			if err != nil {
				return err
			}
			if devnetAdmin >= 0 {
				if p.Name != "devnet" {
					return errors.New("--devnet-admin is for --network devnet")
				}
				addr := types.AddressOf(chaincfg.DevnetAdminKey(devnetAdmin).Public().(ed25519.PublicKey)).Encode(p.AddressPrefix)
				out := struct {
					Address string `json:"address"`
					Network string `json:"network"`
				}{addr, p.Name}
				return g.print(out, func(w io.Writer) { fmt.Fprintln(w, addr) })
			}
			ks, err := g.keystore()
			if err != nil {
				return err
			}
			var pub []byte
			var id identity.ID
			if e, err := ks.Resolve(which); err == nil {
				pub, id = e.PublicKey, e.ID
			} else if which == "" && errors.Is(err, identity.ErrNotFound) {
				pass, err := g.passphrase("New passphrase: ", true)
				if err != nil {
					return err
				}
				k, err := identity.GenerateKey(nil)
				if err != nil {
					return err
				}
				e, err := ks.Add(k, "wallet", pass)
				if err != nil {
					return err
				}
				pub, id = e.PublicKey, e.ID
			} else {
				return err
			}
			addr := types.AddressOf(pub).Encode(p.AddressPrefix)
			out := struct {
				Address  string      `json:"address"`
				Identity identity.ID `json:"identity"`
				Network  string      `json:"network"`
			}{addr, id, p.Name}
			return g.print(out, func(w io.Writer) { fmt.Fprintln(w, addr) })
		},
	}
	newCmd.Flags().StringVar(&which, "id", "", "identity (default: the home's default; a new one when the home has none)")
	newCmd.Flags().StringVar(&network, "network", "devnet", "network whose address form to print: main, test or devnet")
	newCmd.Flags().IntVar(&devnetAdmin, "devnet-admin", -1, "print the address of the well-known devnet administrator key N instead")

	balance := &cobra.Command{
		Use:   "balance",
		Short: "Spendable and immature tokens of your address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			w, done, err := g.openWallet(ctx, which, server)
			if err != nil {
				return err
			}
			defer done()
			b, err := w.Balance(ctx)
			if err != nil {
				return err
			}
			return g.print(b, func(out io.Writer) {
				fmt.Fprintf(out, "address:   %s\nspendable: %s\nimmature:  %s\nfrozen:    %s\n", b.Address,
					client.FormatAmount(b.Spendable), client.FormatAmount(b.Immature), client.FormatAmount(b.Frozen))
			})
		},
	}
	addFlags(balance)

	send := &cobra.Command{
		Use:   "send ADDRESS AMOUNT",
		Short: "Pay tokens to an address (signed, fee-paying), and follow the payment to confirmation",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			w, done, err := g.openWallet(ctx, which, server)
			if err != nil {
				return err
			}
			defer done()
			to, err := types.ParseAddress(w.Params().AddressPrefix, args[0])
			if err != nil {
				return err
			}
			amount, err := client.ParseAmount(args[1])
			if err != nil {
				return err
			}
			if amount == 0 {
				return errors.New("amount must be positive")
			}
			id, err := w.Send(ctx, to, amount)
			if err != nil {
				return err
			}
			return g.follow(ctx, w, id, wait, confs)
		},
	}
	addFlags(send)
	send.Flags().BoolVar(&wait, "wait", true, "wait until the payment is confirmed")
	send.Flags().Int64Var(&confs, "confirmations", 1, "confirmations to wait for")

	faucet := &cobra.Command{
		Use:   "faucet",
		Short: "Devnet only: get tokens to try things with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			w, done, err := g.openWallet(ctx, which, server)
			if err != nil {
				return err
			}
			defer done()
			amount, err := client.ParseAmount(faucetAmount)
			if err != nil {
				return err
			}
			to := w.AddressText()
			if faucetTo != "" {
				if _, err := types.ParseAddress(w.Params().AddressPrefix, faucetTo); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				to = faucetTo
			}
			resp, err := w.API().Do(ctx, chainapi.Request{Op: chainapi.OpFaucet, Address: to, Amount: amount})
			if err != nil {
				return fmt.Errorf("faucet: %w", err)
			}
			return g.follow(ctx, w, *resp.TxID, wait, confs)
		},
	}
	addFlags(faucet)
	faucet.Flags().StringVar(&faucetAmount, "amount", "100", "tokens to ask for")
	faucet.Flags().StringVar(&faucetTo, "to", "", "pay this address instead of your own (e.g. the devnet administrator's)")
	faucet.Flags().BoolVar(&wait, "wait", true, "wait until the payment is confirmed")
	faucet.Flags().Int64Var(&confs, "confirmations", 1, "confirmations to wait for")

	cmd.AddCommand(newCmd, balance, send, faucet)
	return cmd
}

var faucetAmount, faucetTo string

// follow prints a transaction ID and, with wait, its way to confirmation.
func (g *globals) follow(ctx context.Context, w *client.Wallet, id types.Hash, wait bool, confs int64) error {
	out := struct {
		TxID   types.Hash         `json:"txid"`
		Status *chainapi.TxStatus `json:"status,omitempty"`
	}{TxID: id}
	if !g.json {
		fmt.Fprintf(g.stdout, "txid: %s\n", id)
	}
	if wait {
		st, err := w.WaitConfirmed(ctx, id, confs, func(st chainapi.TxStatus) {
			if !g.json {
				fmt.Fprintf(g.stderr, "  %s", st.State)
				if st.State == "confirmed" {
					fmt.Fprintf(g.stderr, " at height %d (%d confirmations)", st.Height, st.Confirmations)
				}
				fmt.Fprintln(g.stderr)
			}
		})
		if err != nil {
			return err
		}
		out.Status = &st
	}
	if g.json {
		return g.print(out, nil)
	}
	return nil
}

func chainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "The token chain as a node sees it"}
	var server string
	status := &cobra.Command{
		Use:   "status",
		Short: "Height, tip, difficulty, licences, cap state, supply",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			resp, err := chainRequest(ctx, server, chainapi.Request{Op: chainapi.OpStatus})
			if err != nil {
				return err
			}
			s := resp.Status
			return g.print(s, func(w io.Writer) {
				fmt.Fprintf(w, "network:    %s\nheight:     %d\ntip:        %s\ndifficulty: %g (bits %08x)\nsupply:     %s\n",
					s.Network, s.Height, s.Tip, s.Difficulty, s.Bits, client.FormatAmount(s.Supply))
				cap := "disabled"
				if s.CapEnabled {
					cap = fmt.Sprintf("enabled, factor %d", s.CapFactor)
				}
				fmt.Fprintf(w, "cap:        %s\nlicences:   %d %s\nmempool:    %d txs, %d bytes\n",
					cap, len(s.Licences), strings.Join(s.Licences, " "), s.MempoolTxs, s.MempoolBytes)
				if s.Syncing {
					fmt.Fprintln(w, "syncing:    catching up with peers")
				}
			})
		},
	}
	status.Flags().StringVar(&server, "server", "", "node address (default IOP_SERVER)")
	cmd.AddCommand(status, licenceCmd(g), capCmd(g))
	return cmd
}
