package profileserver_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func TestStartConversation(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	key := newKey(t)

	t.Run("start", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		ctx := testCtx(t)
		cc := randBytes(profileserver.ChallengeSize)
		req := startReq(key.Public())
		req.GetStartConversation().ClientChallenge = cc
		resp, err := c.Call(ctx, req)
		wantOK(t, err)
		r := resp.GetStartConversation()
		if err := identity.Verify(srv.Key.Public(), identity.DomainServerChallenge, cc, resp.Signature); err != nil {
			t.Errorf("server signature of the client challenge: %v", err)
		}
		if string(r.PublicKey) != string(srv.Key.Public()) || string(r.ClientChallenge) != string(cc) {
			t.Errorf("StartConversation = key %x, client challenge %x; want %x, %x", r.PublicKey, r.ClientChallenge, srv.Key.Public(), cc)
		}
		if len(r.Challenge) != profileserver.ChallengeSize {
			t.Errorf("challenge is %d bytes, want %d", len(r.Challenge), profileserver.ChallengeSize)
		}
		// Each conversation gets a fresh challenge.
		if again := startConversation(t, srv.DialFrom(t, h), key); string(again) == string(r.Challenge) {
			t.Errorf("two conversations got the same challenge %x", again)
		}
	})

	t.Run("twice", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		err := c.StartConversation(testCtx(t), key)
		wantStatus(t, err, wirepb.Status_BAD_CONVERSATION_STATUS, "")
	})

	t.Run("after verify", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		wantOK(t, c.VerifyIdentity(testCtx(t)))
		wantStatus(t, c.StartConversation(testCtx(t), newKey(t)), wirepb.Status_BAD_CONVERSATION_STATUS, "")
	})

	for _, n := range []int{0, 31, 33, 128} {
		t.Run("public key of "+strconv.Itoa(n)+" bytes", func(t *testing.T) {
			c := srv.DialFrom(t, h)
			_, err := c.Call(testCtx(t), startReq(randBytes(n)))
			wantStatus(t, err, wirepb.Status_INVALID_VALUE, "publicKey")
			wantOK(t, c.StartConversation(testCtx(t), key)) // still no conversation
		})
	}
	for _, n := range []int{0, 31, 33, 64} {
		t.Run("client challenge of "+strconv.Itoa(n)+" bytes", func(t *testing.T) {
			c := srv.DialFrom(t, h)
			req := startReq(key.Public())
			req.GetStartConversation().ClientChallenge = randBytes(n)
			_, err := c.Call(testCtx(t), req)
			wantStatus(t, err, wirepb.Status_INVALID_VALUE, "clientChallenge")
			wantOK(t, c.StartConversation(testCtx(t), key))
		})
	}
}

