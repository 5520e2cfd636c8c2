// Command minidns is the benchmark's Go DNS baseline: a minimal
// github.com/miekg/dns authoritative server answering one zone file from a
// map, with the library's default server loop.
//
// It answers exact names (following one in-zone CNAME), NODATA and NXDOMAIN
// with the SOA in the authority section, and echoes an EDNS Client Subnet
// option with scope 0 as RFC 7871 asks of servers that do not use it. It has
// no wildcards, delegations, geography or health: it is the floor a Go server
// starts from.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/miekg/dns"
)

const udpSize = 1232

type key struct {
	name  string
	qtype uint16
}

type zone struct {
	origin string
	soa    dns.RR
	rrs    map[key][]dns.RR
	names  map[string]bool
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to serve UDP and TCP on")
	file := flag.String("zone", "", "zone file in RFC 1035 format")
	origin := flag.String("origin", "", "zone apex")
	flag.Parse()

	z, err := load(*file, dns.Fqdn(strings.ToLower(*origin)))
	if err != nil {
		log.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(z.origin, z.serve)
	for _, netw := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: *listen, Net: netw, Handler: mux}
		go func() { log.Fatal(srv.ListenAndServe()) }()
	}
	log.Printf("minidns serving %s on %s", z.origin, *listen)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func load(file, origin string) (*zone, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z := &zone{origin: origin, rrs: map[key][]dns.RR{}, names: map[string]bool{}}
	zp := dns.NewZoneParser(f, origin, file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		k := key{h.Name, h.Rrtype}
		z.rrs[k] = append(z.rrs[k], rr)
		z.names[h.Name] = true
		if h.Rrtype == dns.TypeSOA {
			z.soa = rr
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *zone) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	m.Compress = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if rrs, ok := z.rrs[key{name, q.Qtype}]; ok {
		m.Answer = rrs
	} else if cn, ok := z.rrs[key{name, dns.TypeCNAME}]; ok {
		m.Answer = append([]dns.RR{}, cn...)
		m.Answer = append(m.Answer, z.rrs[key{strings.ToLower(cn[0].(*dns.CNAME).Target), q.Qtype}]...)
	} else {
		if !z.names[name] {
			m.Rcode = dns.RcodeNameError
		}
		m.Ns = []dns.RR{z.soa}
	}
	if opt := req.IsEdns0(); opt != nil {
		out := new(dns.OPT)
		out.Hdr.Name = "."
		out.Hdr.Rrtype = dns.TypeOPT
		out.SetUDPSize(udpSize)
		for _, o := range opt.Option {
			if ecs, ok := o.(*dns.EDNS0_SUBNET); ok {
				echo := *ecs
				echo.SourceScope = 0
				out.Option = append(out.Option, &echo)
			}
		}
		m.Extra = append(m.Extra, out)
	}
	w.WriteMsg(m)
}
