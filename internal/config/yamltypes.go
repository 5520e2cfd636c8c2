package config

import (
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"
)

// IP is a netip.Addr read from YAML; a bad value is reported with its line
// together with every other error of the file.
type IP struct{ netip.Addr }

// UnmarshalYAML implements yaml.Unmarshaler.
func (ip *IP) UnmarshalYAML(n *yaml.Node) error {
	a, err := netip.ParseAddr(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid IP address %q", n.Line, n.Value)}}
	}
	ip.Addr = a.Unmap()
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (ip IP) MarshalYAML() (any, error) { return ip.Addr.String(), nil }

// Prefix is a netip.Prefix read from YAML. A bare address is taken as a
// host prefix (/32 or /128). Bits beyond the prefix length are an error.
type Prefix struct{ netip.Prefix }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	bad := func(why string) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid CIDR %q: %s", n.Line, n.Value, why)}}
	}
	if n.Kind != yaml.ScalarNode {
		return bad("not a scalar")
	}
	pfx, err := netip.ParsePrefix(n.Value)
	if err != nil {
		a, aerr := netip.ParseAddr(n.Value)
		if aerr != nil {
			return bad("want address/length")
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if pfx.Masked() != pfx {
		return bad(fmt.Sprintf("host bits set (did you mean %s?)", pfx.Masked()))
	}
	p.Prefix = pfx
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (p Prefix) MarshalYAML() (any, error) { return p.Prefix.String(), nil }
