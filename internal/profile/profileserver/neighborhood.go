package profileserver

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/p2p"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Neighbourhood limits of the follower side.
const (
	MaxNeighbors           = 110 // servers this one follows
	MaxProfilesPerNeighbor = MaxHostedIdentities
	SharedExpiry           = 24 * time.Hour   // shared profiles live this long after the last refresh
	cutOffPause            = time.Hour        // how long a misbehaving neighbour is not followed
	syncWait               = 25 * time.Second // long poll of an initialized follower
)

var (
	bucketShared    = []byte("profile/shared")    // neighbour ID + identity ID → wirepb.SharedProfile
	bucketNeighbors = []byte("profile/neighbors") // neighbour ID → wirepb.NeighborState
)

// errCutOff marks a neighbour that sent invalid data.
var errCutOff = errors.New("neighbour cut off")

// follower follows one neighbour.
type follower struct {
	id     identity.ID
	addr   peer.AddrInfo // guarded by Server.mu
	source uint32
	cancel context.CancelFunc
	done   chan struct{}
}

// neighborInfo is the in-memory state of a followed neighbour. Guarded by
// Server.mu.
type neighborInfo struct {
	state *wirepb.NeighborState
	count int // shared profiles stored
}

func sharedKey(nb, id identity.ID) []byte {
	k := make([]byte, 0, 2*identity.IDSize)
	return append(append(k, nb[:]...), id[:]...)
}

// loadNeighbors reads the stored neighbour states and shared profiles into
// memory and returns the profiles' index entries. Shared profiles were
// verified when they were received.
func (s *Server) loadNeighbors() ([]search.Profile, error) {
	var entries []search.Profile
	err := s.cfg.DB.Update(func(tx *bbolt.Tx) error {
		nbs, err := tx.CreateBucketIfNotExists(bucketNeighbors)
		if err != nil {
			return err
		}
		sh, err := tx.CreateBucketIfNotExists(bucketShared)
		if err != nil {
			return err
		}
		if err := nbs.ForEach(func(k, v []byte) error {
			id, err := identity.IDFromBytes(k)
			if err != nil {
				return err
			}
			st := new(wirepb.NeighborState)
			if err := proto.Unmarshal(v, st); err != nil {
				return fmt.Errorf("neighbour %s state: %w", id, err)
			}
			s.neighbors[id] = &neighborInfo{state: st}
			s.sources[st.Source] = id
			s.nextSource = max(s.nextSource, st.Source+1)
			return nil
		}); err != nil {
			return err
		}
		return sh.ForEach(func(k, v []byte) error {
			nb, _ := identity.IDFromBytes(k[:identity.IDSize])
			ni := s.neighbors[nb]
			if ni == nil {
				return nil // swept below when its neighbour is gone
			}
			var sp wirepb.SharedProfile
			if err := proto.Unmarshal(v, &sp); err != nil {
				return fmt.Errorf("shared profile %x: %w", k, err)
			}
			var pi wirepb.ProfileInformation
			if err := proto.Unmarshal(sp.Profile.GetProfile(), &pi); err != nil {
				return fmt.Errorf("shared profile %x: %w", k, err)
			}
			id, _ := identity.IDFromBytes(k[identity.IDSize:])
			ni.count++
			entries = append(entries, search.Profile{ID: id, Source: ni.state.Source, Type: pi.Type, Name: pi.Name,
				Lat: pi.Latitude, Lon: pi.Longitude, Extra: pi.ExtraData})
			return nil
		})
	})
	return entries, err
}

