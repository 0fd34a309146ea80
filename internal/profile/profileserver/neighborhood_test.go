package profileserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// searchNames runs a search on c and returns the names found and the
// servers covered.
func searchNames(t *testing.T, c *client.Conn, q client.Query) (map[string]bool, int) {
	t.Helper()
	res, err := c.SearchAll(testCtx(t), q)
	wantOK(t, err)
	names := map[string]bool{}
	for _, m := range res.Matches {
		names[m.Profile.Profile.Name] = true
	}
	return names, len(res.CoveredServers)
}

// TestNeighborhoodSharing: B follows A; A's hosted profiles, changes and
// deletions reach B's searches; no-propagation updates do not; B restarted
// resumes from A's log without a new snapshot.
func TestNeighborhoodSharing(t *testing.T) {
	t.Parallel()
	a := profileservertest.Start(t, unlimited)
	bKey, bDir := newKey(t), t.TempDir()
	b := profileservertest.StartWith(t, bKey, bDir, unlimited)
	h := profileservertest.ClientHost(t)

	var conns []*client.Conn
	var keys []*identity.Key
	for i := range 30 {
		k := newKey(t)
		c := customerFrom(t, a, h, k, "person")
		loc := graph.Location{Lat: 48850000 + int32(i)*1000, Lon: 2350000}
		p := profileOf("person", fmt.Sprintf("Shared %02d", i), 1)
		p.Location = loc
		publish(t, c, k, p, nil, nil)
		conns, keys = append(conns, c), append(keys, k)
	}
	b.SetNeighbors([]peer.AddrInfo{a.Addr})
	q := b.DialFrom(t, h)
	waitUntil(t, 20*time.Second, "B to hold A's 30 profiles", func() bool {
		names, covered := searchNames(t, q, client.Query{Name: "shared*"})
		return len(names) == 30 && covered == 2
	})
	res, err := q.Search(testCtx(t), client.Query{Name: "shared 07"})
	wantOK(t, err)
	if len(res.Matches) != 1 || res.Matches[0].Hosted || res.Matches[0].HostingServer != a.ID() {
		t.Fatalf("shared match = %+v, want one, not hosted, hosted by A", res.Matches)
	}

	// A change, a no-propagation change and a cancel.
	p := profileOf("person", "Renamed 00", 2)
	publish(t, conns[0], keys[0], p, nil, nil)
	quiet := sign(t, keys[1], profileOf("person", "Quiet 01", 2))
	wantOK(t, conns[1].UpdateProfile(testCtx(t), quiet, nil, nil, true))
	wantOK(t, conns[2].CancelHosting(testCtx(t), nil))
	waitUntil(t, 20*time.Second, "the change and the cancel to reach B", func() bool {
		names, _ := searchNames(t, q, client.Query{Type: "person"})
		return names["Renamed 00"] && !names["Shared 02"] && len(names) == 29
	})
	names, _ := searchNames(t, q, client.Query{Type: "person"})
	if names["Quiet 01"] || !names["Shared 01"] {
		t.Errorf("a no-propagation update reached B: names %v", names)
	}

	// B restarts and resumes from A's log: no new snapshot.
	snaps := a.Stats().Snapshots
	b.Stop()
	b = profileservertest.StartWith(t, bKey, bDir, unlimited)
	b.SetNeighbors([]peer.AddrInfo{a.Addr})
	q = b.DialFrom(t, h)
	names, _ = searchNames(t, q, client.Query{Type: "person"})
	if len(names) != 29 {
		t.Fatalf("B after restart holds %d profiles before syncing, want 29 from its store", len(names))
	}
	publish(t, conns[3], keys[3], profileOf("person", "After restart 03", 2), nil, nil)
	waitUntil(t, 20*time.Second, "a change after B's restart", func() bool {
		names, _ := searchNames(t, q, client.Query{Name: "after restart*"})
		return len(names) == 1
	})
	if got := a.Stats().Snapshots; got != snaps {
		t.Errorf("snapshots served by A = %d after B's restart, want %d (resume from the log)", got, snaps)
	}

	// Removing the neighbour drops its profiles.
	b.SetNeighbors(nil)
	names, covered := searchNames(t, q, client.Query{Type: "person"})
	if len(names) != 0 || covered != 1 {
		t.Errorf("after removing A: %d profiles, %d servers covered; want 0 and 1", len(names), covered)
	}
}

// TestNeighborCutOff: a neighbour that sends a forged profile is cut off
// and none of its items are stored.
func TestNeighborCutOff(t *testing.T) {
	t.Parallel()
	b := profileservertest.Start(t, unlimited, func(c *profileserver.Config) { c.CutOffPause = 20 * time.Millisecond })
	liar := profileservertest.Start(t) // a real host with the liar's handler below
	victim := newKey(t)
	forged := sign(t, victim, profileOf("person", "Forged", 1))
	forged.Signature = append([]byte(nil), forged.Signature...)
	forged.Signature[0] ^= 1
	good := sign(t, newKey(t), profileOf("person", "Good", 1))
	served := make(chan struct{}, 10)
	liar.Host.SetStreamHandler(profileserver.ProtocolNeighbor, func(st network.Stream) {
		defer st.Close()
		for {
			m, err := wire.ReadMessage(st)
			if err != nil {
				return
			}
			req := m.GetRequest()
			resp := &wirepb.Response{}
			switch req.Body.(type) {
			case *wirepb.Request_StartConversation:
				cc := req.GetStartConversation().ClientChallenge
				resp.Signature = liar.Key.Sign(identity.DomainServerChallenge, cc)
				resp.Body = &wirepb.Response_StartConversation{StartConversation: &wirepb.StartConversationResponse{
					Version: []byte{1, 0, 0}, PublicKey: liar.Key.Public(), Challenge: randBytes(32), ClientChallenge: cc}}
			case *wirepb.Request_VerifyIdentity:
				resp.Body = &wirepb.Response_VerifyIdentity{VerifyIdentity: &wirepb.VerifyIdentityResponse{}}
			case *wirepb.Request_NeighborhoodSync:
				gid, vid := good.ID(), victim.ID()
				resp.Body = &wirepb.Response_NeighborhoodSync{NeighborhoodSync: &wirepb.NeighborhoodSyncResponse{
					Epoch: 7, Cursor: 1, NewSnapshot: true, Snapshot: true, SnapshotDone: true,
					Items: []*wirepb.SharedProfileItem{
						{IdentityId: gid[:], Profile: good.Proto()},
						{IdentityId: vid[:], Profile: forged.Proto()},
					}}}
				served <- struct{}{}
			}
			if err := wire.WriteMessage(st, &wirepb.Message{Id: m.Id, Kind: &wirepb.Message_Response{Response: resp}}); err != nil {
				return
			}
		}
	})
	b.SetNeighbors([]peer.AddrInfo{liar.Addr})
	// The follower asks again only after it has handled (and refused) the
	// first batch and waited out the cut-off pause.
	for range 2 {
		select {
		case <-served:
		case <-time.After(20 * time.Second):
			t.Fatal("B did not ask the liar to share (again)")
		}
	}
	q := b.Dial(t)
	names, covered := searchNames(t, q, client.Query{Type: "person"})
	if len(names) != 0 || covered != 1 {
		t.Fatalf("B stored items of a neighbour that sent a forged profile: %v (covered %d)", names, covered)
	}
	if st := b.Stats(); st.Shared != 0 {
		t.Errorf("B's shared profiles = %d, want 0", st.Shared)
	}
}
