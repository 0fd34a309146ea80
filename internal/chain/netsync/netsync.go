// Package netsync carries the IoP token chain's blocks and transactions
// between nodes over their libp2p hosts, and brings a node that joined late
// or restarted up to its peers' best chain.
//
// # Gossip
//
// New blocks and transactions travel over two gossipsub topics,
// /iop/chain/<network>/blocks/1 and /iop/chain/<network>/txs/1, each
// message being one canonically encoded block or transaction. Topic
// validators drop oversized and malformed messages and ask the chain
// (ProcessBlock) or the mempool (Accept) for a verdict. Invalid messages are
// rejected, which lowers the forwarding peer's gossipsub score until its
// messages are ignored (graylisted); messages that are merely useless here
// (duplicates, blocks whose parent is unknown, transactions the mempool
// cannot place yet) are ignored without penalty. A block with an unknown
// parent starts a sync with the peer that sent it.
//
// # Sync
//
// The request/response protocol /iop/chain/<network>/sync/1 serves a
// node's status (tip height and hash), headers after a block locator (at
// most MaxHeaders) and blocks by hash (at most MaxBlocksPerRequest per
// request). Every message is a frame: a 4-byte big-endian length, a type
// byte and the body, with hard size limits, and streams have deadlines.
// One request per stream.
//
// A node asks each peer it connects to (and every peer periodically) for
// its status. When a peer is ahead, the node fetches headers first — a
// batch of up to MaxHeaders that must connect to the node's chain and to
// each other — then the batch's blocks in order, which the chain validates,
// and repeats until the peer has nothing more, reporting progress through
// Config.Progress.
//
// # Misbehaviour
//
// Requests are rate-limited per peer. Protocol violations (oversized or
// malformed frames, header batches that do not connect or exceed the
// limit, blocks that differ from the announced header or that the chain
// rejects) ban the peer at once: its stream is closed, it is blacklisted in
// gossipsub, its connections are closed and it is neither served nor
// synced from until the ban expires. Lesser offences (headers that lead
// nowhere, announced blocks not delivered, exceeding the request rate) add
// penalty points that decay over time and ban the peer when they add up.
// The penalty also feeds gossipsub's application-specific score.
package netsync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"

	"github.com/iop-go/iop/internal/chain/mempool"
	"github.com/iop-go/iop/internal/chain/types"
)

// Chain is the block chain as the network sees it.
type Chain interface {
	// ProcessBlock validates and stores a block. mainChain reports that it
	// extends (or reorganised to) the best chain, orphan that its parent is
	// unknown. A non-nil error means the block is invalid.
	ProcessBlock(b *types.Block) (mainChain, orphan bool, err error)
	// Tip is the best chain's tip.
	Tip() (hash types.Hash, height int64)
	// Locator is a bitcoin-style block locator of the best chain.
	Locator() []types.Hash
	// HeadersAfter returns up to max best-chain headers after the fork
	// point with locator (after genesis if nothing in it is known).
	HeadersAfter(locator []types.Hash, max int) []types.Header
	// BlockByHash returns a stored block.
	BlockByHash(h types.Hash) (*types.Block, bool)
	// HaveBlock reports whether a block is stored (on any branch).
	HaveBlock(h types.Hash) bool
}

// Mempool accepts gossiped transactions. Errors that wrap the sentinels
// of package mempool are classified by mempool.Invalid: invalid
// transactions penalise the sender, other refusals are ignored.
type Mempool interface {
	Accept(tx *types.Tx) error
}

// Config configures a Sync.
type Config struct {
	Host    host.Host
	Network string // network name ("main", "test", "devnet"), part of the topic and protocol names
	Chain   Chain
	Mempool Mempool
	Logger  *slog.Logger // nil for none
	// Progress, if set, is called as a sync advances with the node's tip
	// height and the height of the peer it syncs from.
	Progress func(have, want int64)

	// Optional.
	ResyncInterval time.Duration // how often peers' status is polled; 30 s if 0
	RequestTimeout time.Duration // deadline of one request or response frame; 30 s if 0
	BanDuration    time.Duration // how long a misbehaving peer is banned; 1 h if 0
}

// Penalty points. A peer is banned when its points reach banPoints; points
// halve every penaltyHalfLife.
const (
	banPoints       = 300
	pointsViolation = banPoints
	pointsStrike    = 110 // headers leading nowhere, announced blocks not delivered: three in a few minutes ban
	pointsRateLimit = 20
	penaltyHalfLife = 10 * time.Minute
)

// Per-peer request rates: what a node serves, and what it asks of a peer
// (a little less, so an honest node never hits the limit).
const (
	serveRate  = 100
	serveBurst = 200
	askRate    = 80
	askBurst   = 100
)

