package locnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// ErrStaleInfo reports a node info that is older than the one already
// stored for its node (a replay), has the same sequence with other content,
// was issued too long ago or claims to be issued in the future.
var ErrStaleInfo = errors.New("stale node info")

// openInfo verifies a node info received from another node and checks its
// issue time against the clock.
func (n *Node) openInfo(s *locpb.SignedNodeInfo, now time.Time) (*NodeInfo, error) {
	info, err := n.verify.Open(s)
	if err != nil {
		n.counters.badInfos.Add(1)
		return nil, err
	}
	if info.IssuedAt.After(now.Add(n.cfg.MaxClockSkew)) {
		n.counters.staleInfos.Add(1)
		return nil, fmt.Errorf("%v issued at %v, in the future: %w", info, info.IssuedAt, ErrStaleInfo)
	}
	if info.IssuedAt.Before(now.Add(-n.cfg.MaxInfoAge)) {
		n.counters.staleInfos.Add(1)
		return nil, fmt.Errorf("%v issued at %v, too long ago: %w", info, info.IssuedAt, ErrStaleInfo)
	}
	return info, nil
}

// openList verifies a list of node infos from another node. Invalid infos,
// this node and duplicates are dropped; a node whose stored info is newer
// is given with the stored info.
func (n *Node) openList(list []*locpb.SignedNodeInfo, now time.Time) []*NodeInfo {
	out := make([]*NodeInfo, 0, len(list))
	for _, s := range list {
		info, err := n.openInfo(s, now)
		if err != nil {
			n.log.Debug("dropping node info from a list", "err", err)
			continue
		}
		if info.ID == n.id || slices.ContainsFunc(out, func(o *NodeInfo) bool { return o.ID == info.ID }) {
			continue
		}
		out = append(out, info)
	}
	n.mu.Lock()
	for i, info := range out {
		if e := n.tab.get(info.ID); e != nil && e.Info.Sequence > info.Sequence {
			out[i] = e.Info
		}
	}
	n.mu.Unlock()
	return out
}

// newerOrSame reports whether info may replace old: a higher sequence, or
// exactly the same record.
func newerOrSame(old, info *NodeInfo) bool {
	return info.Sequence > old.Sequence || info.sameRecord(old)
}

// sameContent reports whether two infos of a node say the same things.
func sameContent(a, b *NodeInfo) bool {
	if a.Location != b.Location || !slices.Equal(a.Addrs, b.Addrs) || len(a.Services) != len(b.Services) {
		return false
	}
	for i := range a.Services {
		if a.Services[i].Type != b.Services[i].Type || !bytes.Equal(a.Services[i].Data, b.Services[i].Data) {
			return false
		}
	}
	return true
}

// storeLocked stores a relation with the node of info, replacing the entry
// of that node. It refuses an info that is not newer than the stored one.
func (n *Node) storeLocked(info *NodeInfo, rel Relation, role Role, expires time.Time) bool {
	var old *entry
	if p := n.tab.get(info.ID); p != nil {
		o := *p
		old = &o
	}
	if old != nil && !newerOrSame(old.Info, info) {
		n.counters.staleInfos.Add(1)
		return false
	}
	e := entry{Entry: Entry{Info: info, Relation: rel, Role: role, ExpiresAt: expires}}
	if old != nil && old.Info.Location == info.Location {
		e.v, e.dist = old.v, old.dist
	} else {
		e.v = toVec(info.Location)
		e.dist = n.selfV.km(e.v)
	}
	n.tab.put(e)
	if n.cfg.Store != nil {
		if err := n.cfg.Store.Put(e.Entry); err != nil {
			n.log.Warn("store node", "node", info.ID.Short(), "err", err)
		}
	}
	switch {
	case rel == Neighbour && (old == nil || old.Relation != Neighbour):
		n.emitLocked(Added, info)
	case rel == Neighbour && !sameContent(old.Info, info):
		n.emitLocked(Updated, info)
	case rel != Neighbour && old != nil && old.Relation == Neighbour:
		n.emitLocked(Removed, old.Info)
	}
	return true
}

