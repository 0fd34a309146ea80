package profileserver_test

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

// TestProfileInitialization checks that the first update initializes a
// registered identity: before it the identity answers UNINITIALIZED and is
// not found by search, though it counts in the statistics.
func TestProfileInitialization(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	observer := srv.Dial(t)
	ctx := testCtx(t)

	_, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_UNINITIALIZED, "")
	res, err := observer.Search(ctx, client.Query{Type: "person"})
	wantOK(t, err)
	if res.Total != 0 {
		t.Errorf("Search before the first update found %d profiles, want 0", res.Total)
	}
	stats, err := observer.Stats(ctx)
	wantOK(t, err)
	if stats["person"] != 1 {
		t.Errorf("Stats before the first update = %v, want person: 1", stats)
	}

	// The first update may not skip propagation.
	err = c.UpdateProfile(ctx, sign(t, key, profileOf("person", "Nora", 1)), nil, nil, true)
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "noPropagation")
	_, err = observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_UNINITIALIZED, "")

	p := profileOf("person", "Nora", 1)
	p.Location = graph.Location{Lat: 50087000, Lon: 14421000}
	p.Extra = "lang=cs"
	sp := publish(t, c, key, p, nil, nil)
	info, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantOK(t, err)
	if !info.Hosted || !info.Online || !bytes.Equal(info.Profile.Raw, sp.Raw) || !bytes.Equal(info.Profile.Signature, sp.Signature) {
		t.Errorf("GetProfile after the first update = %+v, want the signed profile, hosted and online", info)
	}
	res, err = observer.Search(ctx, client.Query{Type: "person"})
	wantOK(t, err)
	if res.Total != 1 || res.Matches[0].Profile.ID() != key.ID() || !res.Matches[0].Online {
		t.Errorf("Search after the first update = %+v, want the profile, online", res)
	}

	// Later updates may skip propagation, and replace the searchable fields.
	p.Name, p.Sequence = "Nora K.", 2
	wantOK(t, c.UpdateProfile(ctx, sign(t, key, p), nil, nil, true))
	for name, want := range map[string]int{"nora": 0, "nora k.": 1} {
		res, err := observer.Search(ctx, client.Query{Name: name})
		wantOK(t, err)
		if res.Total != want {
			t.Errorf("Search(name %q) after a rename found %d, want %d", name, res.Total, want)
		}
	}
}

func TestGetProfileErrors(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	c := srv.Dial(t)
	_, err := c.GetProfile(testCtx(t), newKey(t).ID(), client.GetOptions{})
	wantStatus(t, err, wirepb.Status_NOT_FOUND, "")
	for _, n := range []int{0, 31, 33} {
		_, err := c.Call(testCtx(t), getProfileReq(randBytes(n)))
		wantStatus(t, err, wirepb.Status_INVALID_VALUE, "identityNetworkId")
	}
}