// TestConversationStates checks the state each request needs: requests of
// a started conversation answer BAD_CONVERSATION_STATUS before it starts or
// after check-in, and requests of a checked-in identity answer UNAUTHORIZED
// before check-in.
func TestConversationStates(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	key := newKey(t)
	srv.Customer(t, key, "person").Close() // hosted, so that check-in works

	contract := contractReq(t, &wirepb.HostingContract{IdentityPublicKey: key.Public(), ServerPublicKey: srv.Key.Public(),
		StartTime: time.Now().UnixMilli(), IdentityType: "person"}, key)
	needStarted := map[string]*wirepb.Request{
		"CheckIn":         proveReq(true, make([]byte, 32), make([]byte, 64)),
		"VerifyIdentity":  proveReq(false, make([]byte, 32), make([]byte, 64)),
		"RegisterHosting": contract,
	}
	needAuth := map[string]*wirepb.Request{
		"UpdateProfile":    updateReq(signInfo(t, key, infoOf(key, "person", "Ann", 1)), nil, nil, false),
		"CancelHosting":    {Body: &wirepb.Request_CancelHosting{CancelHosting: &wirepb.CancelHostingRequest{}}},
		"AppServiceAdd":    {Body: &wirepb.Request_AppServiceAdd{AppServiceAdd: &wirepb.ApplicationServiceAddRequest{ServiceNames: []string{"chat"}}}},
		"AppServiceRemove": {Body: &wirepb.Request_AppServiceRemove{AppServiceRemove: &wirepb.ApplicationServiceRemoveRequest{ServiceName: "chat"}}},
	}
	check := func(t *testing.T, c *client.Conn, reqs map[string]*wirepb.Request, want wirepb.Status) {
		t.Helper()
		for name, req := range reqs {
			if _, err := c.Call(testCtx(t), req); wire.StatusOf(err) != want {
				t.Errorf("%s = %v, want %s", name, err, wire.StatusName(want))
			}
		}
	}

	t.Run("no conversation", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		check(t, c, needStarted, wirepb.Status_BAD_CONVERSATION_STATUS)
		check(t, c, needAuth, wirepb.Status_UNAUTHORIZED)
	})
	t.Run("started", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		check(t, c, needAuth, wirepb.Status_UNAUTHORIZED)
	})
	t.Run("verified", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		wantOK(t, c.VerifyIdentity(testCtx(t)))
		check(t, c, needAuth, wirepb.Status_UNAUTHORIZED)
		// A verified identity may still check in.
		wantOK(t, c.CheckIn(testCtx(t)))
	})
	t.Run("checked in", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		wantOK(t, c.CheckIn(testCtx(t)))
		check(t, c, needStarted, wirepb.Status_BAD_CONVERSATION_STATUS)
		wantStatus(t, c.CheckIn(testCtx(t)), wirepb.Status_BAD_CONVERSATION_STATUS, "")
		// ... and the session is still checked in.
		publish(t, c, key, profileOf("person", "Ann", 1), nil, nil)
	})
}

// TestIdentityProof checks VerifyIdentity and CheckIn against forged
// proofs. After any refusal the conversation is still open, and the right
// proof succeeds on the same stream.
func TestIdentityProof(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	other := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	key, stranger := newKey(t), newKey(t)
	srv.Customer(t, key, "person").Close()

	type proof struct{ challenge, sig []byte }
	tests := []struct {
		name    string
		forge   func(challenge []byte) proof
		status  wirepb.Status
		details string
	}{
		{"valid", func(ch []byte) proof {
			return proof{ch, key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, srv.Key.Public()))}
		}, wirepb.Status_OK, ""},
		{"another challenge", func(ch []byte) proof {
			bad := randBytes(len(ch))
			return proof{bad, key.Sign(identity.DomainChallenge, wire.ChallengeMessage(bad, srv.Key.Public()))}
		}, wirepb.Status_INVALID_VALUE, "challenge"},
		{"empty challenge", func(ch []byte) proof {
			return proof{nil, key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, srv.Key.Public()))}
		}, wirepb.Status_INVALID_VALUE, "challenge"},
		{"signed by another key", func(ch []byte) proof {
			return proof{ch, stranger.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, srv.Key.Public()))}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"signed for another server", func(ch []byte) proof {
			return proof{ch, key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, other.Key.Public()))}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"bare challenge signed", func(ch []byte) proof {
			return proof{ch, key.Sign(identity.DomainChallenge, ch)}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"signed in another domain", func(ch []byte) proof {
			return proof{ch, key.Sign(identity.DomainProfile, wire.ChallengeMessage(ch, srv.Key.Public()))}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"no signature", func(ch []byte) proof { return proof{ch, nil} }, wirepb.Status_INVALID_SIGNATURE, ""},
		{"truncated signature", func(ch []byte) proof {
			return proof{ch, key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, srv.Key.Public()))[:63]}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
	}
	for _, checkIn := range []bool{false, true} {
		op := "VerifyIdentity"
		if checkIn {
			op = "CheckIn"
		}
		for _, tt := range tests {
			t.Run(op+"/"+tt.name, func(t *testing.T) {
				c := srv.DialFrom(t, h)
				ch := startConversation(t, c, key)
				p := tt.forge(ch)
				_, err := c.Call(testCtx(t), proveReq(checkIn, p.challenge, p.sig))
				if tt.status == wirepb.Status_OK {
					wantOK(t, err)
					return
				}
				wantStatus(t, err, tt.status, tt.details)
				good := key.Sign(identity.DomainChallenge, wire.ChallengeMessage(ch, srv.Key.Public()))
				if _, err := c.Call(testCtx(t), proveReq(checkIn, ch, good)); err != nil {
					t.Fatalf("valid proof after a refused one: %v", err)
				}
			})
		}
	}
}