// SetNeighbors sets the servers this one follows (at most MaxNeighbors, the
// first ones win): it starts following new ones, and stops following and
// drops the profiles of those no longer listed.
func (s *Server) SetNeighbors(addrs []peer.AddrInfo) {
	want := make(map[identity.ID]peer.AddrInfo)
	for _, a := range addrs {
		if len(want) == MaxNeighbors {
			break
		}
		pub, err := p2p.PublicKeyOf(a.ID)
		if err != nil {
			continue
		}
		id := identity.IDFromPublicKey(pub)
		if id != s.id {
			want[id] = a
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var stop []*follower
	for id, f := range s.following {
		if _, ok := want[id]; !ok {
			stop = append(stop, f)
			delete(s.following, id)
		}
	}
	for id, a := range want {
		if f, ok := s.following[id]; ok {
			f.addr = a
			continue
		}
		src := s.sourceLocked(id)
		ctx, cancel := context.WithCancel(context.Background())
		f := &follower{id: id, addr: a, source: src, cancel: cancel, done: make(chan struct{})}
		s.following[id] = f
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(f.done)
			s.follow(ctx, f)
		}()
	}
	s.mu.Unlock()
	for _, f := range stop {
		f.cancel()
		<-f.done
		if err := s.dropNeighbor(f.id); err != nil {
			s.log.Error("drop neighbour", "neighbor", f.id.Short(), "err", err)
		}
	}
}

// sourceLocked returns the index source number of a neighbour, assigning
// one when it has none.
func (s *Server) sourceLocked(id identity.ID) uint32 {
	if ni := s.neighbors[id]; ni != nil {
		return ni.state.Source
	}
	src := s.nextSource
	s.nextSource++
	s.neighbors[id] = &neighborInfo{state: &wirepb.NeighborState{Source: src}}
	s.sources[src] = id
	return src
}

// dropNeighbor forgets a neighbour and its shared profiles.
func (s *Server) dropNeighbor(id identity.ID) error {
	s.mu.Lock()
	ni := s.neighbors[id]
	if ni == nil {
		s.mu.Unlock()
		return nil
	}
	delete(s.neighbors, id)
	delete(s.sources, ni.state.Source)
	s.index.DeleteSource(ni.state.Source)
	s.mu.Unlock()
	return s.cfg.DB.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketNeighbors).Delete(id[:]); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket(bucketShared), id[:], nil)
	})
}

// deletePrefix deletes the keys with prefix, except those in keep.
func deletePrefix(b *bbolt.Bucket, prefix []byte, keep map[identity.ID]bool) error {
	c := b.Cursor()
	var del [][]byte
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if keep != nil && keep[identity.ID(k[len(prefix):])] {
			continue
		}
		del = append(del, append([]byte(nil), k...))
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// follow keeps syncing with a neighbour until ctx ends, reconnecting with
// back-off, and pausing for an hour after it sent invalid data.
func (s *Server) follow(ctx context.Context, f *follower) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := s.syncWith(ctx, f)
		if ctx.Err() != nil {
			return
		}
		wait := backoff
		if errors.Is(err, errCutOff) {
			s.log.Warn("neighbour cut off for sending invalid data", "neighbor", f.id.Short(), "err", err, "pause", s.cfg.CutOffPause)
			wait = s.cfg.CutOffPause
		} else {
			s.log.Debug("neighbour sync ended", "neighbor", f.id.Short(), "err", err)
			if time.Since(start) > time.Minute {
				backoff = time.Second
			}
			backoff = min(2*backoff, 5*time.Minute)
		}
		select {
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		case <-ctx.Done():
		}
	}
}

// neighborConn is the follower's end of a neighbour stream: one request at
// a time.
type neighborConn struct {
	st network.Stream
	id uint32
}

func (c *neighborConn) call(req *wirepb.Request, timeout time.Duration) (*wirepb.Response, error) {
	c.id++
	c.st.SetDeadline(time.Now().Add(timeout))
	if err := wire.WriteMessage(c.st, &wirepb.Message{Id: c.id, Kind: &wirepb.Message_Request{Request: req}}); err != nil {
		return nil, err
	}
	m, err := wire.ReadMessage(c.st)
	if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
		return nil, fmt.Errorf("%w: %v", errCutOff, err)
	}
	if err != nil {
		return nil, err
	}
	resp := m.GetResponse()
	if resp == nil || m.Id != c.id {
		return nil, fmt.Errorf("%w: unexpected message from neighbour", errCutOff)
	}
	if resp.Status != wirepb.Status_OK {
		return resp, &wire.StatusError{Status: resp.Status, Details: resp.Details}
	}
	return resp, nil
}

