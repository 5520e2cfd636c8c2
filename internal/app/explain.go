package app

import (
	"fmt"
	"io"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
	"github.com/gslb-dev/gslb/internal/geo"
	"github.com/gslb-dev/gslb/internal/health"
	"github.com/gslb-dev/gslb/internal/routing"
)

// ExplainOffline prints the decision for a client of a service name under
// cfg, with every endpoint taken as healthy (no probes run), as
// `gslb explain` does.
func ExplainOffline(w io.Writer, cfg *config.Config, name, qtype string, client netip.Prefix) error {
	qt, ok := dns.StringToType[qtype]
	if !ok || (qt != dns.TypeA && qt != dns.TypeAAAA) {
		return fmt.Errorf("type %q: want A or AAAA", qtype)
	}
	loc, err := geo.New(cfg.Geo, cfg.Regions, geo.Deps{})
	if err != nil {
		return err
	}
	engine := routing.New(cfg, health.StaticSource(cfg), loc)
	svc := engine.ServiceForName(name)
	if svc == nil {
		return fmt.Errorf("%s is not a GSLB service name in %s", dns.Fqdn(name), cfg.Source)
	}
	d := engine.Explain(svc.ID, routing.Query{Client: client.Addr(), SourcePrefix: client.Bits(), QType: qt})
	if err := routing.FormatExplain(w, d); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "(offline: every endpoint is taken as healthy; ask the admin API for live health)\n")
	return err
}
