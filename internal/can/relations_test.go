package can

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

// relPage signs a relation page, failing the test on error.
func relPage(t testing.TB, srv *identity.Key, c, s []byte, page, pages int, seq uint64, exp time.Time, proofs [][]byte) []byte {
	t.Helper()
	v, err := SignRelationPage(srv, c, s, page, pages, seq, exp, proofs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signUnlimited signs a relation page the way SignRelationPage does but
// without its size limit, to forge oversized values.
func signUnlimited(t testing.TB, srv *identity.Key, p *canpb.RelationPage) []byte {
	t.Helper()
	rec, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := proto.Marshal(&canpb.Signed{Record: rec, Signature: srv.Sign(DomainRelationPage, rec)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func randProofs(n, minSize, maxSize int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, minSize+mrand.IntN(maxSize-minSize+1))
		rand.Read(out[i])
	}
	return out
}

func TestRelationPageValidation(t *testing.T) {
	now := time.Now()
	exp := now.Add(time.Hour)
	user, srv, other := key(t), key(t), key(t)
	c, s := claim(t, user, srv.ID(), canpb.ClaimState_HOSTED, 1)
	proofs := [][]byte{[]byte("proof one"), bytes.Repeat([]byte{7}, MaxProofSize)}
	good := relPage(t, srv, c, s, 0, 2, 5, exp, proofs)
	p, err := OpenRelationPage(RelationKey(user.ID(), 0), good, now)
	if err != nil {
		t.Fatalf("OpenRelationPage(valid) = %v", err)
	}
	want := &RelationPage{Identity: user.ID(), Publisher: srv.ID(), Page: 0, Pages: 2, Sequence: 5, Expires: time.UnixMilli(exp.UnixMilli()), Proofs: proofs}
	if diff := cmp.Diff(want, p, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Claim" }, cmp.Ignore())); diff != "" {
		t.Errorf("OpenRelationPage(valid) mismatch (-want +got):\n%s", diff)
	}
	if p.Claim.Sequence != 1 || p.Claim.State != canpb.ClaimState_HOSTED {
		t.Errorf("OpenRelationPage(valid).Claim = %v", p.Claim)
	}
	last := relPage(t, srv, c, s, MaxRelationPages-1, MaxRelationPages, 5, exp, nil)
	if _, err := OpenRelationPage(RelationKey(user.ID(), MaxRelationPages-1), last, now); err != nil {
		t.Errorf("OpenRelationPage(last of %d pages) = %v", MaxRelationPages, err)
	}

	var sg canpb.Signed
	if err := proto.Unmarshal(good, &sg); err != nil {
		t.Fatal(err)
	}
	sg.Signature[0] ^= 1
	forgedSig, _ := proto.Marshal(&sg)
	badClaimSig := append([]byte(nil), s...)
	badClaimSig[0] ^= 1
	oc, os := claim(t, other, srv.ID(), canpb.ClaimState_HOSTED, 1)
	movedC, movedS := claim(t, user, srv.ID(), canpb.ClaimState_MOVED, 2)
	cancC, cancS := claim(t, user, srv.ID(), canpb.ClaimState_CANCELLED, 2)
	k0 := RelationKey(user.ID(), 0)
	oversized := signUnlimited(t, srv, &canpb.RelationPage{
		Claim: c, IdentitySignature: s, ServerPublicKey: srv.Public(), Pages: 1, Sequence: 1,
		ExpiresAt: exp.UnixMilli(), Proofs: randProofs(MaxRelationPageSize/MaxProofSize+1, MaxProofSize, MaxProofSize),
	})
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"forged server signature", k0, forgedSig},
		{"forged claim signature", k0, relPage(t, srv, c, badClaimSig, 0, 1, 1, exp, nil)},
		{"claim by another identity", k0, relPage(t, srv, oc, os, 0, 1, 1, exp, nil)},
		{"other identity's key", RelationKey(other.ID(), 0), good},
		{"claim naming another server", k0, relPage(t, other, c, s, 0, 1, 1, exp, nil)},
		{"MOVED claim", k0, relPage(t, srv, movedC, movedS, 0, 1, 1, exp, nil)},
		{"CANCELLED claim", k0, relPage(t, srv, cancC, cancS, 0, 1, 1, exp, nil)},
		{"page does not match the key", RelationKey(user.ID(), 1), good},
		{"page 1 under key 0", k0, relPage(t, srv, c, s, 1, 2, 1, exp, nil)},
		{"page beyond pages", RelationKey(user.ID(), 2), relPage(t, srv, c, s, 2, 2, 1, exp, nil)},
		{"zero pages", k0, relPage(t, srv, c, s, 0, 0, 1, exp, nil)},
		{"too many pages", k0, relPage(t, srv, c, s, 0, MaxRelationPages+1, 1, exp, nil)},
		{"oversized value", k0, oversized},
		{"oversized garbage", k0, make([]byte, MaxRelationPageSize+1)},
		{"expired", k0, relPage(t, srv, c, s, 0, 1, 1, now.Add(-time.Second), nil)},
		{"expiry too far ahead", k0, relPage(t, srv, c, s, 0, 1, 1, now.Add(MaxTTL+time.Hour), nil)},
		{"empty proof", k0, relPage(t, srv, c, s, 0, 1, 1, exp, [][]byte{[]byte("x"), {}})},
		{"oversized proof", k0, relPage(t, srv, c, s, 0, 1, 1, exp, [][]byte{make([]byte, MaxProofSize+1)})},
		{"garbage", k0, []byte{1, 2, 3}},
		{"wrong namespace", IdentityKey(user.ID()), good},
		{"no page in the key", "/" + NamespaceRelations + "/" + user.ID().String(), good},
		{"page with a leading zero", "/" + NamespaceRelations + "/" + user.ID().String() + "/00", good},
		{"negative page", "/" + NamespaceRelations + "/" + user.ID().String() + "/-0", good},
		{"bad identity in the key", "/" + NamespaceRelations + "/xyz/0", good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenRelationPage(tt.key, tt.value, now); !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("OpenRelationPage = %v, want ErrInvalidRecord", err)
			}
		})
	}
}

