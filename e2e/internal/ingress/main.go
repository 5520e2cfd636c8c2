// Command ingress is the end-to-end suite's stand-in for a regional
// Kubernetes ingress: a small HTTP server that says which region served a
// request. The suite starts one per region inside that region's network
// namespace and kills it to simulate the region failing.
//
// Usage:
//
//	ingress -addr 10.99.0.21:80 -region east
//
// GET /healthz answers "ok"; every other path answers "region=<region>" and
// sets the X-Served-By-Region header, so a client behind the gslb proxy can
// tell where its request went.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// RegionHeader names the response header carrying the serving region.
const RegionHeader = "X-Served-By-Region"

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (host:port)")
	region := flag.String("region", "", "region this ingress serves (required)")
	flag.Parse()
	if *region == "" {
		fmt.Fprintln(os.Stderr, "ingress: -region is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, *region); err != nil {
		log.Fatalf("ingress %s: %v", *region, err)
	}
}

// serve runs the ingress on addr until ctx is done.
func serve(ctx context.Context, addr, region string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set(RegionHeader, region)
		fmt.Fprintf(w, "region=%s host=%s path=%s\n", region, r.Host, r.URL.Path)
	})
	srv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("ingress %s listening on %s", region, addr)
	select {
	case err := <-errc:
		return fmt.Errorf("listen on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
