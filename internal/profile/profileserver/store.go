package profileserver

import (
	"fmt"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Buckets of the profile server in the node's database.
var (
	bucketHosted = []byte("profile/hosted") // identity ID → wirepb.HostedIdentity
	bucketImages = []byte("profile/images") // identity ID + kind byte → image bytes
	// bucketRelations holds public edges: recipient ID + application ID →
	// wirepb.StoredRelation.
	bucketRelations = []byte("profile/relations")
	// bucketInbox holds pending relationship proposals: recipient ID + card
	// ID → wirepb.SignedCardItem.
	bucketInbox = []byte("profile/inbox")
	// bucketRevoked remembers revoked edges their recipient removed:
	// recipient ID + card ID → the edge's proof with its records, so the
	// card stored again stays revoked.
	bucketRevoked = []byte("profile/revoked")
)

// store is the profile server's durable state in bbolt.
type store struct {
	db *bbolt.DB
}

func openStore(db *bbolt.DB) (*store, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketHosted, bucketImages, bucketRelations, bucketInbox, bucketRevoked} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile server store: %w", err)
	}
	return &store{db: db}, nil
}

func imageKey(id identity.ID, kind graph.ImageKind) []byte {
	k := make([]byte, len(id)+1)
	copy(k, id[:])
	k[len(id)] = byte(kind)
	return k
}

// forEach calls fn for every stored identity.
func (s *store) forEach(fn func(id identity.ID, rec *wirepb.HostedIdentity) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketHosted).ForEach(func(k, v []byte) error {
			id, err := identity.IDFromBytes(k)
			if err != nil {
				return fmt.Errorf("stored identity key %x: %w", k, err)
			}
			rec := new(wirepb.HostedIdentity)
			if err := proto.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("stored identity %s: %w", id, err)
			}
			return fn(id, rec)
		})
	})
}

// imageUpdate is a change to one image slot within a put.
type imageUpdate struct {
	kind graph.ImageKind
	data []byte // nil deletes
}

// put stores rec and applies image changes in one durable transaction.
func (s *store) put(id identity.ID, rec *wirepb.HostedIdentity, images ...imageUpdate) error {
	v, err := proto.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode identity %s: %w", id, err)
	}
	// Batch coalesces the fsyncs of concurrent writers; fn is idempotent as
	// Batch requires.
	return s.db.Batch(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketHosted).Put(id[:], v); err != nil {
			return err
		}
		ib := tx.Bucket(bucketImages)
		for _, u := range images {
			k := imageKey(id, u.kind)
			if u.data == nil {
				if err := ib.Delete(k); err != nil {
					return err
				}
				continue
			}
			if err := ib.Put(k, u.data); err != nil {
				return err
			}
		}
		return nil
	})
}

// image returns a copy of a stored image, or nil.
func (s *store) image(id identity.ID, kind graph.ImageKind) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketImages).Get(imageKey(id, kind)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// deleteRelations removes an identity's public edges and pending
// proposals (its hosting ended); its revoked edges are remembered first, so
// that the cards stored again later stay revoked.
func (s *store) deleteRelations(id identity.ID) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := rememberAllRevoked(tx, tx.Bucket(bucketRelations), id, nil); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketRelations, bucketInbox} {
			if err := deletePrefix(tx.Bucket(b), id[:], nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteIdentity removes an identity's record, images, edges and
// proposals. What it knows of revocations stays: a revoked card stored
// again, even after a new registration, stays revoked.
func (s *store) deleteIdentity(id identity.ID) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketHosted).Delete(id[:]); err != nil {
			return err
		}
		if err := rememberAllRevoked(tx, tx.Bucket(bucketRelations), id, nil); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketRelations, bucketInbox} {
			if err := deletePrefix(tx.Bucket(b), id[:], nil); err != nil {
				return err
			}
		}
		ib := tx.Bucket(bucketImages)
		for _, k := range []graph.ImageKind{graph.ProfileImage, graph.ThumbnailImage} {
			if err := ib.Delete(imageKey(id, k)); err != nil {
				return err
			}
		}
		return nil
	})
}