// Gossipsub score thresholds (see the libp2p gossipsub v1.1 spec).
const (
	gossipThreshold    = -100
	publishThreshold   = -200
	graylistThreshold  = -400
	invalidMsgWeight   = -100 // times the square of the count of invalid messages
	scoreInspectPeriod = time.Second
)

// BlockTopic is the gossipsub topic of blocks on network.
func BlockTopic(network string) string { return "/iop/chain/" + network + "/blocks/1" }

// TxTopic is the gossipsub topic of transactions on network.
func TxTopic(network string) string { return "/iop/chain/" + network + "/txs/1" }

// ProtocolID is the sync protocol on network.
func ProtocolID(network string) protocol.ID {
	return protocol.ID("/iop/chain/" + network + "/sync/1")
}

type peerState struct {
	serve       *rate.Limiter // requests it may make of us
	ask         *rate.Limiter // requests we make of it
	points      float64
	pointsAt    time.Time
	bannedUntil time.Time
}

// Sync runs the chain's gossip and sync protocol on a host.
type Sync struct {
	cfg    Config
	log    *slog.Logger
	self   peer.ID
	proto  protocol.ID
	ps     *pubsub.PubSub
	blocks *pubsub.Topic
	txs    *pubsub.Topic
	subs   []*pubsub.Subscription
	notify *network.NotifyBundle

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kickc  chan peer.ID

	mu         sync.Mutex
	serveLimit rate.Limit // per-peer request rate served: serveRate, lowered by tests
	serveBurst int
	peers      map[peer.ID]*peerState
	pending    map[peer.ID]bool
	scores     map[peer.ID]float64
	closed     bool
}

// New starts gossip and sync on cfg.Host. It creates the host's gossipsub
// router, so the host must not run another one, and a host runs one Sync
// in its lifetime: after Close, restart with a new host.
func New(ctx context.Context, cfg Config) (*Sync, error) {
	switch {
	case cfg.Host == nil:
		return nil, errors.New("netsync: Config.Host is nil")
	case cfg.Chain == nil:
		return nil, errors.New("netsync: Config.Chain is nil")
	case cfg.Mempool == nil:
		return nil, errors.New("netsync: Config.Mempool is nil")
	case cfg.Network == "":
		return nil, errors.New("netsync: Config.Network is empty: name the network (main, test, devnet)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 30 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.BanDuration <= 0 {
		cfg.BanDuration = time.Hour
	}
	s := &Sync{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "netsync", "network", cfg.Network),
		self:       cfg.Host.ID(),
		proto:      ProtocolID(cfg.Network),
		kickc:      make(chan peer.ID, 64),
		serveLimit: serveRate,
		serveBurst: serveBurst,
		peers:      map[peer.ID]*peerState{},
		pending:    map[peer.ID]bool{},
		scores:     map[peer.ID]float64{},
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	if err := s.startGossip(); err != nil {
		s.cancel()
		return nil, err
	}
	cfg.Host.SetStreamHandler(s.proto, s.handleStream)
	s.notify = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { s.kick(c.RemotePeer()) }}
	cfg.Host.Network().Notify(s.notify)
	s.wg.Add(1)
	go s.syncLoop()
	for _, p := range cfg.Host.Network().Peers() {
		s.kick(p)
	}
	return s, nil
}

func (s *Sync) scoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	topic := func(weight float64) *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			TopicWeight:                    weight,
			TimeInMeshWeight:               0.01,
			TimeInMeshQuantum:              time.Second,
			TimeInMeshCap:                  100,
			FirstMessageDeliveriesWeight:   1,
			FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:      50,
			InvalidMessageDeliveriesWeight: invalidMsgWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		}
	}
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			BlockTopic(s.cfg.Network): topic(1),
			TxTopic(s.cfg.Network):    topic(1),
		},
		TopicScoreCap:     100,
		AppSpecificScore:  func(p peer.ID) float64 { return -s.penalty(p) },
		AppSpecificWeight: 1,
		// Nodes of a devnet share an address; colocation is not a signal.
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(time.Hour),
		BehaviourPenaltyThreshold: 1,
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               time.Hour,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           100,
		OpportunisticGraftThreshold: 5,
	}
	return params, thresholds
}

