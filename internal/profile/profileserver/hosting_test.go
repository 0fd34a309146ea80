package profileserver_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func TestRegisterHosting(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Dial(t)
	ctx := testCtx(t)
	wantOK(t, c.StartConversation(ctx, key))
	before := time.Now()
	ag, err := c.RegisterHosting(ctx, "person")
	wantOK(t, err)

	if err := identity.Verify(srv.Key.Public(), identity.DomainHostingContract, ag.Contract, ag.ServerSignature); err != nil {
		t.Errorf("server countersignature: %v", err)
	}
	if err := identity.Verify(key.Public(), identity.DomainHostingContract, ag.Contract, ag.ClientSignature); err != nil {
		t.Errorf("client signature: %v", err)
	}
	var got wirepb.HostingContract
	wantOK(t, proto.Unmarshal(ag.Contract, &got))
	if string(got.IdentityPublicKey) != string(key.Public()) || string(got.ServerPublicKey) != string(srv.Key.Public()) ||
		got.IdentityType != "person" || got.StartTime < before.UnixMilli()-1 {
		t.Errorf("contract = %v, want this identity, this server, type person, starting now", &got)
	}

	// Registered but not initialized.
	observer := srv.Dial(t)
	_, err = observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_UNINITIALIZED, "")
	if s := srv.Stats(); s.Hosted != 1 || s.Indexed != 0 {
		t.Errorf("Stats() = %+v, want 1 hosted, 0 indexed", s)
	}

	t.Run("again on the same stream", func(t *testing.T) {
		_, err := c.RegisterHosting(testCtx(t), "person")
		wantStatus(t, err, wirepb.Status_ALREADY_EXISTS, "")
	})
	t.Run("again on another stream with another type", func(t *testing.T) {
		c2 := srv.Dial(t)
		wantOK(t, c2.StartConversation(testCtx(t), key))
		_, err := c2.RegisterHosting(testCtx(t), "bot")
		wantStatus(t, err, wirepb.Status_ALREADY_EXISTS, "")
	})
	t.Run("after check-in", func(t *testing.T) {
		wantOK(t, c.CheckIn(testCtx(t)))
		_, err := c.RegisterHosting(testCtx(t), "person")
		wantStatus(t, err, wirepb.Status_BAD_CONVERSATION_STATUS, "")
	})
	stats, err := observer.Stats(ctx)
	wantOK(t, err)
	if diff := cmp.Diff(map[string]int{"person": 1}, stats); diff != "" {
		t.Errorf("Stats after refused registrations (-want +got):\n%s", diff)
	}
}

func TestRegisterHostingQuota(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.MaxHosted = 3 })
	h := profileservertest.ClientHost(t)
	var conns []*client.Conn
	for range 3 {
		conns = append(conns, customerFrom(t, srv, h, newKey(t), "person"))
	}
	late := newKey(t)
	c := srv.DialFrom(t, h)
	wantOK(t, c.StartConversation(testCtx(t), late))
	_, err := c.RegisterHosting(testCtx(t), "person")
	wantStatus(t, err, wirepb.Status_QUOTA_EXCEEDED, "")

	// A cancelled agreement frees its place.
	wantOK(t, conns[0].CancelHosting(testCtx(t), nil))
	if _, err := c.RegisterHosting(testCtx(t), "person"); err != nil {
		t.Fatalf("RegisterHosting after a cancellation: %v", err)
	}
	c2 := srv.DialFrom(t, h)
	wantOK(t, c2.StartConversation(testCtx(t), newKey(t)))
	_, err = c2.RegisterHosting(testCtx(t), "person")
	wantStatus(t, err, wirepb.Status_QUOTA_EXCEEDED, "")
}

