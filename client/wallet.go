package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/types"
)

// Token amounts.

// Units is the number of base units in one token.
const Units = chaincfg.Units

// FormatAmount prints base units as tokens with up to 8 decimals.
func FormatAmount(units uint64) string {
	s := strconv.FormatUint(units/Units, 10)
	frac := units % Units
	if frac == 0 {
		return s
	}
	return s + "." + strings.TrimRight(fmt.Sprintf("%08d", frac), "0")
}

// ParseAmount parses a token amount such as "12.5" into base units.
func ParseAmount(s string) (uint64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 8 || strings.ContainsAny(whole+frac, "+- ") {
		return 0, fmt.Errorf("amount %q: want tokens with at most 8 decimals, e.g. 12.5", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || w > math.MaxUint64/Units {
		return 0, fmt.Errorf("amount %q: not a number of tokens", s)
	}
	var f uint64
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 8-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("amount %q: bad decimals", s)
		}
	}
	if w*Units > math.MaxUint64-f {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	return w*Units + f, nil
}

// DefaultFeeRate is the fee a wallet pays, in base units per byte.
const DefaultFeeRate = 10

// Wallet spends the outputs owned by one identity key through a node's
// chain API.
type Wallet struct {
	key    *identity.Key
	api    *chainapi.Client
	params *chaincfg.Params
	// FeeRate is paid per byte of a transaction; default DefaultFeeRate.
	FeeRate uint64
}

// OpenWallet connects key's wallet to the node at addr and learns the
// node's network.
func OpenWallet(ctx context.Context, h host.Host, node peer.AddrInfo, key *identity.Key) (*Wallet, error) {
	api := chainapi.NewClient(h, node)
	resp, err := api.Do(ctx, chainapi.Request{Op: chainapi.OpStatus})
	if err != nil {
		return nil, err
	}
	p, err := chaincfg.ByName(resp.Status.Network)
	if err != nil {
		return nil, fmt.Errorf("node's chain: %w", err)
	}
	return &Wallet{key: key, api: api, params: p, FeeRate: DefaultFeeRate}, nil
}

// Address is the wallet's address.
func (w *Wallet) Address() types.Address { return types.AddressOf(w.key.Public()) }

// AddressText is the address in the network's text form.
func (w *Wallet) AddressText() string { return w.Address().Encode(w.params.AddressPrefix) }

// Params are the network's parameters.
func (w *Wallet) Params() *chaincfg.Params { return w.params }

// API is the node's chain API client.
func (w *Wallet) API() *chainapi.Client { return w.api }

// Balance is what an address holds.
type Balance struct {
	Address   string `json:"address"`
	Spendable uint64 `json:"spendable"` // mature outputs
	Immature  uint64 `json:"immature"`  // coinbase outputs not yet mature
	Frozen    uint64 `json:"frozen"`    // contract deposits and vote coins
	Outputs   int    `json:"outputs"`
}

// Balance asks the node for the wallet's unspent outputs.
func (w *Wallet) Balance(ctx context.Context) (*Balance, error) {
	us, err := w.utxos(ctx)
	if err != nil {
		return nil, err
	}
	b := &Balance{Address: w.AddressText(), Outputs: len(us)}
	for _, u := range us {
		if u.Frozen != "" {
			b.Frozen += u.Value
		} else if u.Mature {
			b.Spendable += u.Value
		} else {
			b.Immature += u.Value
		}
	}
	return b, nil
}

func (w *Wallet) utxos(ctx context.Context) ([]chainapi.UTXO, error) {
	resp, err := w.api.Do(ctx, chainapi.Request{Op: chainapi.OpUTXOs, Address: w.AddressText()})
	if err != nil {
		return nil, err
	}
	return resp.UTXOs, nil
}

// ErrInsufficientFunds reports a payment larger than the spendable balance.
var ErrInsufficientFunds = errors.New("insufficient spendable funds")

// Build makes and signs a transaction paying outs (and payload, when not
// nil) from the wallet's mature outputs, largest first, with change back
// to the wallet and the fee at FeeRate.
func (w *Wallet) Build(ctx context.Context, outs []types.TxOut, payload []byte) (*types.Tx, error) {
	us, err := w.utxos(ctx)
	if err != nil {
		return nil, err
	}
	// Frozen outputs (contract deposits, vote coins) are left alone:
	// spending them would cancel the contract or withdraw the vote.
	us = slices.DeleteFunc(us, func(u chainapi.UTXO) bool { return !u.Mature || u.Frozen != "" })
	slices.SortFunc(us, func(a, b chainapi.UTXO) int {
		if a.Value != b.Value {
			if a.Value > b.Value {
				return -1
			}
			return 1
		}
		return strings.Compare(a.OutPoint.String(), b.OutPoint.String())
	})
	var want uint64
	for _, o := range outs {
		if want+o.Value < want {
			return nil, errors.New("payment overflows")
		}
		want += o.Value
	}
	tx := &types.Tx{Version: 1, Outputs: slices.Clone(outs), Payload: payload}
	change := types.TxOut{Address: w.Address()}
	var have uint64
	for _, u := range us {
		if len(tx.Inputs) == types.MaxTxInputs {
			break
		}
		tx.Inputs = append(tx.Inputs, types.TxIn{Prev: u.OutPoint})
		have += u.Value
		// The fee is counted on the transaction with a change output.
		fee := uint64(len((&types.Tx{Version: 1, Inputs: tx.Inputs, Outputs: append(slices.Clone(tx.Outputs), change), Payload: payload}).Encode())) * w.FeeRate
		if have >= want+fee {
			if rest := have - want - fee; rest > 0 {
				change.Value = rest
				tx.Outputs = append(tx.Outputs, change)
			}
			tx.SignInputs(w.params.Magic, func(int) *identity.Key { return w.key })
			return tx, nil
		}
	}
	return nil, fmt.Errorf("%w: need %s tokens plus fee, have %s spendable", ErrInsufficientFunds, FormatAmount(want), FormatAmount(have))
}

// Submit sends a signed transaction to the node.
func (w *Wallet) Submit(ctx context.Context, tx *types.Tx) (types.Hash, error) {
	resp, err := w.api.Do(ctx, chainapi.Request{Op: chainapi.OpSubmit, Tx: tx.Encode()})
	if err != nil {
		return types.Hash{}, fmt.Errorf("submit: %w", err)
	}
	return *resp.TxID, nil
}

// Send pays amount to addr and returns the transaction ID.
func (w *Wallet) Send(ctx context.Context, to types.Address, amount uint64) (types.Hash, error) {
	tx, err := w.Build(ctx, []types.TxOut{{Value: amount, Address: to}}, nil)
	if err != nil {
		return types.Hash{}, err
	}
	return w.Submit(ctx, tx)
}

// WaitConfirmed polls the node until the transaction has confs
// confirmations; progress, when set, gets each state seen.
func (w *Wallet) WaitConfirmed(ctx context.Context, id types.Hash, confs int64, progress func(chainapi.TxStatus)) (chainapi.TxStatus, error) {
	poll := w.params.TargetSpacing / 4
	poll = min(max(poll, 200*time.Millisecond), 10*time.Second)
	t := time.NewTicker(poll)
	defer t.Stop()
	var last chainapi.TxStatus
	for {
		resp, err := w.api.Do(ctx, chainapi.Request{Op: chainapi.OpTx, TxID: &id})
		if err != nil {
			return last, err
		}
		st := *resp.Tx
		if st != last && progress != nil {
			progress(st)
		}
		last = st
		if st.State == "confirmed" && st.Confirmations >= confs {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("transaction %s not confirmed %d times: %w", id, confs, ctx.Err())
		case <-t.C:
		}
	}
}
