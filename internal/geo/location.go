// Package geo locates IP addresses: explicit CIDR maps from the config
// first, then a MaxMind DB format database (GeoIP2/GeoLite2 or DB-IP).
package geo

import (
	"math"
	"net/netip"
)

// Location is where an address is, as far as gslb can tell.
type Location struct {
	Country     string  `json:"country,omitempty"`     // ISO 3166-1 alpha-2, e.g. "US"
	Continent   string  `json:"continent,omitempty"`   // two-letter code, e.g. "NA"
	Subdivision string  `json:"subdivision,omitempty"` // ISO 3166-2 subdivision code, e.g. "CA"
	Latitude    float64 `json:"latitude"`
	Longitude   float64 `json:"longitude"`
	// HasCoordinates is true when Latitude and Longitude are known.
	HasCoordinates bool `json:"has_coordinates"`
	// Approximate is true when the coordinates are a stand-in (the centroid
	// of the continent) because the source had none, as with a GeoIP2
	// Country database.
	Approximate bool `json:"approximate,omitempty"`
	// Region is set when a CIDR map sends the network to a region.
	Region string `json:"region,omitempty"`
	// Network is the prefix the answer came from (a CIDR map entry or the
	// database network); its length bounds the ECS scope. A Resolver sets it
	// to the widest prefix around the address for which Locate returns the
	// same Location, also when nothing is found (then it is the widest
	// prefix that is equally unknown).
	Network netip.Prefix `json:"network"`
	// Source says what located the address: "cidr_map", "geoip" or "" (unknown).
	Source string `json:"source,omitempty"`
}

// Found reports whether anything is known about the address.
func (l Location) Found() bool { return l.Source != "" }

// Locator locates addresses. Implementations are safe for concurrent use
// and never block on I/O.
type Locator interface {
	Locate(addr netip.Addr) Location
}

// Nowhere is a Locator that knows nothing.
type Nowhere struct{}

// Locate implements Locator.
func (Nowhere) Locate(netip.Addr) Location { return Location{} }

// EarthRadiusKm is the mean Earth radius used for distances.
const EarthRadiusKm = 6371.0

// DistanceKm is the great-circle (haversine) distance between two points.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
