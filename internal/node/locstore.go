package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

var bucketLocMap = []byte("loc/map") // node ID → relation, role, expiry, signed node info

// locStore keeps the location based network's map in the node's database,
// so a restarted node resumes with its neighbours and colleagues instead of
// bootstrapping from nothing. locnet verifies every entry again on load.
type locStore struct{ db *bbolt.DB }

func newLocStore(db *bbolt.DB) (*locStore, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLocMap)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("location map store: %w", err)
	}
	return &locStore{db: db}, nil
}

// An entry is encoded as relation (1 byte), role (1 byte), expiry in ms
// (8 bytes, big-endian), then the encoded signed node info.
const locEntryHeader = 10

func (s *locStore) Load() ([]locnet.Entry, error) {
	var out []locnet.Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLocMap).ForEach(func(k, v []byte) error {
			if len(v) < locEntryHeader {
				return nil // a damaged entry is dropped, the map is rebuilt by the network
			}
			var sni locpb.SignedNodeInfo
			if proto.Unmarshal(v[locEntryHeader:], &sni) != nil {
				return nil
			}
			info, err := locnet.OpenNodeInfo(&sni)
			if err != nil {
				return nil
			}
			out = append(out, locnet.Entry{
				Info:      info,
				Relation:  locnet.Relation(v[0]),
				Role:      locnet.Role(v[1]),
				ExpiresAt: time.UnixMilli(int64(binary.BigEndian.Uint64(v[2:10]))),
			})
			return nil
		})
	})
	return out, err
}

func (s *locStore) Put(e locnet.Entry) error {
	if e.Info == nil {
		return errors.New("location map store: entry without node info")
	}
	raw, err := proto.Marshal(e.Info.Proto())
	if err != nil {
		return err
	}
	v := make([]byte, locEntryHeader, locEntryHeader+len(raw))
	v[0], v[1] = byte(e.Relation), byte(e.Role)
	binary.BigEndian.PutUint64(v[2:10], uint64(e.ExpiresAt.UnixMilli()))
	v = append(v, raw...)
	id := e.Info.ID
	return s.db.Batch(func(tx *bbolt.Tx) error { return tx.Bucket(bucketLocMap).Put(id[:], v) })
}

func (s *locStore) Delete(id identity.ID) error {
	return s.db.Batch(func(tx *bbolt.Tx) error { return tx.Bucket(bucketLocMap).Delete(id[:]) })
}
