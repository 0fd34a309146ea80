package can

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/can/canpb"
)

func key(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claim(t testing.TB, who *identity.Key, server identity.ID, state canpb.ClaimState, seq uint64) ([]byte, []byte) {
	t.Helper()
	c, s, err := SignClaim(who, &canpb.IdentityClaim{ServerId: server[:], State: state, Sequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestPointerValidation(t *testing.T) {
	now := time.Now()
	user, srv, other := key(t), key(t), key(t)
	c, s := claim(t, user, srv.ID(), canpb.ClaimState_HOSTED, 1)
	good, err := SignPointer(srv, c, s, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPointer(IdentityKey(user.ID()), good, now)
	if err != nil {
		t.Fatalf("OpenPointer(valid) = %v", err)
	}
	if p.Server != srv.ID() || p.Identity != user.ID() || p.Publisher != srv.ID() {
		t.Errorf("OpenPointer = %+v", p)
	}

	otherClaim, otherSig := claim(t, other, srv.ID(), canpb.ClaimState_HOSTED, 1)
	forgedSig := append([]byte(nil), s...)
	forgedSig[0] ^= 1
	bySomeoneElse, _ := SignPointer(other, c, s, now.Add(time.Hour)) // hosting claim for srv countersigned by other
	expired, _ := SignPointer(srv, c, s, now.Add(-time.Second))
	tooLong, _ := SignPointer(srv, c, s, now.Add(MaxTTL+time.Hour))
	forgedClaim, _ := SignPointer(srv, c, forgedSig, now.Add(time.Hour))
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-70] ^= 1
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"other identity's key", IdentityKey(other.ID()), good},
		{"claim by another identity", IdentityKey(user.ID()), mustPointer(t, srv, otherClaim, otherSig, now)},
		{"forged claim signature", IdentityKey(user.ID()), forgedClaim},
		{"countersigned by a server that is not the host", IdentityKey(user.ID()), bySomeoneElse},
		{"expired", IdentityKey(user.ID()), expired},
		{"expiry too far ahead", IdentityKey(user.ID()), tooLong},
		{"tampered bytes", IdentityKey(user.ID()), tampered},
		{"garbage", IdentityKey(user.ID()), []byte{1, 2, 3}},
		{"oversized", IdentityKey(user.ID()), make([]byte, MaxRecordSize+1)},
		{"wrong namespace", NodeKey(user.ID()), good},
	}
	for _, tt := range tests {
		if _, err := OpenPointer(tt.key, tt.value, now); !errors.Is(err, ErrInvalidRecord) && err == nil {
			t.Errorf("OpenPointer(%s) accepted", tt.name)
		}
	}
}

func mustPointer(t testing.TB, srv *identity.Key, c, s []byte, now time.Time) []byte {
	t.Helper()
	v, err := SignPointer(srv, c, s, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPointerSelectNewest(t *testing.T) {
	now := time.Now()
	user, oldSrv, newSrv := key(t), key(t), key(t)
	c1, s1 := claim(t, user, oldSrv.ID(), canpb.ClaimState_HOSTED, 10)
	c2, s2 := claim(t, user, newSrv.ID(), canpb.ClaimState_MOVED, 11)
	older := mustPointer(t, oldSrv, c1, s1, now)
	moved := mustPointer(t, oldSrv, c2, s2, now)
	v := pointerValidator{now: func() time.Time { return now }}
	i, err := v.Select(IdentityKey(user.ID()), [][]byte{older, moved, []byte("junk")})
	if err != nil || i != 1 {
		t.Errorf("Select = %d, %v; want the MOVED claim (1)", i, err)
	}
	p, err := OpenPointer(IdentityKey(user.ID()), moved, now)
	if err != nil || p.Server != newSrv.ID() || p.Claim.State != canpb.ClaimState_MOVED {
		t.Errorf("moved pointer = %+v, %v", p, err)
	}
}

func TestNodeContactValidation(t *testing.T) {
	now := time.Now()
	n, other := key(t), key(t)
	v, err := SignNodeContact(n, &canpb.NodeContact{Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Sequence: 1, ExpiresAt: now.Add(time.Hour).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenNodeContact(NodeKey(n.ID()), v, now); err != nil {
		t.Fatalf("OpenNodeContact(valid) = %v", err)
	}
	if _, err := OpenNodeContact(NodeKey(other.ID()), v, now); err == nil {
		t.Error("OpenNodeContact accepted another node's key")
	}
	if _, err := OpenNodeContact(NodeKey(n.ID()), v, now.Add(2*time.Hour)); err == nil {
		t.Error("OpenNodeContact accepted an expired record")
	}
	many := &canpb.NodeContact{Sequence: 1, ExpiresAt: now.Add(time.Hour).UnixMilli()}
	for range MaxAddrs + 1 {
		many.Addrs = append(many.Addrs, "/ip4/127.0.0.1/tcp/1")
	}
	mv, _ := SignNodeContact(n, many)
	if _, err := OpenNodeContact(NodeKey(n.ID()), mv, now); err == nil {
		t.Error("OpenNodeContact accepted too many addresses")
	}
}

func FuzzOpenPointer(f *testing.F) {
	now := time.Now()
	user, _ := identity.GenerateKey(nil)
	srv, _ := identity.GenerateKey(nil)
	id := srv.ID()
	c, s, _ := SignClaim(user, &canpb.IdentityClaim{ServerId: id[:], Sequence: 1})
	v, _ := SignPointer(srv, c, s, now.Add(time.Hour))
	f.Add(v)
	f.Fuzz(func(t *testing.T, value []byte) {
		p, err := OpenPointer(IdentityKey(user.ID()), value, now)
		if err == nil && p.Identity != user.ID() {
			t.Fatal("accepted a pointer for another identity")
		}
		_, _ = OpenNodeContact(NodeKey(user.ID()), value, now)
		var s canpb.Signed
		_ = proto.Unmarshal(value, &s)
	})
}
