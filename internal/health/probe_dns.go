package health

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/gslb-dev/gslb/internal/config"
)

// dnsProber sends one query to the target over UDP and expects an rcode.
type dnsProber struct {
	name   string
	qtype  uint16
	rcode  int
	client *dns.Client
}

func newDNSProber(check config.Check) (prober, error) {
	qt := strings.ToUpper(check.QueryType)
	if qt == "" {
		qt = "SOA"
	}
	qtype, ok := dns.StringToType[qt]
	if !ok {
		return prober{}, fmt.Errorf("unknown query type %q", check.QueryType)
	}
	rc := strings.ToUpper(check.ExpectRcode)
	if rc == "" {
		rc = "NOERROR"
	}
	rcode, ok := dns.StringToRcode[rc]
	if !ok {
		return prober{}, fmt.Errorf("unknown rcode %q", check.ExpectRcode)
	}
	if check.Query == "" {
		return prober{}, fmt.Errorf("a dns check needs a query name")
	}
	d := &dnsProber{
		name:  dns.Fqdn(check.Query),
		qtype: qtype,
		rcode: rcode,
		// UDPSize 1232 keeps probe responses small; no TCP retry on TC:
		// the rcode is known from the truncated answer already.
		client: &dns.Client{Net: "udp", UDPSize: 1232, Timeout: check.Timeout},
	}
	return prober{run: d.probe}, nil
}

func (d *dnsProber) probe(ctx context.Context, target netip.AddrPort) Result {
	m := new(dns.Msg)
	m.SetQuestion(d.name, d.qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	resp, _, err := d.client.ExchangeContext(ctx, m, target.String())
	if err != nil {
		return failure(ctx, err)
	}
	if resp.Id != m.Id {
		return Result{Reason: "id mismatch", Detail: "response id does not match the query"}
	}
	if resp.Rcode != d.rcode {
		got := dns.RcodeToString[resp.Rcode]
		if got == "" {
			got = fmt.Sprint(resp.Rcode)
		}
		return Result{Reason: "rcode " + got,
			Detail: fmt.Sprintf("rcode %s, want %s", got, dns.RcodeToString[d.rcode])}
	}
	return Result{OK: true, Reason: ReasonOK}
}