func TestRelationSelectNewest(t *testing.T) {
	now := time.Now()
	user, srv, newSrv := key(t), key(t), key(t)
	c1, s1 := claim(t, user, srv.ID(), canpb.ClaimState_HOSTED, 1)
	c2, s2 := claim(t, user, newSrv.ID(), canpb.ClaimState_HOSTED, 2)
	exp := now.Add(time.Hour)
	v := relationValidator{now: func() time.Time { return now }}
	key0 := RelationKey(user.ID(), 0)
	tests := []struct {
		name   string
		values [][]byte
		want   int
	}{
		{"newer claim beats a newer version", [][]byte{
			relPage(t, srv, c1, s1, 0, 1, 100, exp, nil),
			relPage(t, newSrv, c2, s2, 0, 1, 1, exp, nil),
		}, 1},
		{"newer version", [][]byte{
			relPage(t, srv, c1, s1, 0, 1, 2, exp, nil),
			relPage(t, srv, c1, s1, 0, 1, 3, now.Add(time.Minute), nil),
			relPage(t, srv, c1, s1, 0, 1, 1, exp, nil),
		}, 1},
		{"later expiry", [][]byte{
			relPage(t, srv, c1, s1, 0, 1, 2, exp, nil),
			relPage(t, srv, c1, s1, 0, 1, 2, exp.Add(time.Minute), nil),
		}, 1},
		{"invalid values are skipped", [][]byte{
			[]byte("junk"),
			relPage(t, srv, c1, s1, 0, 1, 2, now.Add(-time.Minute), nil),
			relPage(t, srv, c1, s1, 0, 1, 1, exp, nil),
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if i, err := v.Select(key0, tt.values); err != nil || i != tt.want {
				t.Errorf("Select = %d, %v; want %d", i, err, tt.want)
			}
		})
	}
	if _, err := v.Select(key0, [][]byte{[]byte("junk")}); err == nil {
		t.Error("Select(only junk) succeeded")
	}
}

