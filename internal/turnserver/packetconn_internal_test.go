package turnserver

import (
	"bytes"
	"testing"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

const fuzzUser, fuzzRealm, fuzzPass = "1800000000:user", "iop", "pass"

var fuzzKey = turn.GenerateAuthKey(fuzzUser, fuzzRealm, fuzzPass)

// fuzzKeys knows one user.
func fuzzKeys(username string, _ bool) ([]byte, bool) {
	if username != fuzzUser {
		return nil, false
	}
	return fuzzKey, true
}

func fuzzSeeds(f *testing.F) {
	transport := stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	df := stun.RawAttribute{Type: stun.AttrDontFragment}
	for _, setters := range [][]stun.Setter{
		{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transport, df,
			stun.NewUsername(fuzzUser), stun.NewRealm(fuzzRealm), stun.NewNonce("n"), stun.MessageIntegrity(fuzzKey), stun.Fingerprint},
		{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), df, transport,
			stun.NewUsername(fuzzUser), stun.MessageIntegrity(fuzzKey)},
		{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), df,
			stun.NewUsername("other"), stun.MessageIntegrity(fuzzKey)},
		{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
			&stun.ErrorCodeAttribute{Code: stun.CodeAllocQuotaReached}, stun.MessageIntegrity(fuzzKey)},
		{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
			&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized}, stun.NewNonce("n"), stun.NewRealm(fuzzRealm)},
		{stun.TransactionID, stun.BindingSuccess, stun.Fingerprint},
	} {
		m, err := stun.Build(setters...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Raw)
	}
	f.Add([]byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4})
	f.Add([]byte{0, 3, 0, 0, 0x21, 0x12, 0xa4, 0x42})
}

// FuzzServerPacket feeds arbitrary datagrams to the listener's request and
// response edits. A rewritten request must be the same Allocate without
// DONT-FRAGMENT, signed with the user's key, and only if the original was;
// a rewritten response must carry a reason and valid integrity.
func FuzzServerPacket(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newListenConn(nil, fuzzKeys)
		orig := append([]byte(nil), b...)
		buf := append([]byte(nil), b...)
		n := len(buf)
		if isSTUN(buf) && buf[0]&0x01 == 0 && buf[1]&0x10 == 0 {
			n = c.request(buf)
		}
		if n != len(buf) {
			if n > len(buf) {
				t.Fatalf("request grew %d -> %d bytes", len(buf), n)
			}
			in := &stun.Message{Raw: orig}
			if err := in.Decode(); err != nil {
				t.Fatalf("rewrote a message that does not decode: %v", err)
			}
			if err := stun.MessageIntegrity(fuzzKey).Check(in); err != nil {
				t.Fatalf("rewrote a request whose integrity fails: %v", err)
			}
			out := &stun.Message{Raw: buf[:n]}
			if err := out.Decode(); err != nil {
				t.Fatalf("rewritten request does not decode: %v", err)
			}
			if out.Type.Method != stun.MethodAllocate || out.Contains(stun.AttrDontFragment) || out.TransactionID != in.TransactionID {
				t.Fatalf("rewritten request %v from %v", out, in)
			}
			if err := stun.MessageIntegrity(fuzzKey).Check(out); err != nil {
				t.Fatalf("rewritten request integrity: %v", err)
			}
		} else if !bytes.Equal(buf, orig) {
			t.Fatalf("request changed in place without a new length")
		}

		for _, user := range []string{"", fuzzUser, "other"} {
			q := withReason(orig, user, fuzzKeys)
			if q == nil {
				continue
			}
			out := &stun.Message{Raw: q}
			if err := out.Decode(); err != nil {
				t.Fatalf("rewritten response does not decode: %v", err)
			}
			var ec stun.ErrorCodeAttribute
			if err := ec.GetFrom(out); err != nil || len(ec.Reason) == 0 {
				t.Fatalf("rewritten response ERROR-CODE %v, %v", ec, err)
			}
			if out.Contains(stun.AttrMessageIntegrity) {
				if err := stun.MessageIntegrity(fuzzKey).Check(out); err != nil {
					t.Fatalf("rewritten response integrity: %v", err)
				}
			}
		}
		c.takePending([stun.TransactionIDSize]byte{})
	})
}
