package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/consensus"
	"github.com/iop-go/iop/internal/chain/types"
)

// txFlags are the flags of commands that sign and submit a transaction.
type txFlags struct {
	which, server string
	devnetAdmin   int
	wait          bool
	confs         int64
}

func (f *txFlags) add(cmd *cobra.Command, admin bool) {
	cmd.Flags().StringVar(&f.which, "id", "", "identity whose key signs and pays (default: the home's default)")
	cmd.Flags().StringVar(&f.server, "server", "", "node address (default IOP_SERVER)")
	cmd.Flags().BoolVar(&f.wait, "wait", true, "wait until the transaction is confirmed")
	cmd.Flags().Int64Var(&f.confs, "confirmations", 1, "confirmations to wait for")
	f.devnetAdmin = -1
	if admin {
		cmd.Flags().IntVar(&f.devnetAdmin, "devnet-admin", -1, "sign with the well-known devnet administrator key N instead of an identity (devnet only)")
	}
}

// wallet opens the signing wallet: an identity, or a devnet admin key.
func (g *globals) txWallet(ctx context.Context, f *txFlags) (*client.Wallet, func(), error) {
	if f.devnetAdmin < 0 {
		return g.openWallet(ctx, f.which, f.server)
	}
	k, err := identity.NewKeyFromSeed(chaincfg.DevnetAdminKey(f.devnetAdmin).Seed())
	if err != nil {
		return nil, nil, err
	}
	w, done, err := openWalletKey(ctx, f.server, k)
	if err != nil {
		return nil, nil, err
	}
	if w.Params().Name != "devnet" {
		done()
		return nil, nil, errors.New("--devnet-admin works only on a devnet node")
	}
	return w, done, nil
}

// submitPayload builds, signs and submits a transaction with the outputs
// and payload build makes for the wallet's network, then follows it.
func (g *globals) submitPayload(cmd *cobra.Command, f *txFlags, build func(w *client.Wallet) ([]types.TxOut, consensus.Payload, error)) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
	defer cancel()
	w, done, err := g.txWallet(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	outs, pl, err := build(w)
	if err != nil {
		return err
	}
	tx, err := w.Build(ctx, outs, pl.Encode())
	if errors.Is(err, client.ErrInsufficientFunds) && f.devnetAdmin >= 0 {
		return fmt.Errorf("%w; fund the devnet administrator first: iop wallet faucet --to %s", err, w.AddressText())
	}
	if err != nil {
		return err
	}
	id, err := w.Submit(ctx, tx)
	if err != nil {
		return err
	}
	return g.follow(ctx, w, id, f.wait, f.confs)
}

// parseMiner reads a miner as its address on the wallet's network, or as
// its Ed25519 public key in hex (licences name the key's address).
func parseMiner(w *client.Wallet, s string) ([32]byte, error) {
	prefix := w.Params().AddressPrefix
	if strings.HasPrefix(s, prefix+"1") {
		a, err := types.ParseAddress(prefix, s)
		return [32]byte(a), err
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return [32]byte{}, fmt.Errorf("miner %q: want its address (%s1..., as iop wallet new prints) or its Ed25519 public key in hex", s, prefix)
	}
	return [32]byte(types.AddressOf(b)), nil
}

func licenceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "licence", Short: "Administrators: add or remove mining licences"}
	for _, op := range []struct {
		name string
		code byte
		what string
	}{{"add", consensus.AdminAddLicence, "Licence a miner's address"}, {"remove", consensus.AdminRemoveLicence, "Revoke a miner address's licence"}} {
		var f txFlags
		c := &cobra.Command{
			Use:   op.name + " ADDRESS|PUBLIC_KEY",
			Short: op.what + " (an administrator transaction; effective from the block after it)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.submitPayload(cmd, &f, func(w *client.Wallet) ([]types.TxOut, consensus.Payload, error) {
					a, err := parseMiner(w, args[0])
					return nil, consensus.Payload{Admin: &consensus.Admin{Op: op.code, Key: a}}, err
				})
			},
		}
		f.add(c, true)
		cmd.AddCommand(c)
	}
	return cmd
}

func capCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cap", Short: "Administrators: enable or disable the mining cap"}
	var fe, fd txFlags
	enable := &cobra.Command{
		Use:   "enable FACTOR",
		Short: "Cap every licensed miner at FACTOR × window / licences blocks per rolling window",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 255 {
				return fmt.Errorf("factor %q: want a whole number from 1 to 255", args[0])
			}
			return g.submitPayload(cmd, &fe, func(*client.Wallet) ([]types.TxOut, consensus.Payload, error) {
				return nil, consensus.Payload{Admin: &consensus.Admin{Op: consensus.AdminEnableCap, Factor: uint8(n)}}, nil
			})
		},
	}
	fe.add(enable, true)
	disable := &cobra.Command{
		Use:   "disable",
		Short: "Disable the mining cap",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.submitPayload(cmd, &fd, func(*client.Wallet) ([]types.TxOut, consensus.Payload, error) {
				return nil, consensus.Payload{Admin: &consensus.Admin{Op: consensus.AdminDisableCap}}, nil
			})
		},
	}
	fd.add(disable, true)
	cmd.AddCommand(enable, disable)
	return cmd
}

func ccCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cc", Short: "Contribution contracts: propose, vote, list"}
	var pf txFlags
	var reward, deposit string
	var blocks uint64
	var to []string
	propose := &cobra.Command{
		Use:   "propose",
		Short: "Propose a contract paid from new issuance; the deposit stays frozen in your wallet (spending it cancels)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			perBlock, err := client.ParseAmount(reward)
			if err != nil {
				return fmt.Errorf("--reward-per-block: %w", err)
			}
			if len(to) == 0 {
				return errors.New("name at least one beneficiary with --to ADDRESS[=AMOUNT]")
			}
			var dep uint64
			if deposit != "" {
				if dep, err = client.ParseAmount(deposit); err != nil {
					return fmt.Errorf("--deposit: %w", err)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			w, done, err := g.txWallet(ctx, &pf)
			if err != nil {
				return err
			}
			defer done()
			pr := consensus.Proposal{Reward: perBlock, Duration: blocks}
			rest := perBlock
			for i, t := range to {
				addrText, amountText, hasAmount := strings.Cut(t, "=")
				a, err := types.ParseAddress(w.Params().AddressPrefix, addrText)
				if err != nil {
					return fmt.Errorf("beneficiary %d: %w", i+1, err)
				}
				amount := rest
				if hasAmount {
					if amount, err = client.ParseAmount(amountText); err != nil || amount > rest {
						return fmt.Errorf("beneficiary %d: amount %q is not within what is left of the reward", i+1, amountText)
					}
				} else if i != len(to)-1 {
					return errors.New("every beneficiary but the last needs =AMOUNT")
				}
				rest -= amount
				pr.Beneficiaries = append(pr.Beneficiaries, consensus.Beneficiary{Address: a, Amount: amount})
			}
			if dep == 0 {
				dep = w.Params().CCDepositMin
			}
			o := []types.TxOut{{Value: dep, Address: w.Address()}}
			tx, err := w.Build(ctx, o, (&consensus.Payload{Proposal: &pr}).Encode())
			if err != nil {
				return err
			}
			id, err := w.Submit(ctx, tx)
			if err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "contract: %s\n", id)
			}
			return g.follow(ctx, w, id, pf.wait, pf.confs)
		},
	}
	pf.add(propose, false)
	propose.Flags().StringVar(&reward, "reward-per-block", "", "tokens paid per block while the contract executes")
	propose.Flags().Uint64Var(&blocks, "blocks", 0, "blocks the contract executes for")
	propose.Flags().StringSliceVar(&to, "to", nil, "beneficiary ADDRESS[=AMOUNT per block]; the last one gets the rest (repeatable)")
	propose.Flags().StringVar(&deposit, "deposit", "", "tokens to freeze as the deposit (default: the network's minimum)")

	var vf txFlags
	var weight string
	vote := &cobra.Command{
		Use:   "vote CONTRACT yes|no",
		Short: "Vote with frozen coins: the vote counts while its coin stays unspent (NO votes weigh more)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := types.ParseHash(args[0])
			if err != nil {
				return fmt.Errorf("contract: %w", err)
			}
			var yes bool
			switch args[1] {
			case "yes":
				yes = true
			case "no":
			default:
				return fmt.Errorf("vote %q: want yes or no", args[1])
			}
			wt, err := client.ParseAmount(weight)
			if err != nil || wt == 0 {
				return fmt.Errorf("--weight %q: want a positive number of tokens", weight)
			}
			return g.submitPayload(cmd, &vf, func(w *client.Wallet) ([]types.TxOut, consensus.Payload, error) {
				return []types.TxOut{{Value: wt, Address: w.Address()}}, consensus.Payload{Vote: &consensus.Vote{Contract: id, Yes: yes}}, nil
			})
		},
	}
	vf.add(vote, false)
	vote.Flags().StringVar(&weight, "weight", "", "tokens to freeze as the vote's weight")

	var server string
	list := &cobra.Command{
		Use:   "list",
		Short: "Contribution contracts with their states and tallies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			resp, err := chainRequest(ctx, server, chainapi.Request{Op: chainapi.OpContracts})
			if err != nil {
				return err
			}
			cs := resp.Contracts
			if cs == nil {
				cs = []chainapi.Contract{}
			}
			return g.print(cs, func(w io.Writer) {
				if len(cs) == 0 {
					fmt.Fprintln(w, "no contracts")
				}
				for _, c := range cs {
					fmt.Fprintf(w, "%s %-13s %s/block × %d blocks, yes %s, no %s, voting ends %d\n", c.ID, c.State,
						client.FormatAmount(c.RewardPerBlock), c.Duration, client.FormatAmount(c.Yes), client.FormatAmount(c.No), c.VotingEnds)
				}
			})
		},
	}
	list.Flags().StringVar(&server, "server", "", "node address (default IOP_SERVER)")
	cmd.AddCommand(propose, vote, list)
	return cmd
}