// TestParallelVerify checks that one identity may verify on many streams at
// once, and that a check-in of the same identity does not drop them.
func TestParallelVerify(t *testing.T) {
	t.Parallel()
	const streams = 8
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	key := newKey(t)
	conns := make([]*client.Conn, streams)
	for i := range conns {
		conns[i] = srv.DialFrom(t, h)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			ctx := testCtx(t)
			if err := c.StartConversation(ctx, key); err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			if err := c.VerifyIdentity(ctx); err != nil {
				t.Errorf("stream %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	customer := customerFrom(t, srv, h, key, "person")
	publish(t, customer, key, profileOf("person", "Vera", 1), nil, nil)
	for i, c := range conns {
		if _, err := c.Ping(testCtx(t), nil); err != nil {
			t.Errorf("verified stream %d after a check-in of its identity: %v", i, err)
		}
	}
	// A verified stream is not the checked-in one.
	info, err := conns[0].GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantOK(t, err)
	if !info.Online {
		t.Errorf("GetProfile online = false, want true while checked in")
	}
}

// TestCheckIn covers check-ins of identities that are not hosted.
func TestCheckIn(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)

	t.Run("not hosted", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), newKey(t)))
		wantStatus(t, c.CheckIn(testCtx(t)), wirepb.Status_NOT_FOUND, "")
		// The conversation may still verify.
		wantOK(t, c.VerifyIdentity(testCtx(t)))
	})
	t.Run("cancelled", func(t *testing.T) {
		key := newKey(t)
		wantOK(t, customerFrom(t, srv, h, key, "person").CancelHosting(testCtx(t), nil))
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		wantStatus(t, c.CheckIn(testCtx(t)), wirepb.Status_NOT_FOUND, "")
	})
	t.Run("hosted on another server", func(t *testing.T) {
		other := profileservertest.Start(t)
		key := newKey(t)
		customerFrom(t, other, h, key, "person")
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		wantStatus(t, c.CheckIn(testCtx(t)), wirepb.Status_NOT_FOUND, "")
	})
}

// TestParallelCheckIn checks one connection per identity: a second check-in
// drops the first stream, and the identity goes offline when the second
// disconnects.
func TestParallelCheckIn(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	first := srv.Customer(t, key, "person")
	publish(t, first, key, profileOf("person", "Olga", 1), nil, nil)
	observer := srv.Dial(t)
	online := func() bool {
		info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
		wantOK(t, err)
		return info.Online
	}
	if !online() {
		t.Fatal("GetProfile online = false after check-in, want true")
	}

	second := srv.Dial(t) // another device: another host
	wantOK(t, second.StartConversation(testCtx(t), key))
	wantOK(t, second.CheckIn(testCtx(t)))
	waitDone(t, first, "first check-in after a second one")
	if _, err := first.Ping(testCtx(t), nil); err == nil {
		t.Error("Ping on the dropped stream succeeded")
	}
	if !online() {
		t.Error("GetProfile online = false while the second check-in is connected, want true")
	}
	// The second stream is the checked-in one.
	publish(t, second, key, profileOf("person", "Olga B.", 2), nil, nil)
	if s := srv.Stats(); s.Online != 1 {
		t.Errorf("Stats().Online = %d, want 1", s.Online)
	}

	second.Close()
	waitUntil(t, callTimeout, "identity offline after its stream closed", func() bool { return !online() })
	if s := srv.Stats(); s.Online != 0 {
		t.Errorf("Stats().Online = %d, want 0", s.Online)
	}
	info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantOK(t, err)
	if got := info.Profile.Profile.Name; got != "Olga B." {
		t.Errorf("profile name = %q, want the second stream's update %q", got, "Olga B.")
	}
}
