// Package chainapi is the protocol wallets and the CLI use to talk to a
// node's token chain: chain status, the unspent outputs of an address,
// submitting a signed transaction, following it to confirmation,
// contribution contracts, and (on devnets) a faucet.
//
// It runs on the node's libp2p host as /iop/chain/api/1. Each request is
// one stream: the client writes one frame (4-byte big-endian length, at
// most 1 MiB, as package wire frames) holding a JSON Request and reads one
// frame holding a JSON Response. Requests are decoded strictly (unknown
// fields are refused), bounded in size and time, and rate-limited per
// peer. The server only reads the chain through a Backend and submits
// transactions to it; it never decides validity itself.
package chainapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/internal/chain/types"
	"github.com/iop-go/iop/internal/wire"
)

// Protocol is the libp2p protocol of the chain API.
const Protocol = "/iop/chain/api/1"

// Operations.
const (
	OpStatus    = "status"
	OpUTXOs     = "utxos"
	OpSubmit    = "submit"
	OpTx        = "tx"
	OpFaucet    = "faucet"
	OpContracts = "contracts"
)

// Request is one API request.
type Request struct {
	Op      string      `json:"op"`
	Address string      `json:"address,omitempty"` // utxos, faucet: text form on the node's network
	Tx      []byte      `json:"tx,omitempty"`      // submit: the encoded transaction
	TxID    *types.Hash `json:"txid,omitempty"`    // tx
	Amount  uint64      `json:"amount,omitempty"`  // faucet: base units
}

// Response is the answer to a Request; Error is set on failure and Code
// then names the kind (see the Code constants).
type Response struct {
	Error     string      `json:"error,omitempty"`
	Code      string      `json:"code,omitempty"`
	Status    *Status     `json:"status,omitempty"`
	UTXOs     []UTXO      `json:"utxos,omitempty"`
	TxID      *types.Hash `json:"txid,omitempty"`
	Tx        *TxStatus   `json:"tx_status,omitempty"`
	Contracts []Contract  `json:"contracts,omitempty"`
}

// Error codes of a Response.
const (
	CodeBadRequest  = "bad-request" // malformed request or field
	CodeRejected    = "rejected"    // the transaction was refused (Error says why)
	CodeUnavailable = "unavailable" // the operation is not offered here (e.g. faucet off devnet)
	CodeBusy        = "busy"        // rate limit
	CodeInternal    = "internal"    // the node failed
)

// Status is a summary of the node's chain.
type Status struct {
	Network      string     `json:"network"`
	Height       int64      `json:"height"`
	Tip          types.Hash `json:"tip"`
	Bits         uint32     `json:"bits"`
	Difficulty   float64    `json:"difficulty"`
	Time         int64      `json:"time"`     // the tip's timestamp
	Supply       uint64     `json:"supply"`   // base units issued
	Licences     []string   `json:"licences"` // licensed miner keys, hex
	CapEnabled   bool       `json:"cap_enabled"`
	CapFactor    int64      `json:"cap_factor"`
	MempoolTxs   int        `json:"mempool_txs"`
	MempoolBytes int        `json:"mempool_bytes"`
	Syncing      bool       `json:"syncing"`
}

// UTXO is an unspent output of an address.
type UTXO struct {
	OutPoint types.OutPoint `json:"outpoint"`
	Value    uint64         `json:"value"`
	Height   int64          `json:"height"`
	Coinbase bool           `json:"coinbase"`
	Mature   bool           `json:"mature"`
	// Frozen is "deposit" for a live contract's deposit and "vote" for a
	// vote coin whose contract is still being voted on: spending it
	// cancels the contract or withdraws the vote, so wallets leave it.
	Frozen string `json:"frozen,omitempty"`
}

// TxStatus tells where a transaction is.
type TxStatus struct {
	State         string `json:"state"` // "mempool", "confirmed" or "unknown"
	Height        int64  `json:"height,omitempty"`
	Confirmations int64  `json:"confirmations,omitempty"`
}

// Contract is a contribution contract with its state and tallies.
type Contract struct {
	ID             types.Hash `json:"id"`
	State          string     `json:"state"`
	RewardPerBlock uint64     `json:"reward_per_block"`
	Duration       int64      `json:"duration"`
	Deposit        uint64     `json:"deposit"`
	Yes            uint64     `json:"yes"`
	No             uint64     `json:"no"`
	Proposed       int64      `json:"proposed_height"`
	VotingEnds     int64      `json:"voting_ends"`
	Starts         int64      `json:"starts,omitempty"`
	Ends           int64      `json:"ends,omitempty"`
	Beneficiaries  []Payment  `json:"beneficiaries"`
}

// Payment is an amount per block to an address (text form).
type Payment struct {
	Address string `json:"address"`
	Amount  uint64 `json:"amount"`
}

// Backend is the node's chain as the API sees it.
type Backend interface {
	Status() Status
	// AddressPrefix is the network's address prefix for parsing addresses.
	AddressPrefix() string
	UTXOs(addr types.Address) ([]UTXO, error)
	// Submit validates tx and adds it to the mempool (and relays it).
	Submit(tx *types.Tx) error
	TxStatus(id types.Hash) TxStatus
	Contracts() []Contract
	// Faucet pays amount to addr from the devnet faucet; it returns an
	// error wrapping ErrUnavailable where there is none.
	Faucet(addr types.Address, amount uint64) (types.Hash, error)
}

// ErrUnavailable marks an operation the node does not offer.
var ErrUnavailable = errors.New("not available on this node")

