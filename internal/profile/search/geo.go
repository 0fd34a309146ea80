package search

import "math"

const (
	// NoLocation is the IoP LocationType value meaning "no location".
	NoLocation int32 = 0x7FFFFFFF
	// EarthRadius is the mean earth radius used by IoP's haversine, in metres.
	EarthRadius = 6371000.0

	maxLat = 90_000_000
	minLon = -180_000_000 // exclusive in IoP; accepted here so -180° needs no special case
	maxLon = 180_000_000
	// bboxMargin widens bounding boxes, in microdegrees (about 1 m), so float
	// rounding never drops a point that the exact haversine check accepts.
	bboxMargin = 10
)

const microRad = math.Pi / 180 / 1e6 // radians per microdegree

// validLocation reports whether lat/lon is an IoP location in range.
func validLocation(lat, lon int32) bool {
	return lat >= -maxLat && lat <= maxLat && lon >= minLon && lon <= maxLon
}

// center is a search centre with its trigonometry precomputed.
type center struct {
	lat, lon float64 // radians
	cosLat   float64
}

func newCenter(lat, lon int32) center {
	c := center{lat: float64(lat) * microRad, lon: float64(lon) * microRad}
	c.cosLat = math.Cos(c.lat)
	return c
}

// dist returns the haversine distance from c to lat/lon (microdegrees) in metres.
// Every distance the package computes goes through here, so the index and
// Distance agree to the last bit.
func (c *center) dist(lat, lon int32) float64 {
	φ := float64(lat) * microRad
	λ := float64(lon) * microRad
	sφ := math.Sin((φ - c.lat) / 2)
	sλ := math.Sin((λ - c.lon) / 2)
	a := sφ*sφ + c.cosLat*math.Cos(φ)*sλ*sλ
	if a > 1 {
		a = 1
	}
	return 2 * EarthRadius * math.Asin(math.Sqrt(a))
}

// Distance returns the haversine distance in metres between two locations given
// in microdegrees, with earth radius EarthRadius. A profile is inside a search
// circle iff Distance(centre, profile) <= radius.
func Distance(lat1, lon1, lat2, lon2 int32) float64 {
	c := newCenter(lat1, lon1)
	return c.dist(lat2, lon2)
}

// lonRange is an inclusive longitude interval in microdegrees.
type lonRange struct{ lo, hi int32 }

// bbox is a conservative bounding box of a search circle: every point whose
// haversine distance is within the radius lies in it.
type bbox struct {
	latLo, latHi int32
	lons         []lonRange // 1 or 2 ascending ranges (2 when the box crosses the antimeridian)
}

// circleBox returns the bounding box of the circle of radius metres around c.
func circleBox(lat, lon int32, radius uint32) bbox {
	δ := float64(radius) / EarthRadius
	if δ >= math.Pi {
		return bbox{latLo: -maxLat, latHi: maxLat, lons: []lonRange{{minLon, maxLon}}}
	}
	φ := float64(lat) * microRad
	deg := δ * 180 / math.Pi * 1e6 // radius in microdegrees of latitude
	b := bbox{
		latLo: clampLat(float64(lat) - deg - bboxMargin),
		latHi: clampLat(float64(lat) + deg + bboxMargin),
	}
	if φ+δ >= math.Pi/2-1e-9 || φ-δ <= -math.Pi/2+1e-9 {
		// The circle contains a pole: every longitude is in.
		b.lons = []lonRange{{minLon, maxLon}}
		return b
	}
	r := math.Sin(δ) / math.Cos(φ)
	if r >= 1 {
		b.lons = []lonRange{{minLon, maxLon}}
		return b
	}
	dλ := math.Asin(r)*180/math.Pi*1e6 + bboxMargin
	lo, hi := float64(lon)-dλ, float64(lon)+dλ
	switch {
	case hi-lo >= 360e6:
		b.lons = []lonRange{{minLon, maxLon}}
	case lo < minLon:
		b.lons = []lonRange{{minLon, int32(math.Ceil(hi))}, {int32(math.Floor(lo + 360e6)), maxLon}}
	case hi > maxLon:
		b.lons = []lonRange{{minLon, int32(math.Ceil(hi - 360e6))}, {int32(math.Floor(lo)), maxLon}}
	default:
		b.lons = []lonRange{{int32(math.Floor(lo)), int32(math.Ceil(hi))}}
	}
	return b
}

func clampLat(v float64) int32 {
	switch {
	case v <= -maxLat:
		return -maxLat
	case v >= maxLat:
		return maxLat
	}
	return int32(math.Floor(v))
}
