package can

import (
	"errors"
	"time"
)

// nodeValidator validates /iop-node/ records and prefers the highest
// sequence.
type nodeValidator struct{ now func() time.Time }

func (v nodeValidator) Validate(key string, value []byte) error {
	_, err := OpenNodeContact(key, value, v.now())
	return err
}

func (v nodeValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	for i, val := range values {
		c, err := OpenNodeContact(key, val, v.now())
		if err != nil {
			continue
		}
		if best < 0 || c.Sequence > bestSeq {
			best, bestSeq = i, c.Sequence
		}
	}
	if best < 0 {
		return 0, errors.New("no valid node contact")
	}
	return best, nil
}

// pointerValidator validates /iop-id/ records and prefers the newest claim,
// then the latest expiry (a republished pointer).
type pointerValidator struct{ now func() time.Time }

func (v pointerValidator) Validate(key string, value []byte) error {
	_, err := OpenPointer(key, value, v.now())
	return err
}

func (v pointerValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bp *Pointer
	for i, val := range values {
		p, err := OpenPointer(key, val, v.now())
		if err != nil {
			continue
		}
		if best < 0 || newer(p, bp) {
			best, bp = i, p
		}
	}
	if best < 0 {
		return 0, errors.New("no valid identity pointer")
	}
	return best, nil
}

func newer(a, b *Pointer) bool {
	if a.Claim.Sequence != b.Claim.Sequence {
		return a.Claim.Sequence > b.Claim.Sequence
	}
	return a.Expires.After(b.Expires)
}

// relationValidator validates /iop-rel/ records and prefers the newest
// claim, then the publisher's newest version, then the latest expiry.
type relationValidator struct{ now func() time.Time }

func (v relationValidator) Validate(key string, value []byte) error {
	_, err := OpenRelationPage(key, value, v.now())
	return err
}

func (v relationValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bp *RelationPage
	for i, val := range values {
		p, err := OpenRelationPage(key, val, v.now())
		if err != nil {
			continue
		}
		if best < 0 || newerPage(p, bp) {
			best, bp = i, p
		}
	}
	if best < 0 {
		return 0, errors.New("no valid relation page")
	}
	return best, nil
}

func newerPage(a, b *RelationPage) bool {
	if a.Claim.Sequence != b.Claim.Sequence {
		return a.Claim.Sequence > b.Claim.Sequence
	}
	if a.Sequence != b.Sequence {
		return a.Sequence > b.Sequence
	}
	return a.Expires.After(b.Expires)
}
