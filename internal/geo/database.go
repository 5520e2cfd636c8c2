package geo

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	maxminddb "github.com/oschwald/maxminddb-golang/v2"
)

// MaxDatabaseBytes bounds the size of a GeoIP database file (the largest
// commercial City databases are a few hundred MiB).
const MaxDatabaseBytes = 2 << 30

// fileStamp identifies one version of a file on disk.
type fileStamp struct {
	info    os.FileInfo
	modTime time.Time
	size    int64
}

func stampOf(info os.FileInfo) fileStamp {
	return fileStamp{info: info, modTime: info.ModTime(), size: info.Size()}
}

// same reports whether two stamps describe the same file version: same
// file (inode), modification time and size.
func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == o.info
	}
	return os.SameFile(s.info, o.info) && s.modTime.Equal(o.modTime) && s.size == o.size
}

// database is one loaded, verified GeoIP database. It is read into memory
// (not memory-mapped) so that a replaced database can simply be dropped
// while lookups may still be using it: the garbage collector frees it.
type database struct {
	path     string
	schema   string
	reader   *maxminddb.Reader
	stamp    fileStamp
	loadedAt time.Time
}

// openDatabase reads, opens and verifies the database at path.
func openDatabase(path, schema string, now time.Time) (*database, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() == 0 {
		return nil, errors.New("file is empty")
	}
	if info.Size() > MaxDatabaseBytes {
		return nil, fmt.Errorf("file is %d bytes, larger than the limit of %d", info.Size(), int64(MaxDatabaseBytes))
	}
	data := make([]byte, info.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	reader, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, err
	}
	// Verify checks the search tree and data section. It also insists on
	// cosmetic metadata (a description, a database type) that some freely
	// distributed databases lack; fill those in rather than refuse them.
	if len(reader.Metadata.Description) == 0 {
		reader.Metadata.Description = map[string]string{"en": "(no description)"}
	}
	if reader.Metadata.DatabaseType == "" {
		reader.Metadata.DatabaseType = "unknown"
	}
	if err := reader.Verify(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if err := probeSchema(reader, schema); err != nil {
		return nil, err
	}
	return &database{path: path, schema: schema, reader: reader, stamp: stampOf(info), loadedAt: now}, nil
}

// probeSchema decodes a few networks in the configured schema so that a
// database of the wrong kind is rejected at load rather than failing every
// lookup.
func probeSchema(r *maxminddb.Reader, schema string) error {
	n := 0
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("read networks: %w", err)
		}
		if _, _, err := decodeRecord(res, schema); err != nil {
			return fmt.Errorf("decode %s in schema %q: %w", res.Prefix(), schema, err)
		}
		if n++; n >= 16 {
			break
		}
	}
	return nil
}

// locate looks addr (unmapped) up. It returns the Location (without
// Network), the length of the database network holding addr, and the
// lookup or decode error, if any.
func (d *database) locate(addr netip.Addr) (Location, int, error) {
	res := d.reader.Lookup(addr)
	if err := res.Err(); err != nil {
		return Location{}, addr.BitLen(), err
	}
	bits := addr.BitLen()
	if p := res.Prefix(); p.IsValid() {
		if p.Addr().Is4() == addr.Is4() {
			bits = p.Bits()
		} else if addr.Is4() {
			// The lookup ended above the IPv4 subtree: one record (or none)
			// covers all of IPv4.
			bits = 0
		}
	}
	if !res.Found() {
		return Location{}, bits, nil
	}
	loc, _, err := decodeRecord(res, d.schema)
	if err != nil {
		return Location{}, addr.BitLen(), err
	}
	return loc, bits, nil
}