// TestRegisterHostingInvalidContract sends contracts that break one rule
// each; none registers the identity.
func TestRegisterHostingInvalidContract(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	stranger := newKey(t)
	now := time.Now()

	tests := []struct {
		name    string
		edit    func(c *wirepb.HostingContract)
		signer  func(own *identity.Key) *identity.Key // default: own
		raw     []byte                                // overrides the encoded contract
		status  wirepb.Status
		details string
	}{
		{name: "identity key of another identity", edit: func(c *wirepb.HostingContract) { c.IdentityPublicKey = stranger.Public() },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityPublicKey"},
		{name: "no identity key", edit: func(c *wirepb.HostingContract) { c.IdentityPublicKey = nil },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityPublicKey"},
		{name: "server key of another server", edit: func(c *wirepb.HostingContract) { c.ServerPublicKey = stranger.Public() },
			status: wirepb.Status_INVALID_VALUE, details: "contract.serverPublicKey"},
		{name: "no server key", edit: func(c *wirepb.HostingContract) { c.ServerPublicKey = nil },
			status: wirepb.Status_INVALID_VALUE, details: "contract.serverPublicKey"},
		{name: "start 2 h in the past", edit: func(c *wirepb.HostingContract) { c.StartTime = now.Add(-2 * time.Hour).UnixMilli() },
			status: wirepb.Status_INVALID_VALUE, details: "contract.startTime"},
		{name: "start at zero", edit: func(c *wirepb.HostingContract) { c.StartTime = 0 },
			status: wirepb.Status_INVALID_VALUE, details: "contract.startTime"},
		{name: "start 30 min in the past", edit: func(c *wirepb.HostingContract) { c.StartTime = now.Add(-30 * time.Minute).UnixMilli() },
			status: wirepb.Status_OK},
		{name: "start tomorrow", edit: func(c *wirepb.HostingContract) { c.StartTime = now.Add(24 * time.Hour).UnixMilli() },
			status: wirepb.Status_OK},
		{name: "empty type", edit: func(c *wirepb.HostingContract) { c.IdentityType = "" },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityType"},
		{name: "type of 65 bytes", edit: func(c *wirepb.HostingContract) { c.IdentityType = strings.Repeat("t", 65) },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityType"},
		{name: "type of 64 bytes", edit: func(c *wirepb.HostingContract) { c.IdentityType = strings.Repeat("t", 64) },
			status: wirepb.Status_OK},
		{name: "type with a star", edit: func(c *wirepb.HostingContract) { c.IdentityType = "chat*bot" },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityType"},
		{name: "type ending in a star", edit: func(c *wirepb.HostingContract) { c.IdentityType = "person*" },
			status: wirepb.Status_INVALID_VALUE, details: "contract.identityType"},
		// proto3 strings must be UTF-8, so such a contract does not decode.
		{name: "type not UTF-8", raw: protowire.AppendString(protowire.AppendTag(nil, 5, protowire.BytesType), "per\xffson"),
			status: wirepb.Status_INVALID_VALUE, details: "contract"},
		{name: "undecodable contract", raw: []byte{0xff, 0xff, 0xff},
			status: wirepb.Status_INVALID_VALUE, details: "contract"},
		{name: "empty contract", raw: []byte{},
			status: wirepb.Status_INVALID_VALUE, details: "contract"},
		{name: "signed by another key", signer: func(*identity.Key) *identity.Key { return stranger },
			status: wirepb.Status_INVALID_SIGNATURE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := newKey(t)
			c := srv.DialFrom(t, h)
			wantOK(t, c.StartConversation(testCtx(t), key))
			contract := &wirepb.HostingContract{IdentityPublicKey: key.Public(), ServerPublicKey: srv.Key.Public(),
				StartTime: now.UnixMilli(), IdentityType: "person"}
			if tt.edit != nil {
				tt.edit(contract)
			}
			signer := key
			if tt.signer != nil {
				signer = tt.signer(key)
			}
			req := contractReq(t, contract, signer)
			if tt.raw != nil {
				req.GetRegisterHosting().Contract = tt.raw
				req.Signature = key.Sign(identity.DomainHostingContract, tt.raw)
			}
			resp, err := c.Call(testCtx(t), req)
			if tt.status == wirepb.Status_OK {
				wantOK(t, err)
				raw := req.GetRegisterHosting().Contract
				if err := identity.Verify(srv.Key.Public(), identity.DomainHostingContract, raw, resp.Signature); err != nil {
					t.Errorf("countersignature: %v", err)
				}
				return
			}
			wantStatus(t, err, tt.status, tt.details)
			_, err = c.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
			wantStatus(t, err, wirepb.Status_NOT_FOUND, "")
			wantStatus(t, c.CheckIn(testCtx(t)), wirepb.Status_NOT_FOUND, "")
		})
	}

	t.Run("signature over other bytes", func(t *testing.T) {
		t.Parallel()
		key := newKey(t)
		c := srv.DialFrom(t, h)
		wantOK(t, c.StartConversation(testCtx(t), key))
		good := &wirepb.HostingContract{IdentityPublicKey: key.Public(), ServerPublicKey: srv.Key.Public(),
			StartTime: now.UnixMilli(), IdentityType: "person"}
		req := contractReq(t, good, key)
		other := proto.Clone(good).(*wirepb.HostingContract)
		other.IdentityType = "bot"
		req.Signature = contractReq(t, other, key).Signature
		_, err := c.Call(testCtx(t), req)
		wantStatus(t, err, wirepb.Status_INVALID_SIGNATURE, "")
		// The refusal does not stop a valid registration on the stream.
		_, err = c.RegisterHosting(testCtx(t), "person")
		wantOK(t, err)
	})
}

func TestCancelHosting(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	key := newKey(t)
	c := customerFrom(t, srv, h, key, "person")
	img := solidPNG(t, 16, rgb(200, 10, 10))
	p := profileOf("person", "Carl", 1)
	p.ImageHash = hashOf(img)
	publish(t, c, key, p, img, nil)
	wantOK(t, c.AddServices(testCtx(t), "chat"))
	observer := srv.DialFrom(t, h)
	ctx := testCtx(t)

	wantOK(t, c.CancelHosting(ctx, nil))
	info, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{Image: true, Services: true})
	wantOK(t, err)
	if info.Hosted || info.Online || info.TargetServer != nil || info.Profile != nil || info.Image != nil || len(info.Services) != 0 {
		t.Errorf("GetProfile after cancel = %+v, want not hosted, offline, no target, no data", info)
	}
	stats, err := observer.Stats(ctx)
	wantOK(t, err)
	if len(stats) != 0 {
		t.Errorf("Stats after cancel = %v, want none", stats)
	}
	res, err := observer.Search(ctx, client.Query{Name: "carl"})
	wantOK(t, err)
	if res.Total != 0 {
		t.Errorf("Search after cancel found %d profiles, want 0", res.Total)
	}

	// The stream is no longer checked in, but stays a verified conversation.
	err = c.UpdateProfile(ctx, sign(t, key, profileOf("person", "Carl", 2)), nil, nil, false)
	wantStatus(t, err, wirepb.Status_UNAUTHORIZED, "")
	wantStatus(t, c.CancelHosting(ctx, nil), wirepb.Status_UNAUTHORIZED, "")
	wantStatus(t, c.CheckIn(ctx), wirepb.Status_NOT_FOUND, "")
	if _, err := c.Ping(ctx, nil); err != nil {
		t.Errorf("Ping after cancel: %v", err)
	}

	// Registering again starts afresh: uninitialized, no old profile or
	// image, and the sequence may start again.
	c2 := srv.DialFrom(t, h)
	wantOK(t, c2.StartConversation(ctx, key))
	_, err = c2.RegisterHosting(ctx, "bot")
	wantOK(t, err)
	_, err = observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_UNINITIALIZED, "")
	wantOK(t, c2.CheckIn(ctx))
	err = c2.UpdateProfile(ctx, sign(t, key, profileOf("person", "Carl", 5)), nil, nil, false)
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "profile.type") // the new registration's type holds
	p = profileOf("bot", "Carl", 1)
	p.ImageHash = hashOf(img)
	err = c2.UpdateProfile(ctx, sign(t, key, p), nil, nil, false)
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "profileImage") // the old image is gone
	publish(t, c2, key, profileOf("bot", "Carl", 1), nil, nil)
	info, err = observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantOK(t, err)
	if !info.Hosted || info.Profile.Profile.Type != "bot" {
		t.Errorf("GetProfile after registering again = %+v, want a hosted bot", info)
	}
}

