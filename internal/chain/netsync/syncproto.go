package netsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/internal/chain/types"
)

// errStrike marks a lesser offence: useless but well-formed answers.
var errStrike = errors.New("useless sync answer")

// handleStream serves one request.
func (s *Sync) handleStream(st network.Stream) {
	p := st.Conn().RemotePeer()
	s.mu.Lock()
	ps := s.peer(p)
	banned := time.Now().Before(ps.bannedUntil)
	allowed := ps.serve.Allow()
	s.mu.Unlock()
	if banned {
		_ = st.Reset()
		return
	}
	if !allowed {
		_ = st.Reset()
		s.punish(p, pointsRateLimit, fmt.Errorf("sync requests above %d/s", serveRate))
		return
	}
	if err := s.serve(st); err != nil {
		_ = st.Reset()
		if errors.Is(err, errProtocol) {
			s.punish(p, pointsViolation, err)
		} else {
			s.log.Debug("sync request failed", "peer", p, "err", err)
		}
		return
	}
	_ = st.Close()
}

func (s *Sync) serve(st network.Stream) error {
	_ = st.SetDeadline(time.Now().Add(s.cfg.RequestTimeout))
	typ, body, err := readFrame(st, maxRequestFrame)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	w := bufio.NewWriter(st)
	switch typ {
	case msgGetStatus:
		if len(body) != 0 {
			return fmt.Errorf("%w: status request with %d bytes of body", errProtocol, len(body))
		}
		hash, height := s.cfg.Chain.Tip()
		err = writeFrame(w, msgStatus, encodeStatus(status{Height: height, Tip: hash}))
	case msgGetHeaders:
		loc, derr := decodeHashes(body, MaxLocator)
		if derr != nil {
			return fmt.Errorf("get-headers: %w", derr)
		}
		hs := s.cfg.Chain.HeadersAfter(loc, MaxHeaders)
		err = writeFrame(w, msgHeaders, encodeHeaders(hs[:min(len(hs), MaxHeaders)]))
	case msgGetBlocks:
		hashes, derr := decodeHashes(body, MaxBlocksPerRequest)
		if derr != nil {
			return fmt.Errorf("get-blocks: %w", derr)
		}
		for _, h := range hashes {
			if b, ok := s.cfg.Chain.BlockByHash(h); ok {
				err = writeFrame(w, msgBlock, b.Encode())
			} else {
				err = writeFrame(w, msgNotFound, h[:])
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				break
			}
			_ = st.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
		}
	default:
		return fmt.Errorf("%w: unknown request type %#x", errProtocol, typ)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fmt.Errorf("response: %w", err)
	}
	return nil
}

