package locnet

import (
	"math"
	"math/rand/v2"

	"github.com/iop-go/iop/graph"
)

// BubbleSize is the radius in km of the "bubble" of a colleague that is
// distKm away from this node (2017): about 2.4 km next to the node, 76 km at
// 1,000 km, 350 km at 10,000 km. A colleague's bubble may not overlap the
// bubble of the closest colleague to it, so the world map is dense near the
// node and sparse far away.
func BubbleSize(distKm float64) float64 {
	return math.Log10(distKm+2500)*501 - 1700
}

// BubblesOverlap reports whether a candidate colleague dCandKm away from this
// node overlaps an existing colleague dOtherKm away from this node and
// betweenKm away from the candidate (the 2017 colleague admission rule).
func BubblesOverlap(dCandKm, dOtherKm, betweenKm float64) bool {
	return BubbleSize(dOtherKm)+BubbleSize(dCandKm) > betweenKm
}

// DistanceKm is the great-circle distance between a and b in km
// (graph.Distance, in km).
func DistanceKm(a, b graph.Location) float64 {
	return graph.Distance(a, b) / 1000
}

// vec is a point on the unit sphere. The dot product of two vecs orders
// points by great-circle distance without trigonometry, and the chord
// length gives the distance, which is how tables answer queries fast.
type vec [3]float64

func toVec(l graph.Location) vec {
	const rad = math.Pi / 180 / 1e6
	lat, lon := float64(l.Lat)*rad, float64(l.Lon)*rad
	cl := math.Cos(lat)
	return vec{cl * math.Cos(lon), cl * math.Sin(lon), math.Sin(lat)}
}

func (a vec) dot(b vec) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// km is the great-circle distance between a and b in km; it equals the
// haversine distance of graph.Distance up to rounding.
func (a vec) km(b vec) float64 {
	dx, dy, dz := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	chord := math.Sqrt(dx*dx + dy*dy + dz*dz)
	return 2 * graph.EarthRadius / 1000 * math.Asin(math.Min(1, chord/2))
}

// randomLocation is a point uniformly distributed on the sphere.
func randomLocation(r *rand.Rand) graph.Location {
	lat := math.Asin(2*r.Float64()-1) * 180 / math.Pi
	lon := r.Float64()*360 - 180
	l, err := graph.LocationFromDegrees(lat, lon)
	if err != nil {
		return graph.Location{}
	}
	return l
}