// TestUpdateProfileInvalid sends updates that break one rule each. Every
// one is refused with the field it breaks, and leaves the stored profile,
// images and search index as they were.
func TestUpdateProfileInvalid(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) { c.UpdateRate = rate.Inf })
	key, stranger := newKey(t), newKey(t)
	c := srv.Customer(t, key, "person")
	observer := srv.Dial(t)
	ctx := testCtx(t)

	img := solidPNG(t, 16, rgb(0, 120, 0))
	thumb := smallJPEG(t, rgb(0, 120, 0))
	base := profileOf("person", "Paula", 10)
	base.Location = graph.Location{Lat: 48856000, Lon: 2352000}
	base.Extra = "lang=fr"
	base.ImageHash, base.ThumbnailHash = hashOf(img), hashOf(thumb)
	prev := publish(t, c, key, base, img, thumb)

	other := solidPNG(t, 16, rgb(1, 2, 3))
	bigImage := noisePNG(t, 80) // over 20 KiB
	bigThumb := noisePNG(t, 40) // over 5 KiB, under 20 KiB
	if len(bigImage) <= graph.MaxImageSize || len(bigThumb) <= graph.MaxThumbnailSize || len(bigThumb) > graph.MaxImageSize {
		t.Fatalf("test images are %d and %d bytes", len(bigImage), len(bigThumb))
	}
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")

	// valid is the wire form of the next valid update, to corrupt.
	valid := func() *wirepb.ProfileInformation {
		pi := infoOf(key, "person", "Paula", 11)
		pi.Latitude, pi.Longitude, pi.ExtraData = base.Location.Lat, base.Location.Lon, base.Extra
		pi.ProfileImageHash, pi.ThumbnailImageHash = base.ImageHash, base.ThumbnailHash
		return pi
	}
	type update struct {
		sp            *wirepb.SignedProfile
		img, thumb    []byte
		noPropagation bool
	}
	edit := func(f func(pi *wirepb.ProfileInformation)) func() update {
		return func() update {
			pi := valid()
			f(pi)
			return update{sp: signInfo(t, key, pi)}
		}
	}
	withImages := func(f func(pi *wirepb.ProfileInformation), img, thumb []byte) func() update {
		return func() update {
			u := edit(f)()
			u.img, u.thumb = img, thumb
			return u
		}
	}
	tests := []struct {
		name    string
		update  func() update
		status  wirepb.Status
		details string
	}{
		{"version 0.0.0", edit(func(pi *wirepb.ProfileInformation) { pi.Version = []byte{0, 0, 0} }), wirepb.Status_INVALID_VALUE, "profile.version"},
		{"version 2.0.0", edit(func(pi *wirepb.ProfileInformation) { pi.Version = []byte{2, 0, 0} }), wirepb.Status_INVALID_VALUE, "profile.version"},
		{"version of 2 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.Version = []byte{1, 0} }), wirepb.Status_INVALID_VALUE, "profile.version"},
		{"no version", edit(func(pi *wirepb.ProfileInformation) { pi.Version = nil }), wirepb.Status_INVALID_VALUE, "profile.version"},
		{"public key of another identity", edit(func(pi *wirepb.ProfileInformation) { pi.PublicKey = stranger.Public() }), wirepb.Status_INVALID_VALUE, "profile.publicKey"},
		{"public key of 31 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.PublicKey = pi.PublicKey[:31] }), wirepb.Status_INVALID_VALUE, "profile.publicKey"},
		{"type other than registered", edit(func(pi *wirepb.ProfileInformation) { pi.Type = "bot" }), wirepb.Status_INVALID_VALUE, "profile.type"},
		{"type in other case", edit(func(pi *wirepb.ProfileInformation) { pi.Type = "Person" }), wirepb.Status_INVALID_VALUE, "profile.type"},
		{"empty type", edit(func(pi *wirepb.ProfileInformation) { pi.Type = "" }), wirepb.Status_INVALID_VALUE, "profile.type"},
		{"type with a star", edit(func(pi *wirepb.ProfileInformation) { pi.Type = "person*" }), wirepb.Status_INVALID_VALUE, "profile.type"},
		{"type of 65 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.Type = strings.Repeat("p", 65) }), wirepb.Status_INVALID_VALUE, "profile.type"},
		{"empty name", edit(func(pi *wirepb.ProfileInformation) { pi.Name = "" }), wirepb.Status_INVALID_VALUE, "profile.name"},
		{"name of 65 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.Name = strings.Repeat("n", 65) }), wirepb.Status_INVALID_VALUE, "profile.name"},
		{"name of 33 two-byte runes", edit(func(pi *wirepb.ProfileInformation) { pi.Name = strings.Repeat("é", 33) }), wirepb.Status_INVALID_VALUE, "profile.name"},
		{"latitude over 90", edit(func(pi *wirepb.ProfileInformation) { pi.Latitude = 90000001 }), wirepb.Status_INVALID_VALUE, "profile.latitude"},
		{"latitude under -90", edit(func(pi *wirepb.ProfileInformation) { pi.Latitude = -90000001 }), wirepb.Status_INVALID_VALUE, "profile.latitude"},
		{"latitude missing", edit(func(pi *wirepb.ProfileInformation) { pi.Latitude = graph.NoLocation }), wirepb.Status_INVALID_VALUE, "profile.latitude"},
		{"longitude over 180", edit(func(pi *wirepb.ProfileInformation) { pi.Longitude = 180000001 }), wirepb.Status_INVALID_VALUE, "profile.longitude"},
		{"longitude -180", edit(func(pi *wirepb.ProfileInformation) { pi.Longitude = -180000000 }), wirepb.Status_INVALID_VALUE, "profile.longitude"},
		{"longitude missing", edit(func(pi *wirepb.ProfileInformation) { pi.Longitude = graph.NoLocation }), wirepb.Status_INVALID_VALUE, "profile.longitude"},
		{"extra data of 201 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.ExtraData = strings.Repeat("x", 201) }), wirepb.Status_INVALID_VALUE, "profile.extraData"},
		{"image hash of 31 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = pi.ProfileImageHash[:31] }), wirepb.Status_INVALID_VALUE, "profile.profileImageHash"},
		{"thumbnail hash of 33 bytes", edit(func(pi *wirepb.ProfileInformation) { pi.ThumbnailImageHash = append(pi.ThumbnailImageHash, 0) }), wirepb.Status_INVALID_VALUE, "profile.thumbnailImageHash"},
		{"sequence 0", edit(func(pi *wirepb.ProfileInformation) { pi.Sequence = 0 }), wirepb.Status_INVALID_VALUE, "profile.sequence"},
		{"sequence not increasing", edit(func(pi *wirepb.ProfileInformation) { pi.Sequence = 10 }), wirepb.Status_INVALID_VALUE, "profile.sequence"},
		{"sequence decreasing", edit(func(pi *wirepb.ProfileInformation) { pi.Sequence = 9 }), wirepb.Status_INVALID_VALUE, "profile.sequence"},
		{"undecodable profile", func() update {
			raw := []byte{0xff, 0xff}
			return update{sp: &wirepb.SignedProfile{Profile: raw, Signature: key.Sign(identity.DomainProfile, raw)}}
		}, wirepb.Status_INVALID_VALUE, "profile"},
		{"name not UTF-8", func() update {
			// proto3 strings must be UTF-8: the record does not decode.
			b := marshal(t, valid())
			b = protowire.AppendString(protowire.AppendTag(b, 4, protowire.BytesType), "Pa\xffula")
			return update{sp: &wirepb.SignedProfile{Profile: b, Signature: key.Sign(identity.DomainProfile, b)}}
		}, wirepb.Status_INVALID_VALUE, "profile"},
		{"no profile", func() update { return update{} }, wirepb.Status_INVALID_VALUE, "profile"},
		{"new image hash without the image", edit(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = hashOf(other) }), wirepb.Status_INVALID_VALUE, "profileImage"},
		{"image that does not match the hash", withImages(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = hashOf(other) }, img, nil), wirepb.Status_INVALID_VALUE, "profileImage"},
		{"image without a hash", withImages(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = nil }, other, nil), wirepb.Status_INVALID_VALUE, "profileImage"},
		{"image not PNG or JPEG", withImages(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = hashOf(gif) }, gif, nil), wirepb.Status_INVALID_VALUE, "profileImage"},
		{"image over 20 KiB", withImages(func(pi *wirepb.ProfileInformation) { pi.ProfileImageHash = hashOf(bigImage) }, bigImage, nil), wirepb.Status_INVALID_VALUE, "profileImage"},
		{"thumbnail over 5 KiB", withImages(func(pi *wirepb.ProfileInformation) { pi.ThumbnailImageHash = hashOf(bigThumb) }, nil, bigThumb), wirepb.Status_INVALID_VALUE, "thumbnailImage"},
		{"thumbnail that does not match the hash", withImages(func(pi *wirepb.ProfileInformation) { pi.ThumbnailImageHash = hashOf(other) }, nil, thumb), wirepb.Status_INVALID_VALUE, "thumbnailImage"},
		{"thumbnail not PNG or JPEG", withImages(func(pi *wirepb.ProfileInformation) { pi.ThumbnailImageHash = hashOf(gif) }, nil, gif), wirepb.Status_INVALID_VALUE, "thumbnailImage"},
		// A valid image does not excuse an invalid thumbnail.
		{"new image with a bad thumbnail", withImages(func(pi *wirepb.ProfileInformation) {
			pi.ProfileImageHash, pi.ThumbnailImageHash = hashOf(other), hashOf(gif)
		}, other, gif), wirepb.Status_INVALID_VALUE, "thumbnailImage"},
		// Signatures: the profile must be signed by the checked-in identity.
		{"signed by another key", func() update { return update{sp: signInfo(t, stranger, valid())} }, wirepb.Status_INVALID_SIGNATURE, ""},
		{"another identity's own profile", func() update {
			return update{sp: signInfo(t, stranger, infoOf(stranger, "person", "Paula", 11))}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"signed in another domain", func() update {
			sp := signInfo(t, key, valid())
			sp.Signature = key.Sign(identity.DomainHostingContract, sp.Profile)
			return update{sp: sp}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"signature of other bytes", func() update {
			sp := signInfo(t, key, valid())
			sp.Signature = signInfo(t, key, infoOf(key, "person", "Eve", 11)).Signature
			return update{sp: sp}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
		{"no signature", func() update {
			sp := signInfo(t, key, valid())
			sp.Signature = nil
			return update{sp: sp}
		}, wirepb.Status_INVALID_SIGNATURE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.update()
			_, err := c.Call(ctx, updateReq(u.sp, u.img, u.thumb, u.noPropagation))
			wantStatus(t, err, tt.status, tt.details)
			wantUnchanged(t, observer, key.ID(), prev, img, thumb)
		})
	}
	res, err := observer.Search(ctx, client.Query{Name: "paula"})
	wantOK(t, err)
	if res.Total != 1 || !bytes.Equal(res.Matches[0].Profile.Raw, prev.Raw) {
		t.Errorf("Search after refused updates = %+v, want only the first profile", res)
	}

	// The stream is still checked in: the valid update goes through.
	next := signInfo(t, key, valid())
	_, err = c.Call(ctx, updateReq(next, nil, nil, false))
	wantOK(t, err)
}

// wantUnchanged checks that GetProfile returns prev with exactly these
// images.
func wantUnchanged(t testing.TB, c *client.Conn, id identity.ID, prev *graph.SignedProfile, img, thumb []byte) {
	t.Helper()
	info, err := c.GetProfile(testCtx(t), id, client.GetOptions{Image: true, Thumbnail: true})
	wantOK(t, err)
	if !bytes.Equal(info.Profile.Raw, prev.Raw) || !bytes.Equal(info.Image, img) || !bytes.Equal(info.Thumbnail, thumb) {
		t.Errorf("GetProfile = %q (image %d B, thumbnail %d B), want %q (%d B, %d B)",
			info.Profile.Profile.Name, len(info.Image), len(info.Thumbnail), prev.Profile.Name, len(img), len(thumb))
	}
}

// TestUpdateProfileValidLimits checks values at the limits are accepted.
func TestUpdateProfileValidLimits(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, strings.Repeat("t", graph.MaxTypeLen))
	tests := []struct {
		name string
		edit func(p *graph.Profile)
	}{
		{"name of 64 bytes", func(p *graph.Profile) { p.Name = strings.Repeat("é", 32) }},
		{"extra data of 200 bytes", func(p *graph.Profile) { p.Extra = strings.Repeat("x", graph.MaxExtraLen) }},
		{"north pole", func(p *graph.Profile) { p.Location = graph.Location{Lat: 90000000, Lon: 0} }},
		{"south pole, longitude 180", func(p *graph.Profile) { p.Location = graph.Location{Lat: -90000000, Lon: 180000000} }},
		{"longitude -179.999999", func(p *graph.Profile) { p.Location = graph.Location{Lat: 0, Lon: -179999999} }},
		{"sequence jump", func(p *graph.Profile) { p.Sequence += 1000 }},
	}
	seq := uint64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq++
			p := profileOf(strings.Repeat("t", graph.MaxTypeLen), "Max", seq)
			tt.edit(&p)
			seq = p.Sequence
			publish(t, c, key, p, nil, nil)
		})
	}
}