// request sends one request to p and hands each response frame to
// onFrame until it returns done. Frames above max are violations.
func (s *Sync) request(ctx context.Context, p peer.ID, typ byte, body []byte, max int,
	onFrame func(typ byte, body []byte) (done bool, err error)) error {
	s.mu.Lock()
	lim := s.peer(p).ask
	s.mu.Unlock()
	if err := lim.Wait(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.cfg.Host.NewStream(ctx, p, s.proto)
	if err != nil {
		return fmt.Errorf("open sync stream to %s: %w", p, err)
	}
	defer func() { _ = st.Close() }()
	_ = st.SetDeadline(time.Now().Add(s.cfg.RequestTimeout))
	if err := writeFrame(st, typ, body); err != nil {
		_ = st.Reset()
		return fmt.Errorf("send request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	r := bufio.NewReader(st)
	for {
		rt, rb, err := readFrame(r, max)
		if err == nil {
			var done bool
			done, err = onFrame(rt, rb)
			if err == nil && done {
				return nil
			}
		}
		if err != nil {
			_ = st.Reset()
			return err
		}
		_ = st.SetReadDeadline(time.Now().Add(s.cfg.RequestTimeout))
	}
}

func (s *Sync) getStatus(ctx context.Context, p peer.ID) (status, error) {
	var out status
	err := s.request(ctx, p, msgGetStatus, nil, 1+40, func(typ byte, body []byte) (bool, error) {
		if typ != msgStatus {
			return false, fmt.Errorf("%w: status request answered with type %#x", errProtocol, typ)
		}
		var err error
		out, err = decodeStatus(body)
		return true, err
	})
	return out, err
}

func (s *Sync) getHeaders(ctx context.Context, p peer.ID, locator []types.Hash) ([]types.Header, error) {
	var out []types.Header
	body := encodeHashes(locator)
	err := s.request(ctx, p, msgGetHeaders, body, 1+3+MaxHeaders*types.HeaderSize, func(typ byte, body []byte) (bool, error) {
		if typ != msgHeaders {
			return false, fmt.Errorf("%w: get-headers answered with type %#x", errProtocol, typ)
		}
		var err error
		out, err = decodeHeaders(body, MaxHeaders)
		return true, err
	})
	return out, err
}

// getBlocks fetches blocks by hash; each must match its hash. Blocks the
// peer does not have end the batch with errStrike.
func (s *Sync) getBlocks(ctx context.Context, p peer.ID, hashes []types.Hash, each func(*types.Block) error) error {
	i := 0
	return s.request(ctx, p, msgGetBlocks, encodeHashes(hashes), maxFrame, func(typ byte, body []byte) (bool, error) {
		switch typ {
		case msgBlock:
			b, err := types.DecodeBlock(body)
			if err != nil {
				return false, fmt.Errorf("%w: block %d of the batch: %v", errProtocol, i, err)
			}
			if got := b.Hash(); got != hashes[i] {
				return false, fmt.Errorf("%w: asked for block %s, got %s", errProtocol, hashes[i], got)
			}
			if err := each(b); err != nil {
				return false, err
			}
		case msgNotFound:
			h, err := decodeNotFound(body)
			if err != nil {
				return false, err
			}
			if h != hashes[i] {
				return false, fmt.Errorf("%w: not-found for %s, asked for %s", errProtocol, h, hashes[i])
			}
			return false, fmt.Errorf("%w: peer announced block %s but does not serve it", errStrike, h)
		default:
			return false, fmt.Errorf("%w: get-blocks answered with type %#x", errProtocol, typ)
		}
		i++
		return i == len(hashes), nil
	})
}

// syncWith catches up with p if it is ahead: headers first, then their
// blocks in order, batch after batch.
func (s *Sync) syncWith(ctx context.Context, p peer.ID) error {
	st, err := s.getStatus(ctx, p)
	if err != nil {
		return err
	}
	_, height := s.cfg.Chain.Tip()
	if st.Height <= height || s.cfg.Chain.HaveBlock(st.Tip) {
		return nil
	}
	want := st.Height
	s.log.Info("syncing", "peer", p, "height", height, "peer_height", want)
	start := height
	var last *types.Hash // the last header of the previous batch
	for {
		locator := s.cfg.Chain.Locator()
		if last != nil {
			locator = append([]types.Hash{*last}, locator...)
			if len(locator) > MaxLocator {
				locator = locator[:MaxLocator]
			}
		}
		hdrs, err := s.getHeaders(ctx, p, locator)
		if err != nil {
			return fmt.Errorf("headers from %s: %w", p, err)
		}
		if len(hdrs) == 0 {
			break
		}
		if !s.cfg.Chain.HaveBlock(hdrs[0].Prev) {
			return fmt.Errorf("%w: header batch starts after %s, a block we do not have", errProtocol, hdrs[0].Prev)
		}
		need := make([]types.Hash, 0, len(hdrs))
		prev := hdrs[0].Prev
		for i := range hdrs {
			if hdrs[i].Prev != prev {
				return fmt.Errorf("%w: header %d of the batch does not follow header %d", errProtocol, i, i-1)
			}
			prev = hdrs[i].Hash()
			if len(need) > 0 || !s.cfg.Chain.HaveBlock(prev) {
				need = append(need, prev)
			}
		}
		if len(need) == 0 {
			break // every header is one we have; judged below
		}
		for i := 0; i < len(need); i += MaxBlocksPerRequest {
			batch := need[i:min(i+MaxBlocksPerRequest, len(need))]
			err := s.getBlocks(ctx, p, batch, func(b *types.Block) error {
				_, orphan, err := s.cfg.Chain.ProcessBlock(b)
				if err != nil {
					return fmt.Errorf("%w: invalid block %s: %v", errProtocol, b.Hash(), err)
				}
				if orphan {
					return fmt.Errorf("block %s from %s is an orphan although its header connected", b.Hash(), p)
				}
				return nil
			})
			if err != nil {
				return err
			}
			_, h := s.cfg.Chain.Tip()
			s.progress(h, max(want, h))
		}
		last = &prev
		_, h := s.cfg.Chain.Tip()
		s.log.Info("sync progress", "peer", p, "height", h, "peer_height", want)
		if len(hdrs) < MaxHeaders {
			break
		}
	}
	_, h := s.cfg.Chain.Tip()
	s.progress(h, max(want, h))
	if !s.cfg.Chain.HaveBlock(st.Tip) {
		// The peer claimed a longer chain but its headers led nowhere.
		return fmt.Errorf("%w: peer claimed height %d with tip %s, which its headers did not lead to", errStrike, want, st.Tip)
	}
	s.log.Info("synced", "peer", p, "from", start, "height", h, "peer_height", want)
	return nil
}

func (s *Sync) progress(have, want int64) {
	if s.cfg.Progress != nil {
		s.cfg.Progress(have, want)
	}
}
