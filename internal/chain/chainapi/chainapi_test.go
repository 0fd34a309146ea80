package chainapi_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chainapi"
	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/wire"
)

// ledger is a tiny in-memory backend: a data fixture behind the real
// server and client.
type ledger struct {
	utxos     map[types.Address][]chainapi.UTXO
	submitted []*types.Tx
}

func (l *ledger) Status() chainapi.Status        { return chainapi.Status{Network: "devnet", Height: 7} }
func (l *ledger) AddressPrefix() string          { return "diop" }
func (l *ledger) Contracts() []chainapi.Contract { return nil }
func (l *ledger) UTXOs(a types.Address) ([]chainapi.UTXO, error) {
	return l.utxos[a], nil
}
func (l *ledger) Submit(tx *types.Tx) error {
	if len(tx.Inputs) == 0 {
		return errors.New("transaction has no inputs")
	}
	l.submitted = append(l.submitted, tx)
	return nil
}
func (l *ledger) TxStatus(id types.Hash) chainapi.TxStatus {
	for _, tx := range l.submitted {
		if tx.ID() == id {
			return chainapi.TxStatus{State: "mempool"}
		}
	}
	return chainapi.TxStatus{State: "unknown"}
}
func (l *ledger) Faucet(types.Address, uint64) (types.Hash, error) {
	return types.Hash{}, chainapi.ErrUnavailable
}

func start(t *testing.T, burst int) (*chainapi.Client, *ledger, types.Address) {
	t.Helper()
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	addr := types.AddressOf(key.Public())
	l := &ledger{utxos: map[types.Address][]chainapi.UTXO{addr: {{Value: 5, Height: 3, Mature: true}}}}
	srvHost, err := p2p.New(p2p.Config{Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srvHost.Close() })
	s, err := chainapi.New(chainapi.Config{Host: srvHost, Backend: l, Burst: burst, Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	h, err := p2p.New(p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return chainapi.NewClient(h, peer.AddrInfo{ID: srvHost.ID(), Addrs: srvHost.Addrs()}), l, addr
}

func TestAPI(t *testing.T) {
	c, l, addr := start(t, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	resp, err := c.Do(ctx, chainapi.Request{Op: chainapi.OpStatus})
	if err != nil || resp.Status.Height != 7 {
		t.Fatalf("status = %+v, %v", resp, err)
	}
	resp, err = c.Do(ctx, chainapi.Request{Op: chainapi.OpUTXOs, Address: addr.Encode("diop")})
	if err != nil || len(resp.UTXOs) != 1 || resp.UTXOs[0].Value != 5 {
		t.Fatalf("utxos = %+v, %v", resp, err)
	}
	tx := &types.Tx{Version: 1, Inputs: []types.TxIn{{}}, Outputs: []types.TxOut{{Value: 1, Address: addr}}}
	resp, err = c.Do(ctx, chainapi.Request{Op: chainapi.OpSubmit, Tx: tx.Encode()})
	if err != nil || *resp.TxID != tx.ID() || len(l.submitted) != 1 {
		t.Fatalf("submit = %+v, %v", resp, err)
	}
	resp, err = c.Do(ctx, chainapi.Request{Op: chainapi.OpTx, TxID: resp.TxID})
	if err != nil || resp.Tx.State != "mempool" {
		t.Fatalf("tx = %+v, %v", resp, err)
	}

	cases := []struct {
		name string
		req  chainapi.Request
		code string
	}{
		{"other network's address", chainapi.Request{Op: chainapi.OpUTXOs, Address: addr.Encode("iop")}, chainapi.CodeBadRequest},
		{"malformed tx", chainapi.Request{Op: chainapi.OpSubmit, Tx: []byte{1, 2}}, chainapi.CodeBadRequest},
		{"refused tx", chainapi.Request{Op: chainapi.OpSubmit, Tx: (&types.Tx{}).Encode()}, chainapi.CodeRejected},
		{"no txid", chainapi.Request{Op: chainapi.OpTx}, chainapi.CodeBadRequest},
		{"faucet off devnet", chainapi.Request{Op: chainapi.OpFaucet, Address: addr.Encode("diop"), Amount: 1}, chainapi.CodeUnavailable},
		{"unknown op", chainapi.Request{Op: "mint"}, chainapi.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Do(ctx, tc.req)
			var ae *chainapi.APIError
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("Do(%+v) = %v, want code %s", tc.req, err, tc.code)
			}
		})
	}
	if len(l.submitted) != 1 {
		t.Errorf("refused requests changed the backend: %d submitted", len(l.submitted))
	}
}

func TestRateLimit(t *testing.T) {
	c, _, _ := start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	busy := 0
	for range 6 {
		_, err := c.Do(ctx, chainapi.Request{Op: chainapi.OpStatus})
		var ae *chainapi.APIError
		if errors.As(err, &ae) && ae.Code == chainapi.CodeBusy {
			busy++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if busy < 2 {
		t.Errorf("%d of 6 quick requests were refused with a burst of 3, want at least 2", busy)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"op":"status"}`))
	f.Add([]byte(`{"op":"submit","tx":"AQID"}`))
	f.Add([]byte(`{"op":"tx","txid":"` + types.Hash{}.String() + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > wire.MaxFrame {
			return
		}
		chainapi.DecodeRequest(body)
	})
}
