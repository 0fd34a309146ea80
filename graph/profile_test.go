package graph

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func newKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func validProfile() Profile {
	return Profile{Type: "chat/user", Name: "Ada", Location: Location{Lat: 51500000, Lon: -120000}, Extra: "lang=en", Sequence: 1}
}

func TestSignOpenRoundTrip(t *testing.T) {
	k := newKey(t)
	p := validProfile()
	p.ImageHash = bytes.Repeat([]byte{1}, 32)
	sp, err := Sign(k, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range [][]byte{nil, k.Public()} {
		got, err := Open(sp.Raw, sp.Signature, owner)
		if err != nil {
			t.Fatalf("Open(owner=%x) = %v", owner, err)
		}
		if got.ID() != k.ID() || got.Profile.Name != "Ada" || got.Profile.Location != p.Location ||
			!bytes.Equal(got.Profile.ImageHash, p.ImageHash) || got.Profile.Sequence != 1 ||
			!got.Profile.Timestamp.Equal(sp.Profile.Timestamp) {
			t.Errorf("Open = %+v, want %+v", got.Profile, sp.Profile)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	k, other := newKey(t), newKey(t)
	sp, err := Sign(k, validProfile())
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), sp.Raw...)
	tampered[len(tampered)-1] ^= 1
	otherSig := other.Sign(identity.DomainProfile, sp.Raw)
	wrongDomain := k.Sign(identity.DomainChallenge, sp.Raw)
	tests := []struct {
		name      string
		raw, sig  []byte
		owner     []byte
		wantSig   bool
		wantField string
	}{
		{"tampered", tampered, sp.Signature, nil, true, ""},
		{"tampered with owner", tampered, sp.Signature, k.Public(), true, ""},
		{"other signer", sp.Raw, otherSig, nil, true, ""},
		{"other owner", sp.Raw, otherSig, other.Public(), false, "publicKey"},
		{"wrong domain", sp.Raw, wrongDomain, nil, true, ""},
		{"garbage", []byte{0xff, 0xff}, sp.Signature, nil, false, "profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.raw, tt.sig, tt.owner)
			if tt.wantSig {
				if !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("Open = %v, want ErrInvalidSignature", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("Open = %v, want field error %q", err, tt.wantField)
			}
		})
	}
}

// TestValidateFields checks that every limit names its field.
func TestValidateFields(t *testing.T) {
	tests := []struct {
		field  string
		change func(p *Profile)
	}{
		{"version", func(p *Profile) { p.Version = [3]byte{} }},
		{"version", func(p *Profile) { p.Version = [3]byte{2, 0, 0} }},
		{"publicKey", func(p *Profile) { p.PublicKey = p.PublicKey[:31] }},
		{"type", func(p *Profile) { p.Type = "" }},
		{"type", func(p *Profile) { p.Type = strings.Repeat("t", 65) }},
		{"type", func(p *Profile) { p.Type = "chat/*" }},
		{"name", func(p *Profile) { p.Name = "" }},
		{"name", func(p *Profile) { p.Name = strings.Repeat("n", 65) }},
		{"name", func(p *Profile) { p.Name = "\xff" }},
		{"latitude", func(p *Profile) { p.Location.Lat = 90000001 }},
		{"longitude", func(p *Profile) { p.Location.Lon = -180000000 }},
		{"longitude", func(p *Profile) { p.Location.Lon = NoLocation }},
		{"latitude", func(p *Profile) { p.Location.Lat = NoLocation }},
		{"extraData", func(p *Profile) { p.Extra = strings.Repeat("e", 201) }},
		{"profileImageHash", func(p *Profile) { p.ImageHash = []byte{1} }},
		{"thumbnailImageHash", func(p *Profile) { p.ThumbnailHash = make([]byte, 33) }},
		{"sequence", func(p *Profile) { p.Sequence = 0 }},
	}
	k := newKey(t)
	for _, tt := range tests {
		p := validProfile()
		p.Version, p.PublicKey = Version, k.Public()
		tt.change(&p)
		err := p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate after changing %s = %v, want a %q field error", tt.field, err, tt.field)
		}
	}
	p := validProfile()
	p.Version, p.PublicKey = Version, k.Public()
	p.Name, p.Type, p.Extra = strings.Repeat("n", 64), strings.Repeat("t", 64), strings.Repeat("e", 200)
	p.Location = Nowhere
	if err := p.Validate(); err != nil {
		t.Errorf("Validate at the limits = %v", err)
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in      string
		want    Location
		wantErr bool
	}{
		{"51.50,-0.12", Location{51500000, -120000}, false},
		{" -33.9 , 18.4 ", Location{-33900000, 18400000}, false},
		{"-90,-180", Location{-90000000, 180000000}, false},
		{"", Nowhere, false},
		{"none", Nowhere, false},
		{"91,0", Location{}, true},
		{"0,181", Location{}, true},
		{"abc", Location{}, true},
		{"1,NaN", Location{}, true},
	}
	for _, tt := range tests {
		got, err := ParseLocation(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseLocation(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDistance(t *testing.T) {
	london, paris := Location{51507400, -127800}, Location{48856600, 2352200}
	if d := Distance(london, paris); math.Abs(d-343500) > 1500 {
		t.Errorf("Distance(London, Paris) = %.0f m, want about 343,500", d)
	}
	a, b := Location{0, 179999999}, Location{0, -179999999}
	if d := Distance(a, b); d > 1 {
		t.Errorf("Distance across the antimeridian = %.3f m, want < 1", d)
	}
	if d := Distance(Location{90000000, 0}, Location{90000000, 120000000}); d > 1e-6 {
		t.Errorf("Distance between two longitudes at the pole = %v, want 0", d)
	}
}

func TestCheckImage(t *testing.T) {
	png := append([]byte("\x89PNG\r\n\x1a\n"), 1, 2, 3)
	sum := sha256.Sum256(png)
	if err := CheckImage(ProfileImage, png, sum[:]); err != nil {
		t.Errorf("CheckImage(valid) = %v", err)
	}
	if err := CheckImage(ProfileImage, []byte("GIF89a"), HashImage([]byte("GIF89a"))); err == nil {
		t.Error("CheckImage accepted a GIF")
	}
	if err := CheckImage(ProfileImage, png, make([]byte, 32)); err == nil {
		t.Error("CheckImage accepted a wrong hash")
	}
	big := append(append([]byte(nil), png...), make([]byte, MaxThumbnailSize)...)
	if err := CheckImage(ThumbnailImage, big, HashImage(big)); err == nil {
		t.Error("CheckImage accepted an oversized thumbnail")
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := identity.GenerateKey(nil)
	sp, _ := Sign(k, validProfile())
	f.Add(sp.Raw, sp.Signature)
	raw, _ := proto.Marshal(&wirepb.ProfileInformation{Version: []byte{1, 0, 0}, Name: "x"})
	f.Add(raw, []byte{})
	f.Fuzz(func(t *testing.T, raw, sig []byte) {
		got, err := Open(raw, sig, nil)
		if err != nil {
			return
		}
		if err := got.Profile.Validate(); err != nil {
			t.Fatalf("Open accepted an invalid profile: %v", err)
		}
		if identity.Verify(got.Profile.PublicKey, identity.DomainProfile, raw, sig) != nil {
			t.Fatal("Open accepted a bad signature")
		}
	})
}