func TestCancelHostingRedirect(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	observer := srv.DialFrom(t, h)

	t.Run("valid", func(t *testing.T) {
		key := newKey(t)
		c := customerFrom(t, srv, h, key, "person")
		publish(t, c, key, profileOf("person", "Rita", 1), nil, nil)
		target := newKey(t).ID()
		wantOK(t, c.CancelHosting(testCtx(t), &target))
		info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
		wantOK(t, err)
		if info.Hosted || info.TargetServer == nil || *info.TargetServer != target {
			t.Errorf("GetProfile after a redirect = hosted %v, target %v; want not hosted, target %v", info.Hosted, info.TargetServer, target)
		}
	})

	cancelReq := func(redirect bool, id []byte) *wirepb.Request {
		return &wirepb.Request{Body: &wirepb.Request_CancelHosting{CancelHosting: &wirepb.CancelHostingRequest{
			RedirectToNewServer: redirect, NewServerId: id}}}
	}
	own := srv.ID()
	invalid := []struct {
		name string
		req  *wirepb.Request
	}{
		{"31-byte ID", cancelReq(true, randBytes(31))},
		{"33-byte ID", cancelReq(true, randBytes(33))},
		{"no ID", cancelReq(true, nil)},
		{"this server's ID", cancelReq(true, own[:])},
		{"ID without the redirect flag", cancelReq(false, randBytes(32))},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t)
			c := customerFrom(t, srv, h, key, "person")
			publish(t, c, key, profileOf("person", "Rita", 1), nil, nil)
			_, err := c.Call(testCtx(t), tt.req)
			wantStatus(t, err, wirepb.Status_INVALID_VALUE, "newServerId")
			info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
			wantOK(t, err)
			if !info.Hosted || !info.Online {
				t.Errorf("GetProfile after a refused cancel = hosted %v, online %v; want both", info.Hosted, info.Online)
			}
		})
	}
}