// removeLocked deletes the entry of id.
func (n *Node) removeLocked(id identity.ID, why string) {
	e, ok := n.tab.remove(id)
	if !ok {
		return
	}
	n.log.Debug("node removed", "peer", id.Short(), "relation", e.Relation, "why", why)
	if n.cfg.Store != nil {
		if err := n.cfg.Store.Delete(id); err != nil {
			n.log.Warn("delete node", "node", id.Short(), "err", err)
		}
	}
	if e.Relation == Neighbour {
		n.emitLocked(Removed, e.Info)
	}
}

// wantsLocked reports whether this node wants info as a neighbour: it ranks
// among the NeighbourhoodSize closest neighbours (the 2017 rule: fewer than
// 50 neighbours, or closer than the 50th).
func (n *Node) wantsLocked(info *NodeInfo) bool {
	d := n.selfV.km(toVec(info.Location))
	return n.tab.neighbourRank(d, info.ID) < n.cfg.NeighbourhoodSize
}

// admitNeighbourLocked is the acceptor's rule for a neighbour request or
// renewal: accept a node this node wants (wantsLocked) and, while it has
// fewer than MaxNeighbours, a node that may want this node — one for which
// this node knows fewer than NeighbourhoodSize nodes closer to it than
// itself. 2017 accepted only the first kind, so a node beside a dense city
// could never get its nearest nodes.
func (n *Node) admitNeighbourLocked(info *NodeInfo) bool {
	if n.wantsLocked(info) {
		return true
	}
	count := n.tab.nNeighbours
	if e := n.tab.get(info.ID); e != nil && e.Relation == Neighbour {
		count--
	}
	if count >= n.cfg.MaxNeighbours {
		return false
	}
	k := n.cfg.NeighbourhoodSize
	return n.tab.closerThanMe(toVec(info.Location), info.ID, k) < k
}

// overlapsLocked applies the bubble rule to info as a colleague.
func (n *Node) overlapsLocked(info *NodeInfo) bool {
	v := toVec(info.Location)
	return n.tab.overlaps(v, n.selfV.km(v), info.ID)
}

// call sends a request and checks that the answer is OK and of the right
// kind.
func (n *Node) call(ctx context.Context, to Contact, req *locpb.Request) (*locpb.Response, error) {
	n.counters.calls.Add(1)
	cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	resp, err := n.cfg.Transport.Call(cctx, to, req)
	cancel()
	switch {
	case err != nil:
	case resp == nil:
		err = fmt.Errorf("%w: no response", ErrMalformed)
	case resp.Status != locpb.Status_OK:
		err = statusError(resp)
	default:
		err = wantBody(req, resp)
	}
	if err != nil {
		n.counters.callErrors.Add(1)
		n.log.Debug("request failed", "to", to.String(), "request", RequestName(req), "err", err)
		return nil, err
	}
	return resp, nil
}

// acceptorAnswer checks a relation answer: the acceptor's info must verify
// and be the node that was asked.
func (n *Node) acceptorAnswer(resp *locpb.Response, want identity.ID, now time.Time) (*NodeInfo, bool, error) {
	bn := resp.GetBuildNetwork()
	info, err := n.openInfo(bn.GetAcceptor(), now)
	if err != nil {
		return nil, false, err
	}
	if !want.IsZero() && info.ID != want {
		n.counters.wrongNode.Add(1)
		return nil, false, fmt.Errorf("asked %s, answered %s: %w", want.Short(), info.ID.Short(), ErrWrongNode)
	}
	if bn.RemoteAddress != "" {
		n.mu.Lock()
		n.observed = bn.RemoteAddress
		n.mu.Unlock()
	}
	return info, bn.Accepted, nil
}

