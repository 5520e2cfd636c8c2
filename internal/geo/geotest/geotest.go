// Package geotest writes small MaxMind DB files for tests, in the GeoIP2
// City/Country schema and in the flat DB-IP schema, with
// github.com/maxmind/mmdbwriter (as CoreDNS's geoip test data does)
// instead of checked-in binary blobs.
package geotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record is one network's location. Zero-valued fields are left out of
// the written record; coordinates are written when HasCoordinates is set.
type Record struct {
	Network        string // CIDR, e.g. "3.80.0.0/12"
	Country        string
	Continent      string
	Subdivision    string
	Latitude       float64
	Longitude      float64
	HasCoordinates bool
}

// EastCoast returns clients near the demo region east (39.04,-77.49),
// one IPv4 and one IPv6 network.
func EastCoast() []Record {
	return []Record{
		{Network: "3.80.0.0/12", Country: "US", Continent: "NA", Subdivision: "VA", Latitude: 38.9, Longitude: -77.0, HasCoordinates: true},
		{Network: "2600:1f18::/32", Country: "US", Continent: "NA", Subdivision: "NY", Latitude: 40.71, Longitude: -74.0, HasCoordinates: true},
	}
}

// WestCoast returns clients near the demo region west (37.35,-121.96),
// one IPv4 and one IPv6 network.
func WestCoast() []Record {
	return []Record{
		{Network: "13.56.0.0/16", Country: "US", Continent: "NA", Subdivision: "CA", Latitude: 37.77, Longitude: -122.42, HasCoordinates: true},
		{Network: "2600:1f1c::/32", Country: "US", Continent: "NA", Subdivision: "WA", Latitude: 47.61, Longitude: -122.33, HasCoordinates: true},
	}
}

// Europe returns a client network in London.
func Europe() []Record {
	return []Record{
		{Network: "81.2.69.0/24", Country: "GB", Continent: "EU", Subdivision: "ENG", Latitude: 51.51, Longitude: -0.09, HasCoordinates: true},
	}
}

// All returns EastCoast, WestCoast and Europe together.
func All() []Record {
	return append(append(EastCoast(), WestCoast()...), Europe()...)
}

// Schemas accepted by Build.
const (
	SchemaGeoIP2 = "geoip2"
	SchemaDBIP   = "dbip"
)

// Build returns a MaxMind DB file holding recs in the given schema.
func Build(schema string, recs []Record) ([]byte, error) {
	dbType := "GeoIP2-City"
	if schema == SchemaDBIP {
		dbType = "DBIP-City-Lite"
	}
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		_, n, err := net.ParseCIDR(r.Network)
		if err != nil {
			return nil, fmt.Errorf("record %q: %w", r.Network, err)
		}
		var v mmdbtype.Map
		if schema == SchemaDBIP {
			v = dbipValue(r)
		} else {
			v = geoip2Value(r)
		}
		if err := w.Insert(n, v); err != nil {
			return nil, fmt.Errorf("insert %s: %w", r.Network, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func geoip2Value(r Record) mmdbtype.Map {
	v := mmdbtype.Map{}
	if r.Continent != "" {
		v["continent"] = mmdbtype.Map{"code": mmdbtype.String(r.Continent), "names": mmdbtype.Map{"en": mmdbtype.String(r.Continent)}}
	}
	if r.Country != "" {
		c := mmdbtype.Map{"iso_code": mmdbtype.String(r.Country), "names": mmdbtype.Map{"en": mmdbtype.String(r.Country)}}
		v["country"] = c
		v["registered_country"] = c
	}
	if r.Subdivision != "" {
		v["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String(r.Subdivision)}}
	}
	if r.HasCoordinates {
		v["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(r.Latitude),
			"longitude":       mmdbtype.Float64(r.Longitude),
			"accuracy_radius": mmdbtype.Uint16(100),
		}
	}
	return v
}

func dbipValue(r Record) mmdbtype.Map {
	v := mmdbtype.Map{}
	if r.Country != "" {
		v["country_code"] = mmdbtype.String(r.Country)
	}
	if r.Continent != "" {
		v["continent"] = mmdbtype.String(r.Continent)
	}
	if r.Subdivision != "" {
		v["state1"] = mmdbtype.String(r.Subdivision)
		v["city"] = mmdbtype.String("Somewhere")
	}
	if r.HasCoordinates {
		// ip-location-db stores coordinates as 32-bit floats.
		v["latitude"] = mmdbtype.Float32(r.Latitude)
		v["longitude"] = mmdbtype.Float32(r.Longitude)
	}
	return v
}

// Write builds a database and writes it to path atomically (a temporary
// file renamed into place), as a database updater would.
func Write(path, schema string, recs []Record) error {
	data, err := Build(schema, recs)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geotest-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFile is Write for tests: it fails t on error and returns the path
// of a new database in t.TempDir() when path is "".
func WriteFile(t testing.TB, path, schema string, recs []Record) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), schema+".mmdb")
	}
	if err := Write(path, schema, recs); err != nil {
		t.Fatalf("write test geoip db: %v", err)
	}
	return path
}