// Config configures a Server.
type Config struct {
	Host    host.Host
	Backend Backend
	Logger  *slog.Logger
	Rate    rate.Limit    // requests per second per peer; default 20
	Burst   int           // default 40
	Timeout time.Duration // per request; default 10 s
}

// Server serves the chain API.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex // guards limits
	limits map[peer.ID]*rate.Limiter
}

// New starts serving on cfg.Host.
func New(cfg Config) (*Server, error) {
	if cfg.Host == nil || cfg.Backend == nil {
		return nil, errors.New("chainapi: Config.Host and Config.Backend are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate == 0 {
		cfg.Rate = 20
	}
	if cfg.Burst == 0 {
		cfg.Burst = 40
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, limits: make(map[peer.ID]*rate.Limiter)}
	cfg.Host.SetStreamHandler(Protocol, s.serve)
	return s, nil
}

// Close stops serving.
func (s *Server) Close() { s.cfg.Host.RemoveStreamHandler(Protocol) }

func (s *Server) limiter(p peer.ID) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits[p]
	if l == nil {
		if len(s.limits) > 10000 {
			clear(s.limits) // full limiters are equal to fresh ones; this only forgives
		}
		l = rate.NewLimiter(s.cfg.Rate, s.cfg.Burst)
		s.limits[p] = l
	}
	return l
}

func (s *Server) serve(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(s.cfg.Timeout))
	var resp Response
	body, err := wire.ReadFrame(st)
	switch {
	case err != nil:
		resp = fail(CodeBadRequest, fmt.Errorf("read request: %w", err))
	case !s.limiter(st.Conn().RemotePeer()).Allow():
		resp = fail(CodeBusy, fmt.Errorf("rate limit of %v requests/s reached, retry later", s.cfg.Rate))
	default:
		req, err := DecodeRequest(body)
		if err != nil {
			resp = fail(CodeBadRequest, err)
		} else {
			resp = s.handle(req)
		}
	}
	out, err := json.Marshal(&resp)
	if err != nil {
		out, _ = json.Marshal(fail(CodeInternal, err))
	}
	if err := wire.WriteFrame(st, out); err != nil {
		s.log.Debug("chain api write", "err", err)
	}
}

// DecodeRequest decodes one request strictly: exactly one JSON object
// with known fields only.
func DecodeRequest(body []byte) (*Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("request is not a JSON object of the API: %w", err)
	}
	if dec.More() {
		return nil, errors.New("request has data after its JSON object")
	}
	return &req, nil
}

func fail(code string, err error) Response { return Response{Code: code, Error: err.Error()} }

func (s *Server) address(text string) (types.Address, error) {
	return types.ParseAddress(s.cfg.Backend.AddressPrefix(), text)
}

func (s *Server) handle(req *Request) Response {
	b := s.cfg.Backend
	switch req.Op {
	case OpStatus:
		st := b.Status()
		return Response{Status: &st}
	case OpUTXOs:
		a, err := s.address(req.Address)
		if err != nil {
			return fail(CodeBadRequest, err)
		}
		us, err := b.UTXOs(a)
		if err != nil {
			return fail(CodeInternal, err)
		}
		return Response{UTXOs: us}
	case OpSubmit:
		tx, err := types.DecodeTx(req.Tx)
		if err != nil {
			return fail(CodeBadRequest, err)
		}
		if err := b.Submit(tx); err != nil {
			return fail(CodeRejected, err)
		}
		id := tx.ID()
		return Response{TxID: &id}
	case OpTx:
		if req.TxID == nil {
			return fail(CodeBadRequest, errors.New("txid is required"))
		}
		ts := b.TxStatus(*req.TxID)
		return Response{Tx: &ts}
	case OpContracts:
		return Response{Contracts: b.Contracts()}
	case OpFaucet:
		a, err := s.address(req.Address)
		if err != nil {
			return fail(CodeBadRequest, err)
		}
		id, err := b.Faucet(a, req.Amount)
		if errors.Is(err, ErrUnavailable) {
			return fail(CodeUnavailable, err)
		}
		if err != nil {
			return fail(CodeRejected, err)
		}
		return Response{TxID: &id}
	}
	return fail(CodeBadRequest, fmt.Errorf("unknown op %q", req.Op))
}

// APIError is a failed request: Code is one of the Code constants.
type APIError struct {
	Code, Message string
}

func (e *APIError) Error() string { return e.Message }

// Client calls a node's chain API.
type Client struct {
	h    host.Host
	node peer.AddrInfo
}

// NewClient returns a client of the node at addr, dialling from h.
func NewClient(h host.Host, addr peer.AddrInfo) *Client {
	if len(addr.Addrs) > 0 {
		h.Peerstore().AddAddrs(addr.ID, addr.Addrs, time.Hour)
	}
	return &Client{h: h, node: addr}
}

// Do sends one request and returns its response; a failed request is an
// *APIError.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	st, err := c.h.NewStream(ctx, c.node.ID, Protocol)
	if err != nil {
		return nil, fmt.Errorf("chain API of %s: %w", c.node.ID, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := wire.WriteFrame(st, body); err != nil {
		st.Reset()
		return nil, fmt.Errorf("chain API request: %w", err)
	}
	st.CloseWrite()
	out, err := wire.ReadFrame(st)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("chain API response: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("chain API response: %w", err)
	}
	if resp.Error != "" {
		return &resp, &APIError{Code: resp.Code, Message: resp.Error}
	}
	return &resp, nil
}