// tryRelation asks cand to accept a relation with this node as the
// initiator and stores the relation if cand accepts (2017 SafeStoreNode).
// It checks this node's own rule first: a colleague must not overlap a
// bubble, a neighbour must rank among the closest. A colleague may become a
// neighbour, never the reverse. It reports whether a relation was stored.
func (n *Node) tryRelation(ctx context.Context, cand *NodeInfo, rel Relation) bool {
	if cand.ID == n.id {
		return false
	}
	n.mu.Lock()
	if e := n.tab.get(cand.ID); e != nil {
		if e.Relation == Neighbour || rel == Colleague {
			n.mu.Unlock()
			return false
		}
		if e.Info.Sequence > cand.Sequence {
			cand = e.Info
		}
	}
	var ok bool
	if rel == Neighbour {
		ok = n.wantsLocked(cand)
	} else {
		ok = !n.overlapsLocked(cand) && !n.refusedLocked(cand.ID)
	}
	self := n.self.Proto()
	n.mu.Unlock()
	if !ok {
		return false
	}
	resp, err := n.call(ctx, cand.Contact(), buildRequest(rel, false, self))
	if err != nil {
		return false
	}
	now := n.cfg.Clock()
	info, accepted, err := n.acceptorAnswer(resp, cand.ID, now)
	if err != nil {
		n.log.Debug("relation answer refused", "peer", cand.ID.Short(), "err", err)
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !accepted {
		if rel == Colleague {
			n.noteRefusalLocked(cand.ID, now)
		}
		return false
	}
	if e := n.tab.get(info.ID); e != nil && e.Relation == Neighbour && rel == Colleague {
		return false
	}
	return n.storeLocked(info, rel, Initiator, now.Add(n.cfg.EntryExpiry))
}

// refusedLocked reports whether id refused to be a colleague recently.
func (n *Node) refusedLocked(id identity.ID) bool {
	until, ok := n.refused[id]
	if ok && !n.cfg.Clock().Before(until) {
		delete(n.refused, id)
		return false
	}
	return ok
}

// noteRefusalLocked remembers for a RenewInterval that id refused to be a
// colleague, so that discovery does not ask it again and again.
func (n *Node) noteRefusalLocked(id identity.ID, now time.Time) {
	if len(n.refused) >= 4096 {
		clear(n.refused)
	}
	n.refused[id] = now.Add(n.cfg.RenewInterval)
}

// renewRelations renews the relations this node is responsible for (2017
// RenewNodeRelations): colleagues it initiated, and neighbours it still
// wants. A neighbour relation it initiated but no longer wants is dropped;
// if the other end wants it, that end takes it over: when an initiator has
// not renewed for one and a half RenewIntervals, the acceptor renews the
// relation itself if it wants it, and drops it otherwise. With push, every
// neighbour gets the current node info.
func (n *Node) renewRelations(ctx context.Context, push bool) {
	type job struct {
		info *NodeInfo
		rel  Relation
	}
	now := n.cfg.Clock()
	takeover := n.cfg.EntryExpiry - n.cfg.RenewInterval*3/2
	var jobs []job
	n.mu.Lock()
	self := n.self.Proto()
	var drop []identity.ID
	for _, e := range n.tab.list {
		switch {
		case push && e.Relation == Neighbour:
			jobs = append(jobs, job{e.Info, Neighbour})
		case e.Relation == Colleague:
			if e.Role == Initiator {
				jobs = append(jobs, job{e.Info, Colleague})
			}
		case e.Role == Initiator:
			if n.wantsLocked(e.Info) {
				jobs = append(jobs, job{e.Info, Neighbour})
			} else {
				drop = append(drop, e.Info.ID)
			}
		case e.ExpiresAt.Sub(now) < takeover:
			// The initiator stopped renewing.
			if n.wantsLocked(e.Info) {
				jobs = append(jobs, job{e.Info, Neighbour})
			} else {
				drop = append(drop, e.Info.ID)
			}
		}
	}
	for _, id := range drop {
		n.removeLocked(id, "not wanted")
	}
	n.mu.Unlock()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return
		}
		resp, err := n.call(ctx, j.info.Contact(), buildRequest(j.rel, true, self))
		if err != nil {
			continue
		}
		now := n.cfg.Clock()
		info, accepted, err := n.acceptorAnswer(resp, j.info.ID, now)
		if err != nil {
			n.log.Debug("renewal answer refused", "peer", j.info.ID.Short(), "err", err)
			continue
		}
		n.mu.Lock()
		if accepted {
			n.storeLocked(info, j.rel, Initiator, now.Add(n.cfg.EntryExpiry))
		} else if e := n.tab.get(j.info.ID); e != nil && e.Relation == j.rel {
			n.removeLocked(j.info.ID, "renewal refused")
		}
		n.mu.Unlock()
	}
}

// expireLocked deletes the entries whose relation expired (2017
// ExpireOldNodes).
func (n *Node) expireLocked(now time.Time) {
	var old []identity.ID
	for _, e := range n.tab.list {
		if !e.ExpiresAt.After(now) {
			old = append(old, e.Info.ID)
		}
	}
	for _, id := range old {
		n.removeLocked(id, "expired")
	}
}
