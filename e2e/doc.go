// Package e2e holds gslb's East/West end-to-end suite. It builds a small
// two-region world on one machine with network namespaces (an ingress and a
// gslb instance per region, a real Unbound resolver sending EDNS Client
// Subnet, and clients in two subnets) and checks what a user sees when a
// region fails, is drained, or loses its name server. See README.md.
//
// The package has no non-test code; the suite lives in the _test.go files
// and the stand-in ingress in e2e/internal/ingress.
package e2e