func (s *Sync) startGossip() error {
	params, thresholds := s.scoreParams()
	bl, err := pubsub.NewTimeCachedBlacklist(s.cfg.BanDuration)
	if err != nil {
		return fmt.Errorf("netsync: blacklist: %w", err)
	}
	ps, err := pubsub.NewGossipSub(s.ctx, s.cfg.Host,
		pubsub.WithMaxMessageSize(types.MaxBlockSize+64<<10),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			h := sha256.Sum256(m.Data)
			return string(h[:])
		}),
		pubsub.WithPeerScore(params, thresholds),
		// A node's own blocks and transactions go to every topic peer with
		// a decent score, not only to its mesh (empty until the first
		// heartbeat after joining).
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.setScores), scoreInspectPeriod),
		pubsub.WithBlacklist(bl),
		pubsub.WithLogger(s.log),
	)
	if err != nil {
		return fmt.Errorf("netsync: gossipsub on host %s: %w", s.cfg.Host.ID(), err)
	}
	s.ps = ps
	bt, tt := BlockTopic(s.cfg.Network), TxTopic(s.cfg.Network)
	if err := ps.RegisterTopicValidator(bt, pubsub.ValidatorEx(s.validateBlock), pubsub.WithValidatorTimeout(5*time.Minute)); err != nil {
		return fmt.Errorf("netsync: block validator: %w", err)
	}
	if err := ps.RegisterTopicValidator(tt, pubsub.ValidatorEx(s.validateTx), pubsub.WithValidatorTimeout(time.Minute)); err != nil {
		return fmt.Errorf("netsync: transaction validator: %w", err)
	}
	if s.blocks, err = ps.Join(bt); err != nil {
		return fmt.Errorf("netsync: join %s: %w", bt, err)
	}
	if s.txs, err = ps.Join(tt); err != nil {
		return fmt.Errorf("netsync: join %s: %w", tt, err)
	}
	for _, t := range []*pubsub.Topic{s.blocks, s.txs} {
		sub, err := t.Subscribe()
		if err != nil {
			return fmt.Errorf("netsync: subscribe %s: %w", t.String(), err)
		}
		s.subs = append(s.subs, sub)
		s.wg.Add(1)
		go s.drain(sub)
	}
	return nil
}

// drain consumes a subscription: the validators do the work, the
// subscription only keeps this node in the topic's mesh.
func (s *Sync) drain(sub *pubsub.Subscription) {
	defer s.wg.Done()
	for {
		if _, err := sub.Next(s.ctx); err != nil {
			return
		}
	}
}

