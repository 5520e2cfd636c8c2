// Command gslb is a geo-aware authoritative DNS load balancer with health
// checks, an optional L7 proxy and an admin API.
//
// Usage:
//
//	gslb [serve] [-config FILE] [-log-level LEVEL] [-log-format json|console]
//	gslb check -config FILE
//	gslb explain [-config FILE] -client IP NAME [TYPE]
//	gslb version
//
// Without -config, serve and explain use the embedded demo config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/gslb-dev/gslb/internal/app"
	"github.com/gslb-dev/gslb/internal/config"
)

// version is set with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "explain":
		return explain(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "gslb", versionString())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "gslb: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  gslb [serve] [-config FILE] [-log-level debug|info|warn|error] [-log-format json|console]
  gslb check -config FILE
  gslb explain [-config FILE] -client IP NAME [TYPE]
  gslb version
Without -config, serve and explain use the embedded demo config.
`)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "(devel)"
}

// loadConfig loads path, or the embedded demo config when path is "".
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Demo()
	}
	return config.Load(path)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded demo config)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default: from config)")
	logFormat := fs.String("log-format", "", "log format: json or console (default: from config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := app.NewLogger(cfg.Log, *logLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gslb:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, app.Options{ConfigPath: *cfgPath, Logger: log, Version: versionString()})
	if err != nil {
		log.Error("start failed", app.ErrField(err))
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = a.ReloadFrom("sighup")
			}
		}
	}()
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("gslb stopped with an error", app.ErrField(err))
		return 1
	}
	return 0
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file to validate (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" && fs.NArg() == 1 {
		*cfgPath = fs.Arg(0)
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "gslb check: -config FILE is required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		var ce *config.Errors
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%d error(s)\n", len(ce.List))
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d zone(s), %d service(s), %d pool(s), %d region(s))\n",
		cfg.Source, len(cfg.Zones), len(cfg.Services), len(cfg.Pools), len(cfg.Regions))
	return 0
}

func explain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (default: the embedded demo config)")
	client := fs.String("client", "", "client IP address (or an ECS subnet such as 203.0.113.0/24)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *client == "" {
		fmt.Fprintln(stderr, "usage: gslb explain [-config FILE] -client IP NAME [TYPE]")
		return 2
	}
	qtype := "A"
	if fs.NArg() == 2 {
		qtype = strings.ToUpper(fs.Arg(1))
	}
	prefix, err := parseClient(*client)
	if err != nil {
		fmt.Fprintln(stderr, "gslb explain:", err)
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := app.ExplainOffline(stdout, cfg, fs.Arg(0), qtype, prefix); err != nil {
		fmt.Fprintln(stderr, "gslb explain:", err)
		return 1
	}
	return 0
}

// parseClient accepts an address or a prefix (an ECS subnet).
func parseClient(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid client %q: want an IP address or prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