// TestHostingSurvivesRestart restarts a server on the same key and data and
// checks every kind of stored identity.
func TestHostingSurvivesRestart(t *testing.T) {
	t.Parallel()
	opt := func(c *profileserver.Config) { c.MaxHosted = 3 }
	srv := profileservertest.Start(t, opt)
	h := profileservertest.ClientHost(t)
	ctx := testCtx(t)

	uninit, withProfile, moved := newKey(t), newKey(t), newKey(t)
	customerFrom(t, srv, h, uninit, "bot")
	c := customerFrom(t, srv, h, withProfile, "person")
	sp := publish(t, c, withProfile, profileOf("person", "Ida", 1), nil, nil)
	target := newKey(t).ID()
	wantOK(t, customerFrom(t, srv, h, moved, "person").CancelHosting(ctx, &target))
	third := newKey(t)
	customerFrom(t, srv, h, third, "org")

	srv.Stop()
	srv = profileservertest.StartWith(t, srv.Key, srv.Dir, opt)
	observer := srv.DialFrom(t, h)

	if s := srv.Stats(); s.Hosted != 3 || s.Indexed != 1 || s.Online != 0 {
		t.Errorf("Stats() after restart = %+v, want 3 hosted, 1 indexed, 0 online", s)
	}
	_, err := observer.GetProfile(ctx, uninit.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_UNINITIALIZED, "")
	info, err := observer.GetProfile(ctx, withProfile.ID(), client.GetOptions{})
	wantOK(t, err)
	if !info.Hosted || info.Online || string(info.Profile.Raw) != string(sp.Raw) {
		t.Errorf("GetProfile after restart = %+v, want the stored profile, offline", info)
	}
	info, err = observer.GetProfile(ctx, moved.ID(), client.GetOptions{})
	wantOK(t, err)
	if info.Hosted || info.TargetServer == nil || *info.TargetServer != target {
		t.Errorf("GetProfile of the moved identity after restart = %+v, want redirect to %v", info, target)
	}
	stats, err := observer.Stats(ctx)
	wantOK(t, err)
	if diff := cmp.Diff(map[string]int{"bot": 1, "person": 1, "org": 1}, stats); diff != "" {
		t.Errorf("Stats after restart (-want +got):\n%s", diff)
	}

	// Registrations still count: the quota is full, and a hosted identity
	// checks in.
	c = srv.DialFrom(t, h)
	wantOK(t, c.StartConversation(ctx, withProfile))
	_, err = c.RegisterHosting(ctx, "person")
	wantStatus(t, err, wirepb.Status_ALREADY_EXISTS, "")
	wantOK(t, c.CheckIn(ctx))
	c = srv.DialFrom(t, h)
	wantOK(t, c.StartConversation(ctx, newKey(t)))
	_, err = c.RegisterHosting(ctx, "person")
	wantStatus(t, err, wirepb.Status_QUOTA_EXCEEDED, "")
}