func (s *Sync) validateBlock(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.self {
		return pubsub.ValidationAccept // PublishBlock processed it
	}
	if len(m.Data) > types.MaxBlockSize {
		s.log.Info("rejected oversized gossip block", "peer", from, "bytes", len(m.Data))
		return pubsub.ValidationReject
	}
	b, err := types.DecodeBlock(m.Data)
	if err != nil {
		s.log.Info("rejected malformed gossip block", "peer", from, "err", err)
		return pubsub.ValidationReject
	}
	hash := b.Hash()
	if s.cfg.Chain.HaveBlock(hash) {
		return pubsub.ValidationIgnore
	}
	_, orphan, err := s.cfg.Chain.ProcessBlock(b)
	switch {
	case err != nil:
		s.log.Info("rejected invalid gossip block", "peer", from, "block", hash, "err", err)
		return pubsub.ValidationReject
	case orphan:
		s.log.Debug("gossip block with unknown parent: syncing", "peer", from, "block", hash)
		s.kick(from)
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

func (s *Sync) validateTx(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.self {
		return pubsub.ValidationAccept // PublishTx checked it
	}
	if len(m.Data) > types.MaxTxSize {
		s.log.Info("rejected oversized gossip transaction", "peer", from, "bytes", len(m.Data))
		return pubsub.ValidationReject
	}
	tx, err := types.DecodeTx(m.Data)
	if err != nil {
		s.log.Info("rejected malformed gossip transaction", "peer", from, "err", err)
		return pubsub.ValidationReject
	}
	if err := s.cfg.Mempool.Accept(tx); err != nil {
		if mempool.Invalid(err) {
			s.log.Info("rejected invalid gossip transaction", "peer", from, "err", err)
			return pubsub.ValidationReject
		}
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

// PublishBlock gossips a block. A block the chain does not have yet is
// processed first; an invalid one is not sent.
func (s *Sync) PublishBlock(b *types.Block) error {
	data := b.Encode()
	hash := b.Hash()
	if len(data) > types.MaxBlockSize {
		return fmt.Errorf("netsync: publish block %s: %d bytes exceed %d", hash, len(data), types.MaxBlockSize)
	}
	if !s.cfg.Chain.HaveBlock(hash) {
		if _, _, err := s.cfg.Chain.ProcessBlock(b); err != nil {
			return fmt.Errorf("netsync: publish block %s: the chain rejects it: %w", hash, err)
		}
	}
	if err := s.blocks.Publish(s.ctx, data); err != nil {
		return fmt.Errorf("netsync: publish block %s: %w", hash, err)
	}
	return nil
}

// PublishTx adds a transaction to the mempool (if it is not there yet)
// and gossips it.
func (s *Sync) PublishTx(tx *types.Tx) error {
	data := tx.Encode()
	id := types.DoubleSHA256(data)
	if len(data) > types.MaxTxSize {
		return fmt.Errorf("netsync: publish transaction %s: %d bytes exceed %d", id, len(data), types.MaxTxSize)
	}
	if err := s.cfg.Mempool.Accept(tx); err != nil && !errors.Is(err, mempool.ErrDuplicate) {
		return fmt.Errorf("netsync: publish transaction %s: %w", id, err)
	}
	if err := s.txs.Publish(s.ctx, data); err != nil {
		return fmt.Errorf("netsync: publish transaction %s: %w", id, err)
	}
	return nil
}

// Close stops gossip and sync. The host stays up.
func (s *Sync) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cfg.Host.RemoveStreamHandler(s.proto)
	s.cfg.Host.Network().StopNotify(s.notify)
	for _, sub := range s.subs {
		sub.Cancel()
	}
	s.cancel()
	s.wg.Wait()
	// The router stops with its context; topics need no further closing.
}

// PeerScore is a peer's latest gossipsub score (updated every second);
// false if the router has not scored it.
func (s *Sync) PeerScore(p peer.ID) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.scores[p]
	return v, ok
}

func (s *Sync) setScores(m map[peer.ID]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scores = m
}

// Banned reports whether p is banned for misbehaving.
func (s *Sync) Banned(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.peers[p]
	return st != nil && time.Now().Before(st.bannedUntil)
}

// peer returns p's state; s.mu must be held.
func (s *Sync) peer(p peer.ID) *peerState {
	st := s.peers[p]
	if st == nil {
		st = &peerState{
			serve: rate.NewLimiter(s.serveLimit, s.serveBurst),
			ask:   rate.NewLimiter(askRate, askBurst),
		}
		s.peers[p] = st
	}
	return st
}

// penalty is p's current penalty points; s.mu must not be held.
func (s *Sync) penalty(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.peers[p]
	if st == nil {
		return 0
	}
	if time.Now().Before(st.bannedUntil) {
		return banPoints
	}
	return decayed(st.points, st.pointsAt, time.Now())
}

func decayed(points float64, at, now time.Time) float64 {
	if points == 0 {
		return 0
	}
	return points * math.Pow(0.5, now.Sub(at).Seconds()/penaltyHalfLife.Seconds())
}

// punish adds penalty points to p and bans it when they reach banPoints.
func (s *Sync) punish(p peer.ID, points float64, reason error) {
	now := time.Now()
	s.mu.Lock()
	st := s.peer(p)
	st.points = decayed(st.points, st.pointsAt, now) + points
	st.pointsAt = now
	ban := st.points >= banPoints && now.After(st.bannedUntil)
	if ban {
		st.bannedUntil = now.Add(s.cfg.BanDuration)
	}
	s.mu.Unlock()
	if !ban {
		s.log.Info("peer penalised", "peer", p, "points", points, "reason", reason)
		return
	}
	s.log.Warn("peer banned", "peer", p, "for", s.cfg.BanDuration, "reason", reason)
	s.ps.BlacklistPeer(p)
	_ = s.cfg.Host.Network().ClosePeer(p)
}

// kick schedules a status check (and a sync if needed) with p.
func (s *Sync) kick(p peer.ID) {
	if p == s.self {
		return
	}
	s.mu.Lock()
	if s.pending[p] || s.closed {
		s.mu.Unlock()
		return
	}
	s.pending[p] = true
	s.mu.Unlock()
	select {
	case s.kickc <- p:
	default: // the periodic poll will get to it
		s.mu.Lock()
		delete(s.pending, p)
		s.mu.Unlock()
	}
}

func (s *Sync) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case p := <-s.kickc:
			s.mu.Lock()
			delete(s.pending, p)
			s.mu.Unlock()
			s.syncPeer(p)
		case <-t.C:
			for _, p := range s.cfg.Host.Network().Peers() {
				s.kick(p)
			}
		}
	}
}

// syncPeer syncs from p, logging the outcome and punishing violations.
func (s *Sync) syncPeer(p peer.ID) {
	if s.Banned(p) {
		return
	}
	err := s.syncWith(s.ctx, p)
	switch {
	case err == nil:
	case errors.Is(err, errProtocol):
		s.punish(p, pointsViolation, err)
	case errors.Is(err, errStrike):
		s.punish(p, pointsStrike, err)
	case s.ctx.Err() != nil:
	default:
		s.log.Debug("sync with peer failed", "peer", p, "err", err)
	}
}
