package graph

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// NoLocation is the microdegree value meaning "no location".
const NoLocation int32 = 0x7FFFFFFF

// EarthRadius is the mean earth radius in metres used for all distances.
const EarthRadius = 6371000.0

// Location is a point in microdegrees (degrees × 1,000,000, truncated).
// Latitude is within ±90,000,000 and longitude within
// [-179,999,999, 180,000,000]; both are NoLocation when there is none.
type Location struct {
	Lat, Lon int32
}

// Nowhere is the Location with no position.
var Nowhere = Location{Lat: NoLocation, Lon: NoLocation}

// IsSet reports whether l holds a position.
func (l Location) IsSet() bool { return l.Lat != NoLocation }

// LatDeg and LonDeg return the coordinates in degrees.
func (l Location) LatDeg() float64 { return float64(l.Lat) / 1e6 }
func (l Location) LonDeg() float64 { return float64(l.Lon) / 1e6 }

func (l Location) String() string {
	if !l.IsSet() {
		return "none"
	}
	return strconv.FormatFloat(l.LatDeg(), 'f', -1, 64) + "," + strconv.FormatFloat(l.LonDeg(), 'f', -1, 64)
}

func (l Location) validate() error {
	if l.Lat == NoLocation || l.Lon == NoLocation {
		if l.Lat != l.Lon {
			if l.Lat == NoLocation {
				return fieldErr("latitude", "no location while longitude is set")
			}
			return fieldErr("longitude", "no location while latitude is set")
		}
		return nil
	}
	if l.Lat < -90000000 || l.Lat > 90000000 {
		return fieldErr("latitude", "%d out of range ±90,000,000", l.Lat)
	}
	if l.Lon <= -180000000 || l.Lon > 180000000 {
		return fieldErr("longitude", "%d out of range (-180,000,000, 180,000,000]", l.Lon)
	}
	return nil
}

// LocationFromDegrees converts degrees to a Location, truncating to
// microdegrees and mapping longitude -180 to 180.
func LocationFromDegrees(lat, lon float64) (Location, error) {
	if math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Location{}, fmt.Errorf("location %v,%v out of range (latitude ±90, longitude ±180)", lat, lon)
	}
	l := Location{Lat: int32(lat * 1e6), Lon: int32(lon * 1e6)}
	if l.Lon == -180000000 {
		l.Lon = 180000000
	}
	return l, nil
}

// ParseLocation parses "LAT,LON" in degrees, or "" / "none" for Nowhere.
func ParseLocation(s string) (Location, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return Nowhere, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return Location{}, fmt.Errorf("location %q: want LAT,LON in degrees, e.g. 51.50,-0.12", s)
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil {
		return Location{}, fmt.Errorf("location %q: want LAT,LON in degrees, e.g. 51.50,-0.12", s)
	}
	return LocationFromDegrees(lat, lon)
}

// Distance returns the haversine distance in metres between two set
// locations (earth radius 6,371 km).
func Distance(a, b Location) float64 {
	const rad = math.Pi / 180 / 1e6
	lat1, lat2 := float64(a.Lat)*rad, float64(b.Lat)*rad
	dlat := lat2 - lat1
	dlon := float64(b.Lon-a.Lon) * rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1)*math.Cos(lat2)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * EarthRadius * math.Asin(math.Min(1, math.Sqrt(h)))
}

// CheckLocation validates l and returns a *FieldError naming "latitude" or
// "longitude" when it is out of range.
func CheckLocation(l Location) error { return l.validate() }
