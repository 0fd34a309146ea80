package profileserver

import (
	"bytes"
	"context"
	"errors"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// RelationDirectory publishes hosted identities' public edges in the
// content address network and reads them back, so an identity's public
// graph can be read and verified while its server is down. *can.CAN
// implements it.
type RelationDirectory interface {
	PublishRelations(ctx context.Context, claim, claimSig []byte, proofs [][]byte) error
	ForgetRelations(id identity.ID)
	RelationPage(ctx context.Context, id identity.ID, page int) ([]byte, error)
}

// relPublishing tracks the identities whose edges are being published:
// a change during a publication marks the identity dirty, and it is
// published once more when the running one ends, so bursts coalesce.
type relPublishing struct {
	running map[identity.ID]bool // true: changed again since the run began
	sem     chan struct{}        // bounds the publications running at once
}

// maxPublishing bounds the identities whose edges are published at once.
const maxPublishing = 4

// relationsChanged publishes id's public edges in the background.
func (s *Server) relationsChanged(id identity.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relationsChangedLocked(id)
}

func (s *Server) relationsChangedLocked(id identity.ID) {
	if s.cfg.Relations == nil || s.closed {
		return
	}
	if s.relPub.running == nil {
		s.relPub.running = make(map[identity.ID]bool)
		s.relPub.sem = make(chan struct{}, maxPublishing)
	}
	if _, ok := s.relPub.running[id]; ok {
		s.relPub.running[id] = true
		return
	}
	s.relPub.running[id] = false
	sem := s.relPub.sem
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case sem <- struct{}{}:
			case <-s.done:
				s.mu.Lock()
				delete(s.relPub.running, id)
				s.mu.Unlock()
				return
			}
			if err := s.publishRelations(id); err != nil {
				// Readers would get an old version, with revocations
				// missing: better none, until the next change.
				s.cfg.Relations.ForgetRelations(id)
				s.log.Warn("public edges not published in the content address network", "identity", id.Short(), "err", err)
			}
			<-sem
			s.mu.Lock()
			again := s.relPub.running[id] && !s.closed
			if !again {
				delete(s.relPub.running, id)
				s.mu.Unlock()
				return
			}
			s.relPub.running[id] = false
			s.mu.Unlock()
		}
	}()
}

// publishRelations publishes every stored edge of id (revoked ones too, so
// revocations reach readers) under its current claim; an identity without
// a published claim is skipped, and one no longer hosted is forgotten. An
// edge whose proof is too large for a page is left out.
func (s *Server) publishRelations(id identity.ID) error {
	s.mu.Lock()
	h := s.ids[id]
	if h == nil || !h.active() || len(h.rec.Claim) == 0 {
		s.mu.Unlock()
		s.cfg.Relations.ForgetRelations(id)
		return nil
	}
	claim, sig, tag := h.rec.Claim, h.rec.ClaimSignature, hostingTag(h)
	s.mu.Unlock()
	var proofs [][]byte
	skipped := 0
	err := s.store.db.View(func(tx *bbolt.Tx) error {
		return eachRelation(tx.Bucket(bucketRelations), id, func(_ []byte, rel *wirepb.StoredRelation) error {
			switch {
			case !bytes.Equal(rel.Hosting, tag):
			case len(rel.Proof) > can.MaxProofSize:
				skipped++
			default:
				proofs = append(proofs, bytes.Clone(rel.Proof))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if skipped > 0 {
		s.log.Warn("edges too large for the content address network left out", "identity", id.Short(), "edges", skipped, "limit", can.MaxProofSize)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		// Close cuts a publication short.
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return s.cfg.Relations.PublishRelations(ctx, claim, sig, proofs)
}

// publishAllRelations republishes the edges of every hosted identity, as a
// restarted node resumes from its store.
func (s *Server) publishAllRelations() {
	if s.cfg.Relations == nil {
		return
	}
	s.mu.Lock()
	var ids []identity.ID
	for id, h := range s.ids {
		if h.active() && len(h.rec.Claim) > 0 {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.relationsChanged(id)
	}
}

// publishedBudget bounds the raw pages of one PublishedRelations answer.
const publishedBudget = wire.MaxFrame - 8192

// publishedRelations answers the pages of an identity's public edges in
// the content address network, raw, for the client to verify.
func (ss *session) publishedRelations(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetPublishedRelations()
	id, err := identity.IDFromBytes(r.IdentityId)
	if err != nil {
		return nil, wire.Invalid("identityNetworkId")
	}
	if s.cfg.Relations == nil {
		return nil, wire.Errorf(wirepb.Status_UNSUPPORTED, "this node does not run the content address network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := s.cfg.Relations.RelationPage(ctx, id, 0)
	if errors.Is(err, can.ErrNotFound) {
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "no public edges of %s in the content address network", id)
	}
	if err != nil {
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "edges of %s: %v", id.Short(), err)
	}
	p0, err := can.OpenRelationPage(can.RelationKey(id, 0), first, s.cfg.Now())
	if err != nil {
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "edges of %s: %v", id.Short(), err)
	}
	out := &wirepb.PublishedRelationsResponse{TotalPages: uint32(p0.Pages)}
	if r.FirstPage >= uint32(p0.Pages) {
		return nil, wire.Invalid("firstPage")
	}
	// Fetch the pages in parallel; answer those that fit, in order. A
	// missing page is answered empty: the client sees the gap.
	pages := make([][]byte, p0.Pages-int(r.FirstPage))
	var g errgroup.Group
	g.SetLimit(8)
	for i := range pages {
		page := int(r.FirstPage) + i
		if page == 0 {
			pages[i] = first
			continue
		}
		g.Go(func() error {
			if v, err := s.cfg.Relations.RelationPage(ctx, id, page); err == nil {
				pages[i] = v
			}
			return nil
		})
	}
	g.Wait()
	size := 0
	for _, v := range pages {
		if size+len(v)+8 > publishedBudget {
			break
		}
		size += len(v) + 8
		out.Pages = append(out.Pages, v)
	}
	return &wirepb.Response{Body: &wirepb.Response_PublishedRelations{PublishedRelations: out}}, nil
}