// syncWith runs one connection to a neighbour: prove this node's key, then
// pull its snapshot and changes until the connection ends.
func (s *Server) syncWith(ctx context.Context, f *follower) error {
	s.mu.Lock()
	addr := f.addr // SetNeighbors may update it
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	if len(addr.Addrs) > 0 {
		s.cfg.Host.Peerstore().AddAddrs(addr.ID, addr.Addrs, time.Hour)
	}
	st, err := s.cfg.Host.NewStream(cctx, addr.ID, ProtocolNeighbor)
	cancel()
	if err != nil {
		return err
	}
	defer st.Reset()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	c := &neighborConn{st: st}
	cc := make([]byte, ChallengeSize)
	crand.Read(cc)
	resp, err := c.call(&wirepb.Request{Body: &wirepb.Request_StartConversation{StartConversation: &wirepb.StartConversationRequest{
		SupportedVersions: [][]byte{ProtocolVersion[:]}, PublicKey: s.cfg.Key.Public(), ClientChallenge: cc}}}, 20*time.Second)
	if err != nil {
		return err
	}
	sc := resp.GetStartConversation()
	if identity.IDFromPublicKey(sc.GetPublicKey()) != f.id ||
		identity.Verify(sc.GetPublicKey(), identity.DomainServerChallenge, cc, resp.Signature) != nil {
		return fmt.Errorf("%w: neighbour did not prove its key", errCutOff)
	}
	sig := s.cfg.Key.Sign(identity.DomainChallenge, wire.ChallengeMessage(sc.Challenge, sc.PublicKey))
	if _, err := c.call(&wirepb.Request{Signature: sig, Body: &wirepb.Request_VerifyIdentity{
		VerifyIdentity: &wirepb.VerifyIdentityRequest{Challenge: sc.Challenge}}}, 20*time.Second); err != nil {
		return err
	}

	s.mu.Lock()
	ni := s.neighbors[f.id]
	if ni == nil {
		s.mu.Unlock()
		return errors.New("neighbour removed")
	}
	state := proto.Clone(ni.state).(*wirepb.NeighborState)
	s.mu.Unlock()
	var snapshot bool
	var after []byte
	seen := map[identity.ID]bool{}
	for ctx.Err() == nil {
		req := &wirepb.NeighborhoodSyncRequest{Epoch: state.Epoch, Cursor: state.Cursor, Snapshot: snapshot,
			AfterId: after, MaxItems: MaxSyncItems}
		if state.Initialized && !snapshot {
			req.WaitMs = uint32(syncWait / time.Millisecond)
		}
		resp, err := c.call(&wirepb.Request{Body: &wirepb.Request_NeighborhoodSync{NeighborhoodSync: req}}, syncWait+20*time.Second)
		if err != nil {
			return err
		}
		r := resp.GetNeighborhoodSync()
		if r == nil || len(r.Items) > MaxSyncItems {
			return fmt.Errorf("%w: sync answer without a body or with more than %d items", errCutOff, MaxSyncItems)
		}
		if r.NewSnapshot {
			snapshot, after, seen = true, nil, map[identity.ID]bool{}
			state.Initialized = false
		} else if r.Snapshot != snapshot {
			return fmt.Errorf("%w: snapshot state out of step", errCutOff)
		}
		state.Epoch, state.Cursor = r.Epoch, r.Cursor
		items, err := s.verifyItems(r.Items, snapshot)
		if err != nil {
			return err
		}
		if snapshot {
			for _, it := range items {
				seen[it.id] = true
				after = it.id[:]
			}
		}
		done := snapshot && r.SnapshotDone
		if done {
			snapshot, state.Initialized = false, true
		}
		state.RefreshedAt = time.Now().UnixMilli()
		if err := s.applyShared(f, state, items, done, seen); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// sharedItem is a verified item of a neighbour.
type sharedItem struct {
	id      identity.ID
	profile *graph.SignedProfile // nil for a delete
	stored  []byte               // encoded wirepb.SharedProfile
}

// verifyItems checks every item's signature, ID and thumbnail; any invalid
// item cuts the neighbour off and nothing of the batch is stored.
func (s *Server) verifyItems(items []*wirepb.SharedProfileItem, snapshot bool) ([]sharedItem, error) {
	out := make([]sharedItem, 0, len(items))
	seen := make(map[identity.ID]bool, len(items))
	for i, it := range items {
		id, err := identity.IDFromBytes(it.IdentityId)
		if err != nil || seen[id] && snapshot {
			return nil, fmt.Errorf("%w: item %d: bad or repeated identity ID", errCutOff, i)
		}
		seen[id] = true
		if it.Delete {
			if snapshot {
				return nil, fmt.Errorf("%w: item %d: delete in a snapshot", errCutOff, i)
			}
			out = append(out, sharedItem{id: id})
			continue
		}
		sp, err := graph.OpenProto(it.Profile, nil)
		if err != nil || sp.ID() != id {
			return nil, fmt.Errorf("%w: item %d: profile does not verify: %v", errCutOff, i, err)
		}
		if len(it.ThumbnailImage) > 0 {
			if err := graph.CheckImage(graph.ThumbnailImage, it.ThumbnailImage, sp.Profile.ThumbnailHash); err != nil {
				return nil, fmt.Errorf("%w: item %d: thumbnail: %v", errCutOff, i, err)
			}
		}
		v, err := proto.Marshal(&wirepb.SharedProfile{Profile: it.Profile, ThumbnailImage: it.ThumbnailImage})
		if err != nil {
			return nil, err
		}
		out = append(out, sharedItem{id: id, profile: sp, stored: v})
	}
	return out, nil
}

// applyShared stores a verified batch and the new sync state in one
// transaction, then updates the index. When a snapshot completes, profiles
// it did not contain are dropped.
func (s *Server) applyShared(f *follower, state *wirepb.NeighborState, items []sharedItem, snapshotDone bool, seen map[identity.ID]bool) error {
	s.mu.Lock()
	ni := s.neighbors[f.id]
	if ni == nil {
		s.mu.Unlock()
		return errors.New("neighbour removed")
	}
	count := ni.count
	s.mu.Unlock()
	var dropped []identity.ID
	sv, err := proto.Marshal(state)
	if err != nil {
		return err
	}
	err = s.cfg.DB.Update(func(tx *bbolt.Tx) error {
		sh := tx.Bucket(bucketShared)
		for _, it := range items {
			k := sharedKey(f.id, it.id)
			exists := sh.Get(k) != nil
			if it.profile == nil {
				if exists {
					count--
				}
				if err := sh.Delete(k); err != nil {
					return err
				}
				continue
			}
			if !exists {
				count++
			}
			if err := sh.Put(k, it.stored); err != nil {
				return err
			}
		}
		if count > MaxProfilesPerNeighbor {
			return fmt.Errorf("%w: more than %d profiles", errCutOff, MaxProfilesPerNeighbor)
		}
		if snapshotDone {
			c := sh.Cursor()
			for k, _ := c.Seek(f.id[:]); k != nil && bytes.HasPrefix(k, f.id[:]); k, _ = c.Next() {
				if !seen[identity.ID(k[identity.IDSize:])] {
					dropped = append(dropped, identity.ID(k[identity.IDSize:]))
				}
			}
			for _, id := range dropped {
				if err := sh.Delete(sharedKey(f.id, id)); err != nil {
					return err
				}
			}
			count -= len(dropped)
		}
		return tx.Bucket(bucketNeighbors).Put(f.id[:], sv)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ni = s.neighbors[f.id]; ni == nil {
		return errors.New("neighbour removed")
	}
	ni.state, ni.count = state, count
	if s.afterApply != nil {
		s.afterApply(f.id, items)
	}
	for _, it := range items {
		if _, hosted := s.ids[it.id]; hosted {
			continue // a profile hosted here is indexed as hosted
		}
		if it.profile == nil {
			s.index.Delete(it.id)
			continue
		}
		p := &it.profile.Profile
		s.index.Put(search.Profile{ID: it.id, Source: f.source, Type: p.Type, Name: p.Name,
			Lat: p.Location.Lat, Lon: p.Location.Lon, Extra: p.Extra})
	}
	for _, id := range dropped {
		if _, hosted := s.ids[id]; !hosted {
			s.index.Delete(id)
		}
	}
	return nil
}

// sharedProfile reads a neighbour's stored profile.
func (s *Server) sharedProfile(nb, id identity.ID) (*wirepb.SharedProfile, error) {
	var out *wirepb.SharedProfile
	err := s.cfg.DB.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketShared).Get(sharedKey(nb, id))
		if v == nil {
			return nil
		}
		out = new(wirepb.SharedProfile)
		return proto.Unmarshal(v, out)
	})
	return out, err
}

// expireNeighbors drops the profiles of neighbours not refreshed within
// SharedExpiry.
func (s *Server) expireNeighbors() {
	now := time.Now()
	s.mu.Lock()
	var gone []identity.ID
	for id, ni := range s.neighbors {
		if ni.state.RefreshedAt != 0 && now.Sub(time.UnixMilli(ni.state.RefreshedAt)) > SharedExpiry {
			gone = append(gone, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.log.Info("shared profiles of a neighbour expired", "neighbor", id.Short())
		if err := s.dropNeighbor(id); err != nil {
			s.log.Error("expire neighbour", "err", err)
		}
	}
}

// coveredLocked lists this server and the neighbours whose profiles a
// search covers.
func (s *Server) coveredLocked() [][]byte {
	out := [][]byte{append([]byte(nil), s.id[:]...)}
	for id, ni := range s.neighbors {
		if ni.state.Initialized {
			out = append(out, append([]byte(nil), id[:]...))
		}
	}
	return out
}
