package client

import (
	"context"
	"fmt"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// Query is a profile search. Empty fields do not filter.
type Query struct {
	Type       string          // wildcard: "chat/*", "*user", "*at*", exact
	Name       string          // wildcard, case-insensitive
	Near       *graph.Location // centre of the location filter
	Radius     uint32          // metres around Near
	Extra      string          // regular expression over extra data (restricted grammar)
	HostedOnly bool            // only profiles hosted by this server
	Thumbnails bool            // include thumbnails (smaller limits)
	PageSize   int             // results per response; default 100
	Limit      int             // results in total; default 1,000 (10,000 max, 1,000 with thumbnails)
}

// Match is one search result, verified.
type Match struct {
	Profile       *graph.SignedProfile
	Hosted        bool
	HostingServer identity.ID
	Online        bool
	Thumbnail     []byte
}

// SearchResult is the answer to a search.
type SearchResult struct {
	Total          int           // results the server holds for paging
	Matches        []Match       // the results fetched so far
	CoveredServers []identity.ID // servers whose profiles were searched
	TimedOut       bool          // the regex budget ran out; results are incomplete
}

func (q *Query) request() *wirepb.ProfileSearchRequest {
	page, limit := q.PageSize, q.Limit
	if limit == 0 {
		limit = 1000
	}
	if page == 0 {
		page = min(100, limit)
	}
	r := &wirepb.ProfileSearchRequest{
		IncludeHostedOnly:      q.HostedOnly,
		IncludeThumbnailImages: q.Thumbnails,
		MaxResponseRecordCount: uint32(page),
		MaxTotalRecordCount:    uint32(limit),
		Type:                   q.Type,
		Name:                   q.Name,
		Latitude:               graph.NoLocation,
		Longitude:              graph.NoLocation,
		ExtraData:              q.Extra,
	}
	if q.Near != nil && q.Near.IsSet() {
		r.Latitude, r.Longitude, r.Radius = q.Near.Lat, q.Near.Lon, q.Radius
	}
	return r
}

func matches(in []*wirepb.ProfileQueryInformation) ([]Match, error) {
	out := make([]Match, 0, len(in))
	for i, p := range in {
		sp, err := graph.OpenProto(p.SignedProfile, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: result %d: %v", ErrBadServer, i, err)
		}
		m := Match{Profile: sp, Hosted: p.IsHosted, Online: p.IsOnline}
		if hs, err := identity.IDFromBytes(p.HostingServerId); err == nil {
			m.HostingServer = hs
		}
		if len(p.ThumbnailImage) > 0 {
			if err := graph.CheckImage(graph.ThumbnailImage, p.ThumbnailImage, sp.Profile.ThumbnailHash); err != nil {
				return nil, fmt.Errorf("%w: result %d thumbnail: %v", ErrBadServer, i, err)
			}
			m.Thumbnail = p.ThumbnailImage
		}
		out = append(out, m)
	}
	return out, nil
}

// Search runs a search and returns its first page. Fetch more with
// SearchPart, or use SearchAll.
func (c *Conn) Search(ctx context.Context, q Query) (*SearchResult, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_Search{Search: q.request()}})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	r := resp.GetSearch()
	ms, err := matches(r.Profiles)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	res := &SearchResult{Total: int(r.TotalRecordCount), Matches: ms, TimedOut: r.TimedOut}
	for _, s := range r.CoveredServers {
		if id, err := identity.IDFromBytes(s); err == nil {
			res.CoveredServers = append(res.CoveredServers, id)
		}
	}
	return res, nil
}

// SearchPart fetches results [index, index+count) of the last search on
// this connection.
func (c *Conn) SearchPart(ctx context.Context, index, count int) ([]Match, error) {
	resp, err := c.Call(ctx, &wirepb.Request{Body: &wirepb.Request_SearchPart{SearchPart: &wirepb.ProfileSearchPartRequest{
		RecordIndex: uint32(index), RecordCount: uint32(count),
	}}})
	if err != nil {
		return nil, fmt.Errorf("search part: %w", err)
	}
	ms, err := matches(resp.GetSearchPart().GetProfiles())
	if err != nil {
		return nil, fmt.Errorf("search part: %w", err)
	}
	return ms, nil
}

// SearchAll runs a search and pages through all of its results.
func (c *Conn) SearchAll(ctx context.Context, q Query) (*SearchResult, error) {
	res, err := c.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	// A page may come back shorter than asked when an identity left the
	// server since the search, so paging follows the index, not the count.
	page := q.request().MaxResponseRecordCount
	for next := min(int(page), res.Total); next < res.Total; {
		n := min(int(page), res.Total-next)
		more, err := c.SearchPart(ctx, next, n)
		if err != nil {
			return nil, err
		}
		res.Matches = append(res.Matches, more...)
		next += n
	}
	return res, nil
}
