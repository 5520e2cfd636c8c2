# bench/lib/gen.sh: generates the zone, the query mix and every server's
# configuration. Sourced by bench/run.sh; every function writes under $WORK.
# shellcheck shell=bash

ZONE=ecommerce.example.com
SERVICE_HOST=www.$ZONE

# ECS option (RFC 7871) sent with every query: family 1 (IPv4), source
# prefix /24, scope 0, address 198.51.100.0 truncated to 3 bytes. Mapped to
# region "east" by gslb's CIDR map.
ECS_HEX=00011800c63364   # 0001 18 00 c6 33 64
ECS_SUBNET=198.51.100.0/24

# gen_zone writes the RFC 1035 zone file served by Knot, gdnsd and minidns.
# www and api are plain A/AAAA records here; gslb answers them as services
# whose east endpoints have the same addresses, so every server returns the
# same data for the query mix.
gen_zone() {
	mkdir -p "$WORK/zone"
	cat >"$WORK/zone/$ZONE" <<ZONE
\$ORIGIN $ZONE.
\$TTL 300
@     60 IN SOA  ns1.$ZONE. hostmaster.$ZONE. 2026112501 3600 600 604800 60
@     IN NS   ns1
@     IN NS   ns2
ns1   IN A    127.0.0.1
ns2   IN A    127.0.0.1
@     IN MX   10 mail
mail  IN A    192.0.2.25
@     IN TXT  "v=spf1 mx -all"
shop  IN CNAME www
www   30 IN A    127.0.0.1
www   30 IN AAAA ::1
api   30 IN A    127.0.0.1
api   30 IN AAAA ::1
ZONE
}

# gen_queries writes the dnsperf query mix (10000 lines, fixed seed): 60%
# service A/AAAA (www, api), 30% static records (SOA, NS, MX, TXT, A, a CNAME
# to a service), 10% NXDOMAIN over 1000 distinct names. ECS is added to every
# query by dnsperf -E.
gen_queries() {
	local out=$WORK/queries.txt i r
	local -a mix=(
		"www.$ZONE A" "www.$ZONE A" "www.$ZONE A" "www.$ZONE A"
		"www.$ZONE AAAA" "www.$ZONE AAAA" "www.$ZONE AAAA"
		"api.$ZONE A" "api.$ZONE A" "api.$ZONE A"
		"api.$ZONE AAAA" "api.$ZONE AAAA"
		"$ZONE SOA" "$ZONE NS" "$ZONE MX" "$ZONE TXT" "mail.$ZONE A" "shop.$ZONE A"
		NX NX
	)
	RANDOM=7
	: >"$out"
	for ((i = 0; i < 10000; i++)); do
		r=${mix[RANDOM % ${#mix[@]}]}
		if [[ $r == NX ]]; then
			r="nx$((RANDOM % 1000)).$ZONE A"
		fi
		printf '%s\n' "$r" >>"$out"
	done
}

# gen_knot writes knot.conf: one UDP and one TCP worker (the server has one
# CPU), storage and run directory in $WORK, no RRL (Knot's default).
gen_knot() {
	local d=$WORK/knot
	mkdir -p "$d"
	cp "$WORK/zone/$ZONE" "$d/$ZONE.zone"
	cat >"$d/knot.conf" <<CONF
server:
    rundir: "$d"
    pidfile: "$d/knotd.pid"
    listen: 127.0.0.1@$PORT_KNOT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$d"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $ZONE
CONF
}

# gen_gdnsd writes a gdnsd 3 config directory: one UDP and one TCP thread,
# run and state directories in $WORK, the plain zone (ECS answered with
# scope 0, gdnsd's default).
gen_gdnsd() {
	local d=$WORK/gdnsd
	mkdir -p "$d/zones" "$d/run" "$d/state"
	cp "$WORK/zone/$ZONE" "$d/zones/$ZONE"
	cat >"$d/config" <<CONF
options => {
  listen => [ 127.0.0.1:$PORT_GDNSD ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => $d/run
  state_dir => $d/state
}
CONF
}

# gen_gslb writes gslb.yaml: the same zone with www and api as geo services
# over two regions, ECS on, CIDR maps for the ECS subnets, HTTP and TCP health
# checks every second against the shared backend, and the proxy routing www
# to its local region. RRL stays on with loopback exempt (the load generator
# is one client); the proxy's rate limiter runs with a limit it never hits.
gen_gslb() {
	local d=$WORK/gslb ep
	mkdir -p "$d"
	ep="      - {name: east-v4, region: east, address: 127.0.0.1, port: $PORT_BACKEND}
      - {name: east-v6, region: east, address: \"::1\", port: $PORT_BACKEND}
      - {name: west-v4, region: west, address: 127.0.0.1, port: $PORT_BACKEND}
      - {name: west-v6, region: west, address: \"::1\", port: $PORT_BACKEND}"
	cat >"$d/gslb.yaml" <<CONF
dns:
  listen: ["127.0.0.1:$PORT_GSLB"]
  rrl:
    exempt: [127.0.0.0/8, "::1/128"]
admin:
  listen: 127.0.0.1:$PORT_GSLB_ADMIN
log:
  level: warn
  format: json
regions:
  east: {latitude: 39.04, longitude: -77.49}
  west: {latitude: 37.35, longitude: -121.96}
geo:
  cidr_maps:
    - {cidr: 198.51.100.0/24, region: east}
    - {cidr: 203.0.113.0/24, region: west}
pools:
  web:
    check: {type: http, path: /healthz, expect_body: ok, interval: 1s, timeout: 500ms, rise: 2, fall: 2, cold_start: assume_healthy}
    endpoints:
$ep
  api:
    check: {type: tcp, interval: 1s, timeout: 500ms, rise: 2, fall: 2, cold_start: assume_healthy}
    endpoints:
$ep
services:
  www: {pool: web, policy: geo, ttl: 30}
  api: {pool: api, policy: geo, ttl: 30}
zones:
  - name: $ZONE
    ttl: 300
    ns: [ns1, ns2]
    soa: {ttl: 60, mname: ns1.$ZONE., rname: hostmaster.$ZONE., serial: 2026112501, refresh: 3600, retry: 600, expire: 604800, minimum: 60}
    records:
      - "ns1 A 127.0.0.1"
      - "ns2 A 127.0.0.1"
      - "@ MX 10 mail"
      - "mail A 192.0.2.25"
      - "@ TXT \\"v=spf1 mx -all\\""
      - "shop CNAME www"
proxy:
  listen: ["127.0.0.1:$PORT_GSLB_HTTP"]
  local_region: east
  routes:
    - {host: $SERVICE_HOST, service: www}
  rate_limit: {requests_per_second: 1000000000, burst: 1000000000}
CONF
}

# gen_haproxy writes haproxy.cfg: one thread, round robin over the backend's
# two addresses with active checks every second, keep-alive both sides.
gen_haproxy() {
	local d=$WORK/haproxy
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    option forwardfor
    timeout connect 2s
    timeout client 60s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$PORT_HAPROXY
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /healthz
    server v4 127.0.0.1:$PORT_BACKEND check inter 1s
    server v6 ipv6@::1:$PORT_BACKEND check inter 1s
CONF
}

# gen_nginx writes nginx.conf: one worker, round robin over the backend's two
# addresses with upstream keep-alive, no access log, temp paths in $WORK.
gen_nginx() {
	local d=$WORK/nginx
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream be {
        server 127.0.0.1:$PORT_BACKEND;
        server [::1]:$PORT_BACKEND;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PORT_NGINX;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
}
