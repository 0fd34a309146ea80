package profileserver

import (
	"bytes"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/wire"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func (ss *session) stats(*wirepb.Request) (*wirepb.Response, error) {
	return &wirepb.Response{Body: &wirepb.Response_Stats{Stats: &wirepb.ProfileStatsResponse{Stats: ss.s.typeStats()}}}, nil
}

func (ss *session) getProfile(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetGetProfile()
	id, err := identity.IDFromBytes(r.IdentityId)
	if err != nil {
		return nil, wire.Invalid("identityNetworkId")
	}
	out := &wirepb.GetProfileResponse{}
	s.mu.Lock()
	h := s.ids[id]
	switch {
	case h == nil || s.expiredLocked(h, s.cfg.Now()):
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_NOT_FOUND, "identity %s is not hosted here", id)
	case !h.active():
		out.IsTargetServerKnown = len(h.rec.RedirectServerId) > 0
		out.TargetServerId = h.rec.RedirectServerId
		s.mu.Unlock()
		return &wirepb.Response{Body: &wirepb.Response_GetProfile{GetProfile: out}}, nil
	case h.profile == nil:
		s.mu.Unlock()
		return nil, wire.Errorf(wirepb.Status_UNINITIALIZED, "identity %s has not published a profile yet", id)
	}
	sp := h.profile
	out.IsHosted = true
	out.IsOnline = h.online != nil
	out.SignedProfile = sp.Proto()
	if r.IncludeApplicationServices && h.online != nil {
		out.ApplicationServices = append([]string(nil), h.online.services...)
	}
	s.mu.Unlock()
	if r.IncludeProfileImage && sp.Profile.ImageHash != nil {
		if out.ProfileImage, err = s.storedImage(id, graph.ProfileImage, sp.Profile.ImageHash); err != nil {
			return nil, err
		}
	}
	if r.IncludeThumbnailImage && sp.Profile.ThumbnailHash != nil {
		if out.ThumbnailImage, err = s.storedImage(id, graph.ThumbnailImage, sp.Profile.ThumbnailHash); err != nil {
			return nil, err
		}
	}
	return &wirepb.Response{Body: &wirepb.Response_GetProfile{GetProfile: out}}, nil
}

// storedImage reads an image and returns it only when it still matches the
// hash of the profile it is served with (a concurrent update may have
// replaced it).
func (s *Server) storedImage(id identity.ID, kind graph.ImageKind, hash []byte) ([]byte, error) {
	img, err := s.store.image(id, kind)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(graph.HashImage(img), hash) {
		return nil, nil
	}
	return img, nil
}

// searchCache holds one session's last search results for paging.
type searchCache struct {
	items   []resultItem
	thumbs  bool
	expires time.Time
}

type resultItem struct {
	id      identity.ID
	profile *graph.SignedProfile // hosted profiles; nil for shared ones
	source  identity.ID          // the neighbour that shares it
}

func (ss *session) search(req *wirepb.Request) (*wirepb.Response, error) {
	s := ss.s
	r := req.GetSearch()
	ss.cache = nil // a new search discards the previous results
	maxPage, maxTotal := uint32(MaxSearchPage), uint32(MaxSearchTotal)
	if r.IncludeThumbnailImages {
		maxPage, maxTotal = MaxSearchPageThumbs, MaxSearchTotalThumbs
	}
	if r.MaxResponseRecordCount < 1 || r.MaxResponseRecordCount > maxPage {
		return nil, wire.Invalid("maxResponseRecordCount")
	}
	if r.MaxTotalRecordCount < 1 || r.MaxTotalRecordCount > maxTotal || r.MaxTotalRecordCount < r.MaxResponseRecordCount {
		return nil, wire.Invalid("maxTotalRecordCount")
	}
	q := search.Query{
		Lat: graph.NoLocation, Lon: graph.NoLocation,
		HostedOnly:  r.IncludeHostedOnly,
		Max:         int(r.MaxTotalRecordCount),
		RegexBudget: s.cfg.RegexBudget,
	}
	var err error
	if len(r.Type) > MaxSearchTypeLen {
		return nil, wire.Invalid("type")
	}
	if q.Type, err = search.ParseWildcard(r.Type); err != nil {
		return nil, wire.Invalid("type")
	}
	if len(r.Name) > MaxSearchNameLen {
		return nil, wire.Invalid("name")
	}
	if q.Name, err = search.ParseWildcard(r.Name); err != nil {
		return nil, wire.Invalid("name")
	}
	if r.Latitude != graph.NoLocation || r.Longitude != graph.NoLocation {
		loc := graph.Location{Lat: r.Latitude, Lon: r.Longitude}
		if err := graph.CheckLocation(loc); err != nil {
			return nil, wire.Invalid(err.(*graph.FieldError).Field)
		}
		q.Lat, q.Lon, q.Radius = loc.Lat, loc.Lon, r.Radius
	} else if r.Radius != 0 {
		return nil, wire.Invalid("radius")
	}
	if r.ExtraData != "" {
		if len(r.ExtraData) > MaxSearchRegexLen {
			return nil, wire.Invalid("extraData")
		}
		if q.Extra, err = search.CompileRegex(r.ExtraData); err != nil {
			return nil, wire.Invalid("extraData")
		}
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	res, err := s.index.Search(ctx, q)
	if err != nil {
		return nil, wire.Errorf(wirepb.Status_BUSY, "search did not finish in time: narrow the query")
	}
	items := make([]resultItem, 0, len(res.IDs))
	s.mu.Lock()
	for i, raw := range res.IDs {
		id := identity.ID(raw)
		if res.Sources[i] != 0 {
			if nb, ok := s.sources[res.Sources[i]]; ok {
				items = append(items, resultItem{id: id, source: nb})
			}
			continue
		}
		if h := s.ids[id]; h != nil && h.profile != nil && h.active() {
			items = append(items, resultItem{id: id, profile: h.profile})
		}
	}
	covered := s.coveredLocked()
	s.mu.Unlock()
	ss.cache = &searchCache{items: items, thumbs: r.IncludeThumbnailImages, expires: time.Now().Add(s.cfg.SearchCacheTTL)}
	n := min(len(items), int(r.MaxResponseRecordCount))
	page, err := ss.page(0, n)
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_Search{Search: &wirepb.ProfileSearchResponse{
		TotalRecordCount:       uint32(len(items)),
		MaxResponseRecordCount: r.MaxResponseRecordCount,
		CoveredServers:         covered,
		Profiles:               page,
		TimedOut:               res.TimedOut,
	}}}, nil
}