// TestProfileImages checks that images round-trip, are only sent when
// asked for, survive updates that omit them, and can be replaced and
// erased.
func TestProfileImages(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	observer := srv.Dial(t)
	ctx := testCtx(t)
	img := solidPNG(t, 32, rgb(10, 20, 30))
	thumb := smallJPEG(t, rgb(10, 20, 30))
	// The largest images allowed: PNGs padded to the limits.
	maxImg := padTo(solidPNG(t, 8, rgb(1, 1, 1)), graph.MaxImageSize)
	maxThumb := padTo(solidPNG(t, 8, rgb(2, 2, 2)), graph.MaxThumbnailSize)

	get := func(opt client.GetOptions) *client.ProfileInfo {
		t.Helper()
		info, err := observer.GetProfile(ctx, key.ID(), opt)
		wantOK(t, err)
		return info
	}
	both := client.GetOptions{Image: true, Thumbnail: true}
	check := func(step string, wantImg, wantThumb []byte) {
		t.Helper()
		info := get(both)
		if !bytes.Equal(info.Image, wantImg) || !bytes.Equal(info.Thumbnail, wantThumb) {
			t.Errorf("%s: GetProfile images = %d B, %d B; want %d B, %d B", step, len(info.Image), len(info.Thumbnail), len(wantImg), len(wantThumb))
		}
	}

	p := profileOf("person", "Ivo", 1)
	p.ImageHash, p.ThumbnailHash = hashOf(img), hashOf(thumb)
	publish(t, c, key, p, img, thumb)
	check("first update", img, thumb)
	for _, opt := range []client.GetOptions{{}, {Image: true}, {Thumbnail: true}} {
		info := get(opt)
		if (info.Image != nil) != opt.Image || (info.Thumbnail != nil) != opt.Thumbnail {
			t.Errorf("GetProfile(%+v) = image %d B, thumbnail %d B; want only what was asked for", opt, len(info.Image), len(info.Thumbnail))
		}
	}

	p.Sequence, p.Name = 2, "Ivo V."
	publish(t, c, key, p, nil, nil)
	check("update without images", img, thumb)

	p.Sequence, p.ImageHash = 3, nil
	publish(t, c, key, p, nil, nil)
	check("image erased", nil, thumb)

	p.Sequence, p.ImageHash, p.ThumbnailHash = 4, hashOf(maxImg), hashOf(maxThumb)
	publish(t, c, key, p, maxImg, maxThumb)
	check("largest images", maxImg, maxThumb)

	// An unchanged image may also be sent again.
	p.Sequence = 5
	publish(t, c, key, p, maxImg, nil)
	check("image sent again", maxImg, maxThumb)

	p.Sequence, p.ImageHash, p.ThumbnailHash = 6, nil, nil
	publish(t, c, key, p, nil, nil)
	check("both erased", nil, nil)
}

