package profileserver_test

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/host"
	"golang.org/x/sync/errgroup"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// hostedProfile is one profile of a search fixture.
type hostedProfile struct {
	key     *identity.Key
	profile graph.Profile
	thumb   []byte
	online  bool // its check-in stream stays open
}

// hostAll registers, checks in and publishes every profile, several at a
// time over streams of one client host. The streams of online profiles stay
// open until the test ends.
func hostAll(t testing.TB, srv *profileservertest.Server, h host.Host, ps []*hostedProfile) {
	t.Helper()
	h.Peerstore().AddAddrs(srv.Addr.ID, srv.Addr.Addrs, time.Hour)
	ctx := testCtx(t)
	var g errgroup.Group
	g.SetLimit(8)
	for _, p := range ps {
		g.Go(func() error {
			c, err := client.Dial(ctx, h, srv.Addr)
			if err != nil {
				return err
			}
			if p.online {
				t.Cleanup(func() { c.Close() })
			} else {
				defer c.Close()
			}
			if err := c.StartConversation(ctx, p.key); err != nil {
				return err
			}
			if _, err := c.RegisterHosting(ctx, p.profile.Type); err != nil {
				return err
			}
			if err := c.CheckIn(ctx); err != nil {
				return err
			}
			sp, err := graph.Sign(p.key, p.profile)
			if err != nil {
				return err
			}
			return c.UpdateProfile(ctx, sp, nil, p.thumb, false)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("hosting the search fixture: %v", err)
	}
}

// city is a place of the search fixture.
type city struct {
	name, key, lang string
	lat, lon        float64 // degrees
}

var cities = []city{
	{"Prague", "prague", "cs", 50.0755, 14.4378},
	{"Brno", "brno", "cs", 49.1951, 16.6068}, // 185 km from Prague
	{"London", "london", "en", 51.5074, -0.1278},
	{"New York", "newyork", "en", 40.7128, -74.0060},
	{"Sydney", "sydney", "en", -33.8688, 151.2093},
	{"Suva", "suva", "fj", -18.1248, 178.4501},  // Fiji, west of the antimeridian
	{"Apia", "apia", "sm", -13.8333, -171.7500}, // Samoa, east of it; 1,150 km from Suva
}

var (
	fixtureTypes = []string{"person", "person/student", "org/company", "bot"}
	firstNames   = []string{"Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi"}
)

func loc(t testing.TB, lat, lon float64) graph.Location {
	t.Helper()
	l, err := graph.LocationFromDegrees(lat, lon)
	wantOK(t, err)
	return l
}

// mixedFixture is 60 profiles: eight in each city, their locations up to
// 3.5 km apart, with four types, names "<first name> <city>", extra data
// "city=..;lang=..;age=20..55", a thumbnail on the first of each city and
// the second of each city online; and four profiles without a location.
func mixedFixture(t testing.TB) []*hostedProfile {
	t.Helper()
	var ps []*hostedProfile
	for _, c := range cities {
		for i, first := range firstNames {
			p := &hostedProfile{key: newKey(t), online: i == 1}
			p.profile = graph.Profile{
				Type:     fixtureTypes[i%len(fixtureTypes)],
				Name:     first + " " + c.name,
				Location: loc(t, c.lat+float64(i)*0.004, c.lon+float64(i)*0.004),
				Extra:    fmt.Sprintf("city=%s;lang=%s;age=%d", c.key, c.lang, 20+5*i),
				Sequence: 1,
			}
			if i == 0 {
				p.thumb = smallJPEG(t, rgb(uint8(len(ps)), 0, 0))
				p.profile.ThumbnailHash = hashOf(p.thumb)
			}
			ps = append(ps, p)
		}
	}
	for _, p := range []graph.Profile{
		{Type: "bot", Name: "Star*Man", Extra: "lang=xx"},
		{Type: "person", Name: "Alice"},
		{Type: "person/student", Name: "Zed Nomad", Extra: "city=none"},
		{Type: "org/company", Name: "alice prague"},
	} {
		p.Location, p.Sequence = graph.Nowhere, 1
		ps = append(ps, &hostedProfile{key: newKey(t), profile: p})
	}
	return ps
}

// TestSearch runs queries over the mixed fixture and compares each result
// with the profiles the query should select, and with a count worked out by
// hand.
func TestSearch(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, unlimited)
	h := profileservertest.ClientHost(t)
	ps := mixedFixture(t)
	hostAll(t, srv, h, ps)

	// Never found: uninitialized and cancelled identities of a common type.
	customerFrom(t, srv, h, newKey(t), "person")
	customerFrom(t, srv, h, newKey(t), "person")
	gone := newKey(t)
	c := customerFrom(t, srv, h, gone, "person")
	publish(t, c, gone, profileOf("person", "Alice Prague", 1), nil, nil)
	wantOK(t, c.CancelHosting(testCtx(t), nil))

	conn := srv.DialFrom(t, h)
	prague := loc(t, cities[0].lat, cities[0].lon)
	alicePrague := ps[0].profile.Location
	suva := loc(t, cities[5].lat, cities[5].lon)
	lower := strings.ToLower
	within := func(centre graph.Location, radius float64) func(p *graph.Profile) bool {
		return func(p *graph.Profile) bool { return p.Location.IsSet() && graph.Distance(centre, p.Location) <= radius }
	}
	extra := func(re string) func(p *graph.Profile) bool {
		r := regexp.MustCompile(re)
		return func(p *graph.Profile) bool { return r.MatchString(p.Extra) }
	}
	and := func(fs ...func(p *graph.Profile) bool) func(p *graph.Profile) bool {
		return func(p *graph.Profile) bool {
			for _, f := range fs {
				if !f(p) {
					return false
				}
			}
			return true
		}
	}
	all := func(*graph.Profile) bool { return true }
	tests := []struct {
		name  string
		q     client.Query
		want  func(p *graph.Profile) bool
		count int
	}{
		{"everything", client.Query{}, all, 60},
		{"type star", client.Query{Type: "*"}, all, 60},
		{"type exact", client.Query{Type: "person"}, func(p *graph.Profile) bool { return p.Type == "person" }, 15},
		{"type exact, other case", client.Query{Type: "PERSON"}, func(p *graph.Profile) bool { return p.Type == "person" }, 15},
		{"type prefix", client.Query{Type: "person*"}, func(p *graph.Profile) bool { return strings.HasPrefix(p.Type, "person") }, 30},
		{"type prefix with slash", client.Query{Type: "org/*"}, func(p *graph.Profile) bool { return strings.HasPrefix(p.Type, "org/") }, 15},
		{"type suffix", client.Query{Type: "*Company"}, func(p *graph.Profile) bool { return strings.HasSuffix(p.Type, "company") }, 15},
		{"type infix", client.Query{Type: "*son*"}, func(p *graph.Profile) bool { return strings.Contains(p.Type, "son") }, 30},
		{"type unknown", client.Query{Type: "robot"}, nil, 0},
		{"name prefix", client.Query{Name: "alice*"}, func(p *graph.Profile) bool { return strings.HasPrefix(lower(p.Name), "alice") }, 9},
		{"name exact, any case", client.Query{Name: "ALICE prague"}, func(p *graph.Profile) bool { return lower(p.Name) == "alice prague" }, 2},
		{"name suffix", client.Query{Name: "*prague"}, func(p *graph.Profile) bool { return strings.HasSuffix(lower(p.Name), "prague") }, 9},
		{"name infix", client.Query{Name: "*ARO*"}, func(p *graph.Profile) bool { return strings.Contains(lower(p.Name), "aro") }, 7},
		{"name with an inner star is literal", client.Query{Name: "star*man"}, func(p *graph.Profile) bool { return p.Name == "Star*Man" }, 1},
		{"name inner star does not glob", client.Query{Name: "a*e"}, nil, 0},
		{"type and name", client.Query{Type: "bot", Name: "*sydney"}, func(p *graph.Profile) bool {
			return p.Type == "bot" && strings.HasSuffix(p.Name, "Sydney")
		}, 2},
		{"10 km around Prague", client.Query{Near: &prague, Radius: 10_000}, within(prague, 10_000), 8},
		{"250 km around Prague", client.Query{Near: &prague, Radius: 250_000}, within(prague, 250_000), 16},
		{"20,000 km around Prague", client.Query{Near: &prague, Radius: 20_000_000}, within(prague, 20_000_000), 56},
		{"largest radius", client.Query{Near: &prague, Radius: 1<<32 - 1}, func(p *graph.Profile) bool { return p.Location.IsSet() }, 56},
		{"100 m around a profile", client.Query{Near: &alicePrague, Radius: 100}, within(alicePrague, 100), 1},
		{"radius 0 at a profile", client.Query{Near: &alicePrague, Radius: 0}, within(alicePrague, 0), 1},
		{"across the antimeridian from Fiji", client.Query{Near: &suva, Radius: 1_500_000}, within(suva, 1_500_000), 16},
		{"centred on the antimeridian", client.Query{Near: &graph.Location{Lat: -16_000_000, Lon: 180_000_000}, Radius: 1_200_000},
			within(graph.Location{Lat: -16_000_000, Lon: 180_000_000}, 1_200_000), 16},
		{"centred just east of the antimeridian", client.Query{Near: &graph.Location{Lat: -16_000_000, Lon: -179_999_999}, Radius: 1_200_000},
			within(graph.Location{Lat: -16_000_000, Lon: -179_999_999}, 1_200_000), 16},
		{"extra literal", client.Query{Extra: "lang=cs"}, extra("lang=cs"), 16},
		{"extra anchored alternation", client.Query{Extra: "^city=(london|sydney);"}, extra("^city=(london|sydney);"), 16},
		{"extra class and end anchor", client.Query{Extra: "age=[23][05]$"}, extra("age=[23][05]$"), 28},
		{"extra digits and count", client.Query{Extra: `age=\d{2}`}, extra(`age=\d{2}`), 56},
		{"extra is case-sensitive", client.Query{Extra: "LANG=cs"}, nil, 0},
		{"extra, type and location", client.Query{Type: "bot", Near: &prague, Radius: 250_000, Extra: "city=(prague|brno)"},
			and(func(p *graph.Profile) bool { return p.Type == "bot" }, within(prague, 250_000)), 4},
		{"name and location", client.Query{Name: "alice*", Near: &prague, Radius: 10_000},
			and(func(p *graph.Profile) bool { return strings.HasPrefix(p.Name, "Alice") }, within(prague, 10_000)), 1},
		{"hosted only", client.Query{HostedOnly: true, Type: "bot"}, func(p *graph.Profile) bool { return p.Type == "bot" }, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, page := range []int{0, 7} {
				q := tt.q
				q.PageSize = page
				res, err := conn.SearchAll(testCtx(t), q)
				wantOK(t, err)
				var got, want []identity.ID
				for _, m := range res.Matches {
					got = append(got, m.Profile.ID())
				}
				for _, p := range ps {
					if tt.want != nil && tt.want(&p.profile) {
						want = append(want, p.key.ID())
					}
				}
				slices.SortFunc(got, compareIDs)
				slices.SortFunc(want, compareIDs)
				if len(want) != tt.count {
					t.Fatalf("the test expects %d profiles by hand and %d by its filter", tt.count, len(want))
				}
				if res.Total != tt.count {
					t.Errorf("Search(%+v) total = %d, want %d", q, res.Total, tt.count)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Search(%+v) mismatch (-want +got):\n%s", q, diff)
				}
			}
		})
	}

	t.Run("result fields", func(t *testing.T) {
		res, err := conn.SearchAll(testCtx(t), client.Query{})
		wantOK(t, err)
		if diff := cmp.Diff([]identity.ID{srv.ID()}, res.CoveredServers); diff != "" {
			t.Errorf("covered servers (-want +got):\n%s", diff)
		}
		byID := make(map[identity.ID]*hostedProfile)
		for _, p := range ps {
			byID[p.key.ID()] = p
		}
		for _, m := range res.Matches {
			p := byID[m.Profile.ID()]
			if !m.Hosted || m.HostingServer != srv.ID() || m.Online != p.online || m.Thumbnail != nil ||
				m.Profile.Profile.Name != p.profile.Name || m.Profile.Profile.Extra != p.profile.Extra {
				t.Errorf("match %q = hosted %v on %v, online %v, thumbnail %d B; want hosted here, online %v, no thumbnail",
					m.Profile.Profile.Name, m.Hosted, m.HostingServer.Short(), m.Online, len(m.Thumbnail), p.online)
			}
		}
	})

	t.Run("thumbnails", func(t *testing.T) {
		res, err := conn.SearchAll(testCtx(t), client.Query{Type: "person", Thumbnails: true})
		wantOK(t, err)
		n := 0
		for _, m := range res.Matches {
			var want []byte
			for _, p := range ps {
				if p.key.ID() == m.Profile.ID() {
					want = p.thumb
				}
			}
			if !bytes.Equal(m.Thumbnail, want) {
				t.Errorf("thumbnail of %q = %d B, want %d B", m.Profile.Profile.Name, len(m.Thumbnail), len(want))
			}
			if want != nil {
				n++
			}
		}
		if n != len(cities) {
			t.Errorf("search returned %d thumbnails, want %d", n, len(cities))
		}
	})

	t.Run("regex budget", func(t *testing.T) {
		res, err := conn.Search(testCtx(t), client.Query{Extra: "."})
		wantOK(t, err)
		if res.TimedOut {
			t.Errorf("a search of 60 profiles timed out with the default budget")
		}
	})
}