func TestPackRelationPages(t *testing.T) {
	p := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, n) }
	// A proof of 100 bytes costs 102 in a page; one of 200, 203.
	tests := []struct {
		name   string
		proofs [][]byte
		budget int
		want   [][][]byte
	}{
		{"no proofs", nil, 1000, [][][]byte{{}}},
		{"exactly two per page", [][]byte{p(100), p(100), p(100)}, 204, [][][]byte{{p(100), p(100)}, {p(100)}}},
		{"one byte short of two", [][]byte{p(100), p(100), p(100)}, 203, [][][]byte{{p(100)}, {p(100)}, {p(100)}}},
		{"varint boundary", [][]byte{p(127), p(128)}, 129 + 131, [][][]byte{{p(127), p(128)}}},
		{"varint boundary, short", [][]byte{p(127), p(128)}, 129 + 130, [][][]byte{{p(127)}, {p(128)}}},
		{"a proof over the budget gets its own page", [][]byte{p(10), p(200), p(10)}, 100, [][][]byte{{p(10)}, {p(200)}, {p(10)}}},
		{"all in one", [][]byte{p(1), p(2), p(3)}, 1000, [][][]byte{{p(1), p(2), p(3)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PackRelationPages(tt.proofs, tt.budget)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("PackRelationPages mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRelationPagesWorstCase packs proofs of the sizes with the most
// overhead into pages with the largest header fields, and checks every
// page signs within MaxRelationPageSize, is full, and that the largest
// real set (2000 proofs of 700 bytes) fits in MaxRelationPages.
func TestRelationPagesWorstCase(t *testing.T) {
	user, srv := key(t), key(t)
	c, s := claim(t, user, srv.ID(), canpb.ClaimState_HOSTED, math.MaxUint64)
	budget := RelationPageBudget(c, s)
	for _, size := range []int{1, 127, 128, 700, 16383, MaxProofSize} {
		size = min(size, MaxProofSize)
		proofs := make([][]byte, 3*MaxRelationPageSize/size/2+1)
		for i := range proofs {
			proofs[i] = bytes.Repeat([]byte{0xff}, size)
		}
		pages := PackRelationPages(proofs, budget)
		if len(pages) < 2 {
			t.Fatalf("size %d: %d pages, want at least 2", size, len(pages))
		}
		if got := slices.Concat(pages...); len(got) != len(proofs) {
			t.Errorf("size %d: pages hold %d proofs, want %d", size, len(got), len(proofs))
		}
		for i, pg := range pages {
			v, err := SignRelationPage(srv, c, s, MaxRelationPages-1, MaxRelationPages, math.MaxUint64, time.UnixMilli(-1), pg)
			if err != nil {
				t.Fatalf("size %d: SignRelationPage(page %d of %d proofs) = %v", size, i, len(pg), err)
			}
			if i < len(pages)-1 && MaxRelationPageSize-len(v) >= relationPageOverhead+relationProofCost(proofs[0]) {
				t.Errorf("size %d: page %d is %d bytes, room for another proof", size, i, len(v))
			}
		}
	}
	if n := len(PackRelationPages(randProofs(2000, 700, 700), budget)); n > MaxRelationPages {
		t.Errorf("2000 proofs of 700 bytes take %d pages, limit %d", n, MaxRelationPages)
	}
}

// TestPublishRelations publishes an identity's relation set at one node
// and reads it from another, then replaces it.
func TestPublishRelations(t *testing.T) {
	nodes := startNetwork(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, reader := nodes[0], nodes[2]
	user := key(t)
	c, s := claim(t, user, a.cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)

	if _, err := reader.Relations(ctx, user.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Relations before publishing = %v, want ErrNotFound", err)
	}
	proofs := randProofs(120, 500, 700)
	if err := a.PublishRelations(ctx, c, s, proofs); err != nil {
		t.Fatal(err)
	}
	set, err := reader.Relations(ctx, user.ID())
	if err != nil {
		t.Fatal(err)
	}
	if set.Pages < 2 || len(set.Missing) != 0 || set.Publisher != a.cfg.Key.ID() || set.Identity != user.ID() {
		t.Errorf("Relations = %d pages, missing %v, publisher %s; want 2+ pages, none missing, publisher %s",
			set.Pages, set.Missing, set.Publisher.Short(), a.cfg.Key.ID().Short())
	}
	if diff := cmp.Diff(proofs, set.Proofs); diff != "" {
		t.Errorf("Relations proofs mismatch (-want +got):\n%s", diff)
	}
	raw, err := reader.RelationPage(ctx, user.ID(), 1)
	if err != nil {
		t.Fatalf("RelationPage(1) = %v", err)
	}
	if p, err := OpenRelationPage(RelationKey(user.ID(), 1), raw, time.Now()); err != nil || p.Sequence != set.Sequence {
		t.Errorf("OpenRelationPage(RelationPage(1)) = %+v, %v; want sequence %d", p, err, set.Sequence)
	}

	// A page of another version is reported missing, and its proofs left out.
	stray := relPage(t, a.cfg.Key, c, s, 1, set.Pages, set.Sequence+1, time.Now().Add(time.Hour), proofs[:1])
	if err := a.put(ctx, RelationKey(user.ID(), 1), stray); err != nil {
		t.Fatal(err)
	}
	mixed, err := reader.Relations(ctx, user.ID())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mixed.Missing, []int{1}) || len(mixed.Proofs) >= len(proofs) {
		t.Errorf("Relations with a stray page 1 = missing %v, %d proofs; want missing [1], fewer than %d", mixed.Missing, len(mixed.Proofs), len(proofs))
	}

	// Publishing fewer proofs replaces the set: page 0 says one page.
	fewer := randProofs(30, 500, 700)
	if err := a.PublishRelations(ctx, c, s, fewer); err != nil {
		t.Fatal(err)
	}
	set2, err := reader.Relations(ctx, user.ID())
	if err != nil {
		t.Fatal(err)
	}
	if set2.Pages != 1 || len(set2.Missing) != 0 || set2.Sequence <= set.Sequence {
		t.Errorf("Relations after replacing = %d pages, missing %v, sequence %d; want 1, none, above %d", set2.Pages, set2.Missing, set2.Sequence, set.Sequence)
	}
	if diff := cmp.Diff(fewer, set2.Proofs); diff != "" {
		t.Errorf("Relations proofs after replacing mismatch (-want +got):\n%s", diff)
	}

	// The republish loop re-signs the remembered set, until forgotten.
	a.republish(ctx)
	set3, err := reader.Relations(ctx, user.ID())
	if err != nil || set3.Sequence <= set2.Sequence || !cmp.Equal(fewer, set3.Proofs) {
		t.Errorf("Relations after republishing = %+v, %v; want the same proofs with a sequence above %d", set3, err, set2.Sequence)
	}
	a.ForgetRelations(user.ID())
	a.republish(ctx)
	if set4, err := reader.Relations(ctx, user.ID()); err != nil || set4.Sequence != set3.Sequence {
		t.Errorf("Relations after ForgetRelations and a republish = %+v, %v; want sequence %d", set4, err, set3.Sequence)
	}

	// No edges is publishable.
	lonely := key(t)
	lc, ls := claim(t, lonely, a.cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)
	if err := a.PublishRelations(ctx, lc, ls, nil); err != nil {
		t.Fatal(err)
	}
	if empty, err := reader.Relations(ctx, lonely.ID()); err != nil || empty.Pages != 1 || len(empty.Proofs) != 0 || len(empty.Missing) != 0 {
		t.Errorf("Relations(no edges) = %+v, %v; want one empty page", empty, err)
	}
}

// TestPublishRelationsRejects: a node publishes relation sets only for
// identities it hosts, with proofs and page counts within the limits.
func TestPublishRelationsRejects(t *testing.T) {
	nodes := startNetwork(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := nodes[0]
	user := key(t)
	hosted, hs := claim(t, user, a.cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)
	elsewhere, es := claim(t, user, nodes[1].cfg.Key.ID(), canpb.ClaimState_HOSTED, 1)
	moved, ms := claim(t, user, a.cfg.Key.ID(), canpb.ClaimState_MOVED, 2)
	tests := []struct {
		name        string
		claim, sig  []byte
		proofs      [][]byte
		errContains string
	}{
		{"claim for another server", elsewhere, es, nil, "not this node"},
		{"MOVED claim", moved, ms, nil, "not HOSTED"},
		{"forged claim", hosted, es, nil, "signature"},
		{"empty proof", hosted, hs, [][]byte{{}}, "proof 0"},
		{"oversized proof", hosted, hs, [][]byte{[]byte("ok"), make([]byte, MaxProofSize+1)}, "proof 1"},
		{"too many pages", hosted, hs, randProofs(MaxRelationPages*MaxRelationPageSize/MaxProofSize, MaxProofSize, MaxProofSize), "pages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.PublishRelations(ctx, tt.claim, tt.sig, tt.proofs)
			if err == nil || !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("PublishRelations = %v, want an error containing %q", err, tt.errContains)
			}
		})
	}
	a.mu.Lock()
	n := len(a.relations)
	a.mu.Unlock()
	if n != 0 {
		t.Errorf("after rejected publications the node remembers %d relation sets, want 0", n)
	}
}

func FuzzOpenRelationPage(f *testing.F) {
	now := time.Now()
	user, _ := identity.GenerateKey(nil)
	srv, _ := identity.GenerateKey(nil)
	id := srv.ID()
	c, s, _ := SignClaim(user, &canpb.IdentityClaim{ServerId: id[:], Sequence: 1})
	v, _ := SignRelationPage(srv, c, s, 0, 2, 1, now.Add(time.Hour), [][]byte{[]byte("a proof")})
	f.Add(RelationKey(user.ID(), 0), v)
	f.Add(RelationKey(user.ID(), 1), v)
	f.Add("/iop-rel/", []byte{})
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		p, err := OpenRelationPage(key, value, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("OpenRelationPage error %v is not ErrInvalidRecord", err)
			}
			return
		}
		if RelationKey(p.Identity, p.Page) != key {
			t.Fatalf("accepted page %d of %s under key %q", p.Page, p.Identity.Short(), key)
		}
		if p.Page >= p.Pages || p.Pages > MaxRelationPages || p.Claim.State != canpb.ClaimState_HOSTED {
			t.Fatalf("accepted page %d of %d with a %s claim", p.Page, p.Pages, p.Claim.State)
		}
		for _, pr := range p.Proofs {
			if len(pr) == 0 || len(pr) > MaxProofSize {
				t.Fatalf("accepted a proof of %d bytes", len(pr))
			}
		}
	})
}
