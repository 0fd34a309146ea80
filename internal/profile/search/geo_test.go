package search

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDistance(t *testing.T) {
	tests := []struct {
		lat1, lon1, lat2, lon2 int32
		want                   float64 // metres
		tol                    float64
	}{
		{0, 0, 0, 0, 0, 0},
		{0, 0, 0, 1_000_000, EarthRadius * math.Pi / 180, 1e-6},
		{0, 179_999_999, 0, -179_999_999, EarthRadius * 2e-6 * math.Pi / 180, 1e-6},
		{90_000_000, 0, -90_000_000, 0, EarthRadius * math.Pi, 1e-3},
		{90_000_000, 0, 90_000_000, 123_000_000, 0, 1e-6},
		{50_087_000, 14_421_000, 48_208_000, 16_373_000, 252_000, 1500}, // Prague–Vienna
	}
	for _, tt := range tests {
		if got := Distance(tt.lat1, tt.lon1, tt.lat2, tt.lon2); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("Distance(%d,%d,%d,%d) = %f, want %f", tt.lat1, tt.lon1, tt.lat2, tt.lon2, got, tt.want)
		}
	}
}

// TestCircleBoxContains checks that the bounding box contains every point
// that the exact check accepts, around the antimeridian and the poles.
func TestCircleBoxContains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	centres := [][2]int32{{0, 180_000_000}, {0, -179_999_999}, {89_999_000, 0}, {-89_500_000, 100_000_000}, {60_000_000, 179_000_000}, {10_000_000, 10_000_000}}
	for _, c := range centres {
		for _, radius := range []uint32{0, 10, 1000, 50_000, 500_000, 3_000_000, 10_000_000, 20_015_000, 30_000_000} {
			cen := newCenter(c[0], c[1])
			b := circleBox(c[0], c[1], radius)
			for range 3000 {
				// Points near the box edge and anywhere.
				lat := int32(r.IntN(180_000_001) - 90_000_000)
				lon := int32(r.IntN(360_000_000) - 179_999_999)
				if r.IntN(2) == 0 {
					d := float64(radius) / EarthRadius * 180 / math.Pi * 1e6
					lat = int32(max(-90e6, min(90e6, float64(c[0])+(r.Float64()*2-1)*d*1.01)))
				}
				if cen.dist(lat, lon) > float64(radius) {
					continue
				}
				in := lat >= b.latLo && lat <= b.latHi
				lonIn := false
				for _, lr := range b.lons {
					lonIn = lonIn || lon >= lr.lo && lon <= lr.hi
				}
				if !in || !lonIn {
					t.Fatalf("circleBox(%d,%d,%d) = %+v misses %d,%d at %f m", c[0], c[1], radius, b, lat, lon, cen.dist(lat, lon))
				}
			}
		}
	}
}