// TestRedirectExpires: a cancelled identity's redirect is served for
// RedirectKeep, then forgotten, also across a restart.
func TestRedirectExpires(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	keep := func(c *profileserver.Config) { c.Now, c.RedirectKeep = clock, time.Hour }
	srvKey, dir := newKey(t), t.TempDir()
	srv := profileservertest.StartWith(t, srvKey, dir, keep)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Rita", 1), nil, nil)
	target := newKey(t).ID()
	wantOK(t, c.CancelHosting(testCtx(t), &target))
	observer := srv.Dial(t)
	info, err := observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantOK(t, err)
	if info.TargetServer == nil || *info.TargetServer != target {
		t.Fatalf("redirect before expiry = %v, want %v", info.TargetServer, target)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	_, err = observer.GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_NOT_FOUND, "")
	wantOK(t, srv.Sweep())
	srv.Stop()
	mu.Lock()
	now = time.Now() // back in step with the client's clock for the new contract
	mu.Unlock()
	srv = profileservertest.StartWith(t, srvKey, dir, keep)
	_, err = srv.Dial(t).GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_NOT_FOUND, "")
	// The identity may register again from scratch.
	srv.Customer(t, key, "other")
}

// TestSearchPageSkipsCancelled: an identity cancelled after a search is not
// returned by later pages of that search.
func TestSearchPageSkipsCancelled(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, unlimited)
	h := profileservertest.ClientHost(t)
	var conns []*client.Conn
	for i := range 3 {
		key := newKey(t)
		c := customerFrom(t, srv, h, key, "person")
		publish(t, c, key, profileOf("person", fmt.Sprintf("P%d", i), 1), nil, nil)
		conns = append(conns, c)
	}
	q := srv.DialFrom(t, h)
	res, err := q.Search(testCtx(t), client.Query{Type: "person", PageSize: 1, Limit: 3})
	wantOK(t, err)
	if res.Total != 3 {
		t.Fatalf("total = %d, want 3", res.Total)
	}
	for _, c := range conns {
		wantOK(t, c.CancelHosting(testCtx(t), nil))
	}
	got, err := q.SearchPart(testCtx(t), 1, 2)
	wantOK(t, err)
	if len(got) != 0 {
		t.Errorf("SearchPart after every identity cancelled = %d profiles, want 0", len(got))
	}
}
