package geo

// continentCentroid returns the rough geographic centre of a continent,
// by the two-letter codes GeoIP2 uses. It stands in for coordinates when a
// source knows only the continent (a GeoIP2/GeoLite2 Country database, a
// CIDR map with only a continent): good enough to choose between regions
// on different continents, not between regions on the same one. Such
// Locations have Approximate set.
func continentCentroid(code string) (lat, lon float64, ok bool) {
	switch code {
	case "AF":
		return 7.19, 21.09, true
	case "AN":
		return -82.86, 135.0, true
	case "AS":
		return 34.05, 100.62, true
	case "EU":
		return 54.53, 15.26, true
	case "NA":
		return 45.0, -100.0, true
	case "OC":
		return -22.74, 140.02, true
	case "SA":
		return -14.60, -57.66, true
	}
	return 0, 0, false
}