// TestProfileSurvivesRestart restarts the server on its data and checks
// the profile, its images and its sequence.
func TestProfileSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	img := solidPNG(t, 16, rgb(50, 50, 200))
	thumb := smallJPEG(t, rgb(50, 50, 200))
	p := profileOf("person", "Rosa", 7)
	p.Location = graph.Location{Lat: -33868800, Lon: 151209300}
	p.Extra = "city=sydney"
	p.ImageHash, p.ThumbnailHash = hashOf(img), hashOf(thumb)
	sp := publish(t, c, key, p, img, thumb)

	srv.Stop()
	srv = profileservertest.StartWith(t, srv.Key, srv.Dir)
	observer := srv.Dial(t)
	wantUnchanged(t, observer, key.ID(), sp, img, thumb)
	res, err := observer.Search(testCtx(t), client.Query{Extra: "sydney", Near: &p.Location, Radius: 1000})
	wantOK(t, err)
	if res.Total != 1 || res.Matches[0].Online {
		t.Errorf("Search after restart = %+v, want the profile, offline", res)
	}

	// The stored sequence still guards updates.
	c = srv.Dial(t)
	wantOK(t, c.StartConversation(testCtx(t), key))
	wantOK(t, c.CheckIn(testCtx(t)))
	err = c.UpdateProfile(testCtx(t), sign(t, key, p), nil, nil, false)
	wantStatus(t, err, wirepb.Status_INVALID_VALUE, "profile.sequence")
	p.Sequence = 8
	sp = publish(t, c, key, p, nil, nil)
	wantUnchanged(t, observer, key.ID(), sp, img, thumb) // the images carried over
}

// TestUpdateRateLimit checks the per-identity update rate.
func TestUpdateRateLimit(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t, func(c *profileserver.Config) {
		c.UpdateRate = 1e-6
		c.UpdateBurst = 2
	})
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Uma", 1), nil, nil)
	publish(t, c, key, profileOf("person", "Uma", 2), nil, nil)
	err := c.UpdateProfile(testCtx(t), sign(t, key, profileOf("person", "Uma", 3)), nil, nil, false)
	wantStatus(t, err, wirepb.Status_BUSY, "")
	info, err := srv.Dial(t).GetProfile(testCtx(t), key.ID(), client.GetOptions{})
	wantOK(t, err)
	if info.Profile.Profile.Sequence != 2 {
		t.Errorf("sequence after a refused update = %d, want 2", info.Profile.Profile.Sequence)
	}
}

// padTo appends zero bytes to b up to n bytes.
func padTo(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
