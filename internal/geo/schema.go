package geo

import (
	"math"
	"strings"

	maxminddb "github.com/oschwald/maxminddb-golang/v2"
)

// Schemas of MaxMind DB format files gslb reads (config.GeoConfig.Schema).
const (
	// SchemaGeoIP2 is the GeoIP2/GeoLite2 City and Country schema:
	// country.iso_code (else registered_country.iso_code), continent.code,
	// subdivisions[0].iso_code, location.latitude/longitude. A Country
	// database has no location: its Locations get the continent's centroid
	// and Approximate set.
	SchemaGeoIP2 = "geoip2"
	// SchemaDBIP is the flat schema of the DB-IP lite files as distributed
	// by ip-location-db: country_code, state1 (a subdivision name, not an
	// ISO code), latitude, longitude, and continent (a code) when present.
	SchemaDBIP = "dbip"
)

// Location sources.
const (
	SourceCIDRMap = "cidr_map"
	SourceGeoIP   = "geoip"
)

// geoip2Record holds the fields gslb reads from a GeoIP2/GeoLite2 record.
// Latitude and Longitude are preset to NaN so that their absence shows.
type geoip2Record struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// dbipRecord holds the fields of the flat DB-IP schema.
type dbipRecord struct {
	CountryCode string  `maxminddb:"country_code"`
	Continent   string  `maxminddb:"continent"`
	State1      string  `maxminddb:"state1"`
	Latitude    float64 `maxminddb:"latitude"`
	Longitude   float64 `maxminddb:"longitude"`
}

// decodeRecord decodes a found record in the given schema into a Location
// (without Network). ok is false when the record says nothing useful.
func decodeRecord(res maxminddb.Result, schema string) (loc Location, ok bool, err error) {
	switch schema {
	case SchemaDBIP:
		rec := dbipRecord{Latitude: math.NaN(), Longitude: math.NaN()}
		if err := res.Decode(&rec); err != nil {
			return Location{}, false, err
		}
		loc = Location{Country: rec.CountryCode, Continent: rec.Continent, Subdivision: rec.State1}
		setCoordinates(&loc, rec.Latitude, rec.Longitude)
	default:
		var rec geoip2Record
		rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
		if err := res.Decode(&rec); err != nil {
			return Location{}, false, err
		}
		loc = Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code}
		if loc.Country == "" {
			loc.Country = rec.RegisteredCountry.ISOCode
		}
		if len(rec.Subdivisions) > 0 {
			loc.Subdivision = rec.Subdivisions[0].ISOCode
		}
		setCoordinates(&loc, rec.Location.Latitude, rec.Location.Longitude)
	}
	loc.Country = strings.ToUpper(loc.Country)
	loc.Continent = strings.ToUpper(loc.Continent)
	if !loc.HasCoordinates {
		if lat, lon, found := continentCentroid(loc.Continent); found {
			loc.Latitude, loc.Longitude, loc.HasCoordinates, loc.Approximate = lat, lon, true, true
		}
	}
	if loc.Country == "" && loc.Continent == "" && loc.Subdivision == "" && !loc.HasCoordinates {
		return Location{}, false, nil
	}
	loc.Source = SourceGeoIP
	return loc, true, nil
}

// setCoordinates sets valid coordinates on loc and ignores absent (NaN) or
// out-of-range ones.
func setCoordinates(loc *Location, lat, lon float64) {
	if math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return
	}
	loc.Latitude, loc.Longitude, loc.HasCoordinates = lat, lon, true
}