func compareIDs(a, b identity.ID) int { return bytes.Compare(a[:], b[:]) }

func TestSearchEmptyDatabase(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := srv.Dial(t)
	ctx := testCtx(t)
	prague := loc(t, cities[0].lat, cities[0].lon)
	for _, q := range []client.Query{{}, {Type: "person"}, {Near: &prague, Radius: 1000}, {Extra: "x"}, {Thumbnails: true}} {
		res, err := c.Search(ctx, q)
		wantOK(t, err)
		if res.Total != 0 || len(res.Matches) != 0 || len(res.CoveredServers) != 1 || res.CoveredServers[0] != srv.ID() {
			t.Errorf("Search(%+v) on an empty server = %+v, want nothing, covering this server", q, res)
		}
		// There are results to page, but none in range.
		_, err = c.SearchPart(ctx, 0, 1)
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, "recordIndex")
	}
}

// TestSearchInvalid sends queries that break one limit each.
func TestSearchInvalid(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := srv.Dial(t)
	valid := func() *wirepb.ProfileSearchRequest {
		return &wirepb.ProfileSearchRequest{MaxResponseRecordCount: 10, MaxTotalRecordCount: 100,
			Latitude: graph.NoLocation, Longitude: graph.NoLocation}
	}
	tests := []struct {
		name    string
		edit    func(r *wirepb.ProfileSearchRequest)
		details string
	}{
		{"valid", func(r *wirepb.ProfileSearchRequest) {}, ""},
		{"largest counts", func(r *wirepb.ProfileSearchRequest) { r.MaxResponseRecordCount, r.MaxTotalRecordCount = 1000, 10000 }, ""},
		{"largest counts with thumbnails", func(r *wirepb.ProfileSearchRequest) {
			r.IncludeThumbnailImages, r.MaxResponseRecordCount, r.MaxTotalRecordCount = true, 100, 1000
		}, ""},
		{"response count 0", func(r *wirepb.ProfileSearchRequest) { r.MaxResponseRecordCount = 0 }, "maxResponseRecordCount"},
		{"response count 1001", func(r *wirepb.ProfileSearchRequest) { r.MaxResponseRecordCount, r.MaxTotalRecordCount = 1001, 2000 }, "maxResponseRecordCount"},
		{"response count 101 with thumbnails", func(r *wirepb.ProfileSearchRequest) {
			r.IncludeThumbnailImages, r.MaxResponseRecordCount, r.MaxTotalRecordCount = true, 101, 200
		}, "maxResponseRecordCount"},
		{"total count 0", func(r *wirepb.ProfileSearchRequest) { r.MaxTotalRecordCount = 0 }, "maxTotalRecordCount"},
		{"total under response count", func(r *wirepb.ProfileSearchRequest) { r.MaxResponseRecordCount, r.MaxTotalRecordCount = 100, 50 }, "maxTotalRecordCount"},
		{"total count 10001", func(r *wirepb.ProfileSearchRequest) { r.MaxTotalRecordCount = 10001 }, "maxTotalRecordCount"},
		{"total count 1001 with thumbnails", func(r *wirepb.ProfileSearchRequest) {
			r.IncludeThumbnailImages, r.MaxTotalRecordCount = true, 1001
		}, "maxTotalRecordCount"},
		{"type of 65 bytes", func(r *wirepb.ProfileSearchRequest) { r.Type = strings.Repeat("t", 65) }, "type"},
		{"name of 65 bytes", func(r *wirepb.ProfileSearchRequest) { r.Name = strings.Repeat("n", 65) }, "name"},
		{"regex flag", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = "(?i)x" }, "extraData"},
		{"regex word boundary", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = `\bx` }, "extraData"},
		{"regex back-reference", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = `(a)\1` }, "extraData"},
		{"regex lazy quantifier", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = `a+?` }, "extraData"},
		{"regex unbalanced", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = "(a" }, "extraData"},
		{"regex of 257 bytes", func(r *wirepb.ProfileSearchRequest) { r.ExtraData = strings.Repeat("a", 257) }, "extraData"},
		{"latitude over 90", func(r *wirepb.ProfileSearchRequest) { r.Latitude, r.Longitude, r.Radius = 90000001, 0, 10 }, "latitude"},
		{"latitude under -90", func(r *wirepb.ProfileSearchRequest) { r.Latitude, r.Longitude = -90000001, 0 }, "latitude"},
		{"longitude over 180", func(r *wirepb.ProfileSearchRequest) { r.Latitude, r.Longitude = 0, 180000001 }, "longitude"},
		{"longitude without latitude", func(r *wirepb.ProfileSearchRequest) { r.Longitude = 0 }, "latitude"},
		{"latitude without longitude", func(r *wirepb.ProfileSearchRequest) { r.Latitude = 0 }, "longitude"},
		{"radius without location", func(r *wirepb.ProfileSearchRequest) { r.Radius = 1000 }, "radius"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(r)
			_, err := c.Call(testCtx(t), &wirepb.Request{Body: &wirepb.Request_Search{Search: r}})
			if tt.details == "" {
				wantOK(t, err)
				return
			}
			wantStatus(t, err, wirepb.Status_INVALID_VALUE, tt.details)
		})
	}
}