// page builds the wire form of cached results [from, from+n). Hosted
// profiles cancelled since the search and shared profiles dropped since are
// left out, so a page may be shorter than asked.
func (ss *session) page(from, n int) ([]*wirepb.ProfileQueryInformation, error) {
	s := ss.s
	c := ss.cache
	out := make([]*wirepb.ProfileQueryInformation, 0, n)
	var thumbs []resultItem
	for _, it := range c.items[from : from+n] {
		if it.profile == nil {
			sp, err := s.sharedProfile(it.source, it.id)
			if err != nil {
				return nil, err
			}
			if sp == nil {
				continue
			}
			q := &wirepb.ProfileQueryInformation{HostingServerId: append([]byte(nil), it.source[:]...), SignedProfile: sp.Profile}
			if c.thumbs {
				q.ThumbnailImage = sp.ThumbnailImage
			}
			out = append(out, q)
			continue
		}
		s.mu.Lock()
		h := s.ids[it.id]
		ok := h != nil && h.active()
		online := ok && h.online != nil
		s.mu.Unlock()
		if !ok {
			continue
		}
		out = append(out, &wirepb.ProfileQueryInformation{
			IsHosted:        true,
			HostingServerId: s.id[:],
			IsOnline:        online,
			SignedProfile:   it.profile.Proto(),
		})
		if c.thumbs {
			thumbs = append(thumbs, it)
		}
	}
	// Thumbnails of hosted profiles are read after the lock is released.
	j := 0
	for i := range out {
		if !out[i].IsHosted || !c.thumbs {
			continue
		}
		it := thumbs[j]
		j++
		if h := it.profile.Profile.ThumbnailHash; h != nil {
			img, err := s.storedImage(it.id, graph.ThumbnailImage, h)
			if err != nil {
				return nil, err
			}
			out[i].ThumbnailImage = img
		}
	}
	return out, nil
}

func (ss *session) searchPart(req *wirepb.Request) (*wirepb.Response, error) {
	r := req.GetSearchPart()
	c := ss.cache
	if c == nil || time.Now().After(c.expires) {
		ss.cache = nil
		return nil, wire.Errorf(wirepb.Status_NOT_AVAILABLE, "no search results to page: search again")
	}
	maxPage := uint32(MaxSearchPage)
	if c.thumbs {
		maxPage = MaxSearchPageThumbs
	}
	total := uint32(len(c.items))
	if r.RecordIndex >= total {
		return nil, wire.Invalid("recordIndex")
	}
	if r.RecordCount < 1 || r.RecordCount > maxPage || uint64(r.RecordIndex)+uint64(r.RecordCount) > uint64(total) {
		return nil, wire.Invalid("recordCount")
	}
	page, err := ss.page(int(r.RecordIndex), int(r.RecordCount))
	if err != nil {
		return nil, err
	}
	return &wirepb.Response{Body: &wirepb.Response_SearchPart{SearchPart: &wirepb.ProfileSearchPartResponse{
		RecordIndex: r.RecordIndex, RecordCount: r.RecordCount, Profiles: page,
	}}}, nil
}
