package consensus

import (
	"sync"

	"github.com/iop-go/iop/internal/chain/types"
)

// SigCache remembers transactions whose signatures have been verified, so
// that a block made of transactions the mempool already checked connects
// without verifying them again (bitcoin nodes keep such a cache for the
// same reason). A transaction ID is the hash of every byte the signatures
// cover and of the signatures themselves, so a hit means exactly the same
// signatures over exactly the same message; ownership, maturity and every
// other rule are still checked. It is bounded, forgetting the oldest
// entries first, and safe for concurrent use.
type SigCache struct {
	mu   sync.Mutex // guards the fields below
	m    map[types.Hash]struct{}
	ring []types.Hash
	next int
}

// NewSigCache returns a cache of at most max transactions.
func NewSigCache(max int) *SigCache {
	return &SigCache{m: make(map[types.Hash]struct{}, max), ring: make([]types.Hash, max)}
}

// Add records that the signatures of transaction id verified.
func (c *SigCache) Add(id types.Hash) {
	if c == nil || len(c.ring) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	if old := c.ring[c.next]; !old.IsZero() {
		delete(c.m, old)
	}
	c.ring[c.next] = id
	c.next = (c.next + 1) % len(c.ring)
	c.m[id] = struct{}{}
}

// Has reports whether transaction id's signatures verified before.
func (c *SigCache) Has(id types.Hash) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[id]
	return ok
}

// Len is the number of cached transactions.
func (c *SigCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
