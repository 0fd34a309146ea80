package profileserver

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"slices"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Neighbourhood limits (2017 values where they exist).
const (
	MaxFollowers      = 200              // servers that may follow this one
	MaxSyncItems      = 1000             // items per sync response
	MaxSyncWait       = 30 * time.Second // longest long poll
	maxSyncBytes      = 900 << 10        // a sync response stays under the frame limit
	maxLogEntries     = 100000           // change log kept for resuming followers
	followerForgetAge = 10 * time.Minute // a follower unseen this long no longer counts
)

// logEntry is one entry of the change log that followers read.
type logEntry struct {
	id      identity.ID
	profile *graph.SignedProfile // nil for a delete
}

// changeLog is the server's in-memory log of propagated changes. Its epoch
// is new at every start, so followers of an earlier run take a snapshot.
// Guarded by Server.mu.
type changeLog struct {
	epoch   uint64
	base    uint64 // log position of entries[0]
	entries []logEntry
	wake    chan struct{} // closed and replaced when an entry is added
}

func newChangeLog() changeLog {
	var b [8]byte
	rand.Read(b[:])
	return changeLog{epoch: binary.BigEndian.Uint64(b[:]) | 1, base: 1, wake: make(chan struct{})}
}

func (l *changeLog) next() uint64 { return l.base + uint64(len(l.entries)) }

// appendLocked records a change for followers.
func (s *Server) appendLocked(c logEntry) {
	l := &s.changes
	l.entries = append(l.entries, c)
	if len(l.entries) > maxLogEntries {
		drop := len(l.entries) - maxLogEntries
		l.entries = slices.Clone(l.entries[drop:])
		l.base += uint64(drop)
	}
	close(l.wake)
	l.wake = make(chan struct{})
}

// neighborhoodSync serves a follower's pull: a snapshot in pages, then the
// change log with long polling.
func (ss *session) neighborhoodSync(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetNeighborhoodSync()
	if r.MaxItems < 1 || r.MaxItems > MaxSyncItems {
		return nil, wire.Invalid("maxItems")
	}
	wait := time.Duration(r.WaitMs) * time.Millisecond
	if wait > MaxSyncWait {
		return nil, wire.Invalid("waitMs")
	}
	if len(r.AfterId) != 0 && len(r.AfterId) != identity.IDSize {
		return nil, wire.Invalid("afterId")
	}
	now := time.Now()
	s.mu.Lock()
	if _, ok := s.followers[ss.clientID]; !ok {
		for id, seen := range s.followers {
			if now.Sub(seen) > followerForgetAge {
				delete(s.followers, id)
			}
		}
		if len(s.followers) >= MaxFollowers {
			s.mu.Unlock()
			return nil, wire.Errorf(wirepb.Status_REJECTED, "this server already has %d followers", MaxFollowers)
		}
	}
	s.followers[ss.clientID] = now
	out := &wirepb.NeighborhoodSyncResponse{Epoch: s.changes.epoch}
	pg := page{max: int(r.MaxItems)}
	valid := r.Epoch == s.changes.epoch && r.Cursor >= s.changes.base && r.Cursor <= s.changes.next()
	switch {
	case !valid:
		// Start a snapshot; the changes made while it is read are in the
		// log from here on.
		s.snapshots++
		out.NewSnapshot, out.Snapshot, out.Cursor = true, true, s.changes.next()
		out.SnapshotDone = s.snapshotLocked(&pg, nil)
	case r.Snapshot:
		out.Snapshot, out.Cursor = true, r.Cursor
		out.SnapshotDone = s.snapshotLocked(&pg, r.AfterId)
	default:
		if r.Cursor == s.changes.next() && wait > 0 {
			wake := s.changes.wake
			s.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-wake:
			case <-t.C:
			case <-s.done:
			}
			t.Stop()
			s.mu.Lock()
			if s.changes.epoch != r.Epoch || r.Cursor < s.changes.base {
				out.NewSnapshot, out.Snapshot, out.Cursor = true, true, s.changes.next()
				out.SnapshotDone = s.snapshotLocked(&pg, nil)
				break
			}
		}
		out.Cursor = r.Cursor
		for _, c := range s.changes.entries[r.Cursor-s.changes.base:] {
			if !pg.add(c.id, c.profile) {
				break
			}
			out.Cursor++
		}
	}
	s.mu.Unlock()
	if err := s.attachThumbnails(&pg); err != nil {
		return nil, err
	}
	out.Items = pg.items
	return &wirepb.Response{Body: &wirepb.Response_NeighborhoodSync{NeighborhoodSync: out}}, nil
}

// page collects the items of one sync response within its count and size
// limits.
type page struct {
	max    int
	size   int
	items  []*wirepb.SharedProfileItem
	thumbs [][]byte // thumbnail hash of each item, nil for none
}

// add appends an item unless the page is full.
func (pg *page) add(id identity.ID, sp *graph.SignedProfile) bool {
	it := &wirepb.SharedProfileItem{IdentityId: id[:]}
	n := 64
	var thumb []byte
	if sp == nil {
		it.Delete = true
	} else {
		it.Profile = sp.Proto()
		thumb = sp.Profile.ThumbnailHash
		n += len(sp.Raw) + len(sp.Signature)
		if thumb != nil {
			n += graph.MaxThumbnailSize
		}
	}
	if len(pg.items) == pg.max || (len(pg.items) > 0 && pg.size+n > maxSyncBytes) {
		return false
	}
	pg.size += n
	pg.items = append(pg.items, it)
	pg.thumbs = append(pg.thumbs, thumb)
	return true
}

// snapshotLocked fills pg with initialized hosted profiles with IDs after
// after, in ID order, and reports whether that reached the end.
func (s *Server) snapshotLocked(pg *page, after []byte) bool {
	ids := make([]identity.ID, 0, len(s.ids))
	for id, h := range s.ids {
		if h.active() && h.profile != nil && bytes.Compare(id[:], after) > 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b identity.ID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		if !pg.add(id, s.ids[id].profile) {
			return false
		}
	}
	return true
}

// attachThumbnails adds the stored thumbnails that still match their items.
func (s *Server) attachThumbnails(pg *page) error {
	for i, it := range pg.items {
		if pg.thumbs[i] == nil {
			continue
		}
		img, err := s.storedImage(identity.ID(it.IdentityId), graph.ThumbnailImage, pg.thumbs[i])
		if err != nil {
			return err
		}
		it.ThumbnailImage = img
	}
	return nil
}
