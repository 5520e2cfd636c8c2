package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// MaxStateFileBytes bounds the size of the state file read at start.
const MaxStateFileBytes = 64 << 20

// stateFileVersion is the format version written to the state file.
const stateFileVersion = 1

// stateFile is the persisted form of overrides and last known health.
type stateFile struct {
	Version          int                 `json:"version"`
	WrittenAt        time.Time           `json:"written_at"`
	DrainedRegions   map[string]Override `json:"drained_regions"`
	DrainedEndpoints []drainedEndpoint   `json:"drained_endpoints"`
	Endpoints        []knownEndpoint     `json:"endpoints"`
}

type drainedEndpoint struct {
	Pool     string `json:"pool"`
	Endpoint string `json:"endpoint"`
	Override
}

// knownEndpoint is the last known health of one endpoint.
type knownEndpoint struct {
	Pool     string     `json:"pool"`
	Endpoint string     `json:"endpoint"`
	Address  netip.Addr `json:"address"`
	Healthy  bool       `json:"healthy"`
	Since    time.Time  `json:"since"`
}

// loadState reads the state file at path. A missing file is an empty
// state; an unreadable or corrupt one is an error naming the file.
func loadState(path string) (*stateFile, error) {
	st := &stateFile{DrainedRegions: map[string]Override{}}
	if path == "" {
		return st, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open health state file %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStateFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read health state file %q: %w", path, err)
	}
	if len(data) > MaxStateFileBytes {
		return nil, fmt.Errorf("read health state file %q: larger than %d bytes", path, MaxStateFileBytes)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("corrupt health state file %q (fix or remove it; it holds drains): %w", path, err)
	}
	if st.Version != stateFileVersion {
		return nil, fmt.Errorf("health state file %q: unsupported version %d (want %d)", path, st.Version, stateFileVersion)
	}
	if st.DrainedRegions == nil {
		st.DrainedRegions = map[string]Override{}
	}
	return st, nil
}

// sortState orders the lists of st so the file is stable.
func sortState(st *stateFile) {
	sort.Slice(st.DrainedEndpoints, func(i, j int) bool {
		a, b := st.DrainedEndpoints[i], st.DrainedEndpoints[j]
		return a.Pool < b.Pool || a.Pool == b.Pool && a.Endpoint < b.Endpoint
	})
	sort.Slice(st.Endpoints, func(i, j int) bool {
		a, b := st.Endpoints[i], st.Endpoints[j]
		return a.Pool < b.Pool || a.Pool == b.Pool && a.Endpoint < b.Endpoint
	})
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new file: write a temporary file in the
// same directory, fsync it, rename it over path, fsync the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp.Name(), err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
