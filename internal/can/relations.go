package can

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

// NamespaceRelations is the key namespace of relation pages.
const NamespaceRelations = "iop-rel"

// DomainRelationPage is the signature domain of a relation page (the
// publishing server's signature).
const DomainRelationPage identity.Domain = "iop/can-relations/1"

// Limits of relation pages.
const (
	MaxRelationPageSize = 64 << 10 // bytes of a relation page's DHT value
	MaxRelationPages    = 64       // pages of one identity's relation set
	MaxProofSize        = 8 << 10  // bytes of one relationship proof
)

// relationPageOverhead bounds the bytes of a signed relation page other
// than its proofs, claim and claim signature: the Signed wrapper (tags,
// a 3-byte length, a 64-byte signature: 70 bytes) and the page's other
// fields (server key, page, pages, sequence, expiry and the claim's tags:
// 70 bytes), with room to spare.
const relationPageOverhead = 256

// RelationKey is the DHT key of page page of an identity's relation set.
func RelationKey(id identity.ID, page int) string {
	return "/" + NamespaceRelations + "/" + id.String() + "/" + strconv.Itoa(page)
}

// parseRelationKey splits "/iop-rel/<hex id>/<page>". The key must be
// canonical (lower-case hex, decimal page without leading zeros), so each
// page has exactly one key.
func parseRelationKey(key string) (identity.ID, int, error) {
	rest, ok := strings.CutPrefix(key, "/"+NamespaceRelations+"/")
	if !ok {
		return identity.ID{}, 0, invalid("key %q not in namespace %s", key, NamespaceRelations)
	}
	idPart, pagePart, ok := strings.Cut(rest, "/")
	if !ok {
		return identity.ID{}, 0, invalid("relation key %q has no page", key)
	}
	id, err := identity.ParseID(idPart)
	if err != nil {
		return identity.ID{}, 0, invalid("relation key: %v", err)
	}
	if id.String() != idPart {
		return identity.ID{}, 0, invalid("relation key %q: identity not in lower-case hex", key)
	}
	page, err := strconv.Atoi(pagePart)
	if err != nil || page < 0 || strconv.Itoa(page) != pagePart {
		return identity.ID{}, 0, invalid("relation key %q: bad page number", key)
	}
	return id, page, nil
}

// relationProofCost is the bytes a proof adds to a relation page.
func relationProofCost(p []byte) int {
	return protowire.SizeTag(8) + protowire.SizeBytes(len(p))
}

// RelationPageBudget is the proof bytes, counted as PackRelationPages
// counts them, that one signed page with this claim and claim signature
// holds without exceeding MaxRelationPageSize.
func RelationPageBudget(claim, claimSig []byte) int {
	return MaxRelationPageSize - relationPageOverhead -
		protowire.SizeBytes(len(claim)) - protowire.SizeBytes(len(claimSig))
}

// PackRelationPages splits proofs, in order, into pages greedily: each page
// holds as many proofs as fit in budget bytes, a proof costing its encoded
// size in the page (its length plus 2 to 4 bytes of tag and length). A
// proof larger than budget gets a page of its own (and signing that page
// fails if it is too large). No proofs make one empty page, so "no edges"
// is publishable. The pages share proofs' backing array.
func PackRelationPages(proofs [][]byte, budget int) [][][]byte {
	pages := [][][]byte{}
	start, used := 0, 0
	for i, p := range proofs {
		cost := relationProofCost(p)
		if i > start && used+cost > budget {
			pages = append(pages, proofs[start:i:i])
			start, used = i, 0
		}
		used += cost
	}
	return append(pages, proofs[start:len(proofs):len(proofs)])
}

// SignRelationPage signs page page of pages of an identity's relation set
// as server k: the identity's claim (naming k, HOSTED) and its signature,
// the publisher's version seq, the expiry and the page's proofs. It checks
// only the size of the result; OpenRelationPage checks the rest.
func SignRelationPage(server *identity.Key, claim, claimSig []byte, page, pages int, seq uint64, expires time.Time, proofs [][]byte) ([]byte, error) {
	return signLimit(server, DomainRelationPage, &canpb.RelationPage{
		Claim:             claim,
		IdentitySignature: claimSig,
		ServerPublicKey:   server.Public(),
		Page:              uint32(page),
		Pages:             uint32(pages),
		Sequence:          seq,
		ExpiresAt:         expires.UnixMilli(),
		Proofs:            proofs,
	}, MaxRelationPageSize)
}

// RelationPage is a verified page of an identity's public relationship
// edges. Its proofs are opaque here: readers verify them with
// graph.OpenProof or graph.VerifyProofs.
type RelationPage struct {
	Identity  identity.ID
	Publisher identity.ID // the hosting server, which signed the page
	Claim     *canpb.IdentityClaim
	Page      int
	Pages     int
	Sequence  uint64
	Expires   time.Time
	Proofs    [][]byte
}

// OpenRelationPage validates a relation page stored under key at time now.
// It checks the sizes and number of proofs but not their signatures.
func OpenRelationPage(key string, value []byte, now time.Time) (*RelationPage, error) {
	id, page, err := parseRelationKey(key)
	if err != nil {
		return nil, err
	}
	s, err := unwrapLimit(value, MaxRelationPageSize)
	if err != nil {
		return nil, err
	}
	var rp canpb.RelationPage
	if err := proto.Unmarshal(s.Record, &rp); err != nil {
		return nil, invalid("relation page: %v", err)
	}
	if err := identity.Verify(rp.ServerPublicKey, DomainRelationPage, s.Record, s.Signature); err != nil {
		return nil, invalid("relation page signature: %v", err)
	}
	c, err := OpenClaim(rp.Claim, rp.IdentitySignature, nil)
	if err != nil {
		return nil, err
	}
	if identity.IDFromPublicKey(c.IdentityPublicKey) != id {
		return nil, invalid("relation page claim does not match %s", key)
	}
	publisher := identity.IDFromPublicKey(rp.ServerPublicKey)
	server, _ := identity.IDFromBytes(c.ServerId)
	if c.State != canpb.ClaimState_HOSTED {
		return nil, invalid("relation page with a %s claim", c.State)
	}
	if server != publisher {
		return nil, invalid("relation page for server %s signed by %s", server.Short(), publisher.Short())
	}
	if uint64(rp.Page) != uint64(page) {
		return nil, invalid("relation page %d stored under %s", rp.Page, key)
	}
	if rp.Pages == 0 || rp.Pages > MaxRelationPages || rp.Page >= rp.Pages {
		return nil, invalid("relation page %d of %d (at most %d pages)", rp.Page, rp.Pages, MaxRelationPages)
	}
	if err := checkExpiry(rp.ExpiresAt, now); err != nil {
		return nil, err
	}
	for i, p := range rp.Proofs {
		if len(p) == 0 || len(p) > MaxProofSize {
			return nil, invalid("relation page proof %d has %d bytes (1 to %d)", i, len(p), MaxProofSize)
		}
	}
	return &RelationPage{
		Identity:  id,
		Publisher: publisher,
		Claim:     c,
		Page:      page,
		Pages:     int(rp.Pages),
		Sequence:  rp.Sequence,
		Expires:   time.UnixMilli(rp.ExpiresAt),
		Proofs:    rp.Proofs,
	}, nil
}
