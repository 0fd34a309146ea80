package client

import (
	"encoding/hex"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
)

// ProfileView is the JSON form of a verified profile, as the CLI prints it.
type ProfileView struct {
	ID            identity.ID `json:"id"`
	PublicKey     string      `json:"public_key"`
	Type          string      `json:"type"`
	Name          string      `json:"name"`
	Location      *LatLon     `json:"location"`
	Extra         string      `json:"extra"`
	ImageHash     string      `json:"image_hash,omitempty"`
	ThumbnailHash string      `json:"thumbnail_hash,omitempty"`
	Sequence      uint64      `json:"sequence"`
	Timestamp     time.Time   `json:"timestamp"`
}

// LatLon is a location in degrees.
type LatLon struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// ViewOf returns the JSON view of a signed profile.
func ViewOf(sp *graph.SignedProfile) ProfileView {
	p := &sp.Profile
	v := ProfileView{
		ID: sp.ID(), PublicKey: hex.EncodeToString(p.PublicKey), Type: p.Type, Name: p.Name, Extra: p.Extra,
		ImageHash: hex.EncodeToString(p.ImageHash), ThumbnailHash: hex.EncodeToString(p.ThumbnailHash),
		Sequence: p.Sequence, Timestamp: p.Timestamp.UTC(),
	}
	if p.Location.IsSet() {
		v.Location = &LatLon{Lat: p.Location.LatDeg(), Lon: p.Location.LonDeg()}
	}
	return v
}
