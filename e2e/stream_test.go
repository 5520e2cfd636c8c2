package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// regionHeader is the header the stand-in ingress sets (see
// e2e/internal/ingress).
const regionHeader = "X-Served-By-Region"

// streamEvent is the outcome of one request of a stream.
type streamEvent struct {
	at     time.Time
	region string // serving region, "" on failure
	err    string // "" on success
}

// stream sends a steady sequence of GET requests to one URL, one at a time,
// and records every outcome.
type stream struct {
	mu     sync.Mutex
	events []streamEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// startStream starts GET http://target/ with Host: serviceName every
// period from the client namespace, as a user of the east proxy would.
func (w *world) startStream(from, target string, period time.Duration) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{cancel: cancel, done: make(chan struct{})}
	client := httpClient(w.client, from, 5*time.Second)
	go func() {
		defer close(s.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; ; i++ {
			ev := getOnce(ctx, client, target, i)
			if ctx.Err() != nil {
				return // a request cut short by stop is not a user-visible failure
			}
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// getOnce makes one request and classifies it.
func getOnce(ctx context.Context, client *http.Client, target string, i int) streamEvent {
	ev := streamEvent{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+target+fmt.Sprintf("/cart?i=%d", i), nil)
	if err != nil {
		ev.err = err.Error()
		return ev
	}
	req.Host = serviceName
	resp, err := client.Do(req)
	if err != nil {
		ev.err = err.Error()
		return ev
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case err != nil:
		ev.err = "read body: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		ev.err = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	case resp.Header.Get(regionHeader) == "":
		ev.err = fmt.Sprintf("status 200 without %s header: %q", regionHeader, strings.TrimSpace(string(body)))
	default:
		ev.region = resp.Header.Get(regionHeader)
	}
	return ev
}

// stop ends the stream and waits for its last request.
func (s *stream) stop() {
	s.cancel()
	<-s.done
}

// firstSince returns the time of the first request at or after t served by
// region.
func (s *stream) firstSince(t time.Time, region string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		if !ev.at.Before(t) && ev.region == region {
			return ev.at, true
		}
	}
	return time.Time{}, false
}

// streamStats sums a stream up.
type streamStats struct {
	total, failed int
	byRegion      map[string]int
	failures      []string // the first few
}

func (s *stream) stats() streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := streamStats{byRegion: map[string]int{}}
	for _, ev := range s.events {
		st.total++
		if ev.err != "" {
			st.failed++
			if len(st.failures) < 5 {
				st.failures = append(st.failures, ev.at.Format("15:04:05.000")+" "+ev.err)
			}
			continue
		}
		st.byRegion[ev.region]++
	}
	return st
}

// summary collects the measured times of the whole run, printed at the end
// so they can be quoted.
type summary struct {
	mu    sync.Mutex
	lines []string
}

// add records one measurement.
func (s *summary) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

func (s *summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// secs formats a duration in seconds with millisecond precision.
func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