// TestSearchPaging pages through 250 results, and checks the bounds of
// SearchPart, the per-stream cache and its replacement by a new search.
func TestSearchPaging(t *testing.T) {
	t.Parallel()
	const n = 250
	srv := profileservertest.Start(t, unlimited, func(c *profileserver.Config) { c.RegexBudget = time.Nanosecond })
	h := profileservertest.ClientHost(t)
	ps := make([]*hostedProfile, n)
	thumbs := make(map[identity.ID][]byte)
	var all []identity.ID
	for i := range ps {
		p := &hostedProfile{key: newKey(t), profile: graph.Profile{Type: "pager", Name: fmt.Sprintf("p-%03d", i),
			Location: loc(t, float64(i%90), float64(i-125)), Sequence: 1}}
		if i%10 == 0 {
			p.thumb = smallJPEG(t, rgb(uint8(i), 1, 2))
			p.profile.ThumbnailHash = hashOf(p.thumb)
			thumbs[p.key.ID()] = p.thumb
		}
		ps[i] = p
		all = append(all, p.key.ID())
	}
	hostAll(t, srv, h, ps)
	slices.SortFunc(all, compareIDs)
	ctx := testCtx(t)
	c := srv.DialFrom(t, h)
	ids := func(ms []client.Match) []identity.ID {
		var out []identity.ID
		for _, m := range ms {
			out = append(out, m.Profile.ID())
		}
		return out
	}

	_, err := c.SearchPart(ctx, 0, 1)
	wantStatus(t, err, wirepb.Status_NOT_AVAILABLE, "")

	res, err := c.Search(ctx, client.Query{PageSize: 100, Limit: 1000})
	wantOK(t, err)
	if res.Total != n || len(res.Matches) != 100 {
		t.Fatalf("Search = total %d, %d matches; want %d, 100", res.Total, len(res.Matches), n)
	}
	got := ids(res.Matches)
	for _, part := range [][2]int{{100, 100}, {200, 50}} {
		ms, err := c.SearchPart(ctx, part[0], part[1])
		wantOK(t, err)
		if len(ms) != part[1] {
			t.Fatalf("SearchPart(%d, %d) = %d matches", part[0], part[1], len(ms))
		}
		got = append(got, ids(ms)...)
	}
	first := slices.Clone(got)
	slices.SortFunc(got, compareIDs)
	if diff := cmp.Diff(all, got); diff != "" {
		t.Errorf("paged results (-want +got):\n%s", diff)
	}
	// The cache is stable: a part fetched again is the same.
	ms, err := c.SearchPart(ctx, 50, 100)
	wantOK(t, err)
	if diff := cmp.Diff(first[50:150], ids(ms)); diff != "" {
		t.Errorf("SearchPart(50, 100) again (-want +got):\n%s", diff)
	}
	ms, err = c.SearchPart(ctx, 249, 1)
	wantOK(t, err)
	if len(ms) != 1 || ms[0].Profile.ID() != first[249] {
		t.Errorf("SearchPart(249, 1) = %v, want the last result", ids(ms))
	}

	for _, tt := range []struct {
		index, count int
		details      string
	}{
		{200, 51, "recordCount"},
		{0, 0, "recordCount"},
		{0, 1001, "recordCount"},
		{0, 251, "recordCount"},
		{250, 1, "recordIndex"},
		{1000, 1, "recordIndex"},
		{1 << 31, 1 << 31, "recordIndex"},
		{249, 1 << 31, "recordCount"},
	} {
		_, err := c.SearchPart(ctx, tt.index, tt.count)
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, tt.details)
	}

	t.Run("wire fields", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_Search{Search: &wirepb.ProfileSearchRequest{
			MaxResponseRecordCount: 30, MaxTotalRecordCount: 200, Latitude: graph.NoLocation, Longitude: graph.NoLocation}}})
		wantOK(t, err)
		r := resp.GetSearch()
		if r.TotalRecordCount != 200 || r.MaxResponseRecordCount != 30 || len(r.Profiles) != 30 || r.TimedOut {
			t.Errorf("Search = total %d, max response %d, %d profiles, timed out %v; want 200, 30, 30, false",
				r.TotalRecordCount, r.MaxResponseRecordCount, len(r.Profiles), r.TimedOut)
		}
		resp, err = c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_SearchPart{SearchPart: &wirepb.ProfileSearchPartRequest{
			RecordIndex: 190, RecordCount: 10}}})
		wantOK(t, err)
		if p := resp.GetSearchPart(); p.RecordIndex != 190 || p.RecordCount != 10 || len(p.Profiles) != 10 {
			t.Errorf("SearchPart = index %d, count %d, %d profiles; want 190, 10, 10", p.RecordIndex, p.RecordCount, len(p.Profiles))
		}
	})

	t.Run("cache is per stream", func(t *testing.T) {
		_, err := srv.DialFrom(t, h).SearchPart(ctx, 0, 1)
		wantStatus(t, err, wirepb.Status_NOT_AVAILABLE, "")
	})

	t.Run("total limit", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		res, err := c.SearchAll(ctx, client.Query{PageSize: 60, Limit: 150})
		wantOK(t, err)
		if res.Total != 150 || len(res.Matches) != 150 {
			t.Errorf("Search with limit 150 = total %d, %d matches; want 150", res.Total, len(res.Matches))
		}
		_, err = c.SearchPart(ctx, 150, 1)
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, "recordIndex")
	})

	t.Run("thumbnails", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		res, err := c.Search(ctx, client.Query{Thumbnails: true, PageSize: 100})
		wantOK(t, err)
		if res.Total != n || len(res.Matches) != 100 {
			t.Fatalf("Search with thumbnails = total %d, %d matches; want %d, 100", res.Total, len(res.Matches), n)
		}
		_, err = c.SearchPart(ctx, 100, 101)
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, "recordCount")
		ms := res.Matches
		for i := 100; i < n; i += 100 {
			more, err := c.SearchPart(ctx, i, min(100, n-i))
			wantOK(t, err)
			ms = append(ms, more...)
		}
		seen := 0
		for _, m := range ms {
			want := thumbs[m.Profile.ID()]
			if !bytes.Equal(m.Thumbnail, want) {
				t.Errorf("thumbnail of %s = %d B, want %d B", m.Profile.Profile.Name, len(m.Thumbnail), len(want))
			}
			if want != nil {
				seen++
			}
		}
		if seen != len(thumbs) {
			t.Errorf("saw %d thumbnails, want %d", seen, len(thumbs))
		}
	})

	t.Run("new search replaces the cache", func(t *testing.T) {
		c := srv.DialFrom(t, h)
		_, err := c.Search(ctx, client.Query{PageSize: 10})
		wantOK(t, err)
		res, err := c.Search(ctx, client.Query{Name: "p-00*", PageSize: 3})
		wantOK(t, err)
		if res.Total != 10 {
			t.Fatalf("Search(p-00*) total = %d, want 10", res.Total)
		}
		_, err = c.SearchPart(ctx, 100, 10)
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, "recordIndex")
		ms, err := c.SearchPart(ctx, 0, 10)
		wantOK(t, err)
		for _, m := range ms {
			if !strings.HasPrefix(m.Profile.Profile.Name, "p-00") {
				t.Errorf("SearchPart after a new search returned %q, want only p-00*", m.Profile.Profile.Name)
			}
		}
	})

	t.Run("regex budget runs out", func(t *testing.T) {
		// This server allows 1 ns of regex time per search.
		res, err := srv.DialFrom(t, h).Search(ctx, client.Query{Extra: ".*"})
		wantOK(t, err)
		if !res.TimedOut || res.Total >= n {
			t.Errorf("Search with an exhausted regex budget = timed out %v, total %d; want timed out, partial", res.TimedOut, res.Total)
		}
	})
}

// TestSearchCacheExpires checks that search results can be paged only for
// SearchCacheTTL.
func TestSearchCacheExpires(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.SearchCacheTTL = ttl })
	key := newKey(t)
	publish(t, srv.Customer(t, key, "person"), key, profileOf("person", "Tia", 1), nil, nil)
	c := srv.Dial(t)
	ctx := testCtx(t)
	start := time.Now()
	_, err := c.Search(ctx, client.Query{})
	wantOK(t, err)
	_, err = c.SearchPart(ctx, 0, 1)
	if time.Since(start) < ttl {
		wantOK(t, err)
	}
	waitUntil(t, callTimeout, "search cache expires", func() bool {
		_, err := c.SearchPart(ctx, 0, 1)
		return err != nil
	})
	_, err = c.SearchPart(ctx, 0, 1)
	wantStatus(t, err, wirepb.Status_NOT_AVAILABLE, "")
	if el := time.Since(start); el < ttl {
		t.Errorf("search cache expired after %v, want %v", el, ttl)
	}
}
