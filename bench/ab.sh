#!/usr/bin/env bash
# bench/ab.sh: A/B of gslb builds on the configs of a kept bench/run.sh work
# directory: every build runs at once (each on its own ports), pinned to the
# server CPU, and is measured in turn, round after round, so that the
# machine's drift falls on all of them alike. For DNS, gdnsd from the same
# work directory is measured in each round as the reference. It measures
# with bench/run.sh's own functions (bench/lib).
#
# Usage: bench/ab.sh KEPT dns|http BINARY...
#   KEPT     a directory kept by KEEP_WORK=1 bench/run.sh (configs, zone,
#            queries, the backend)
#   dns      server CPU µs per answered query at a fixed offered load
#   http     proxy CPU µs per request and requests/s under wrk
#   BINARY   gslb builds (go build -o /tmp/a ./cmd/gslb, ...) or scripts
#            that exec one with an environment of their own
# Environment: ROUNDS (6), DURATION (5 s), CPU_QPS (40000), DNS_CLIENTS (8),
#   DNS_OUTSTANDING (100), WRK_CONNS (32), SERVER_CPU (0), LOADGEN_CPU (1).
# Prints every measurement, then the medians per build (b0, b1, ...).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -lt 3 || ! -f ${1:-}/gslb/gslb.yaml || ($2 != dns && $2 != http) ]]; then
	sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
KEPT=$1 MODE=$2
shift 2
BINS=("$@")
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-5}
CPU_QPS=${CPU_QPS:-40000}
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-100}
WRK_CONNS=${WRK_CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}

# shellcheck source=bench/lib/gen.sh
source "$BENCH_DIR/lib/gen.sh"
# shellcheck source=bench/lib/proc.sh
source "$BENCH_DIR/lib/proc.sh"
# shellcheck source=bench/lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
# shellcheck source=bench/lib/report.sh
source "$BENCH_DIR/lib/report.sh"

# The measurements' own work directory (results.tsv, logs, raw outputs),
# with the kept query file.
WORK=$(mktemp -d /tmp/gslb-ab.XXXXXX)
cleanup() {
	stop_all
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/out"
ln -s "$KEPT/queries.txt" "$WORK/queries.txt"

# The backend the gslb config's health checks and proxy use, on its port.
backend_port=$(grep -o 'port: [0-9]*' "$KEPT/gslb/gslb.yaml" | head -n 1 | cut -d' ' -f2)
start backend "$LOADGEN_CPU" "$KEPT/bin/backend" -listen "127.0.0.1:$backend_port,[::1]:$backend_port"

# Each build gets the kept gslb config with its own ports.
declare -A DNS_PORT=() HTTP_PORT=()
listen_of() { sed -n "/^$1:/,/^[a-z]/s/.*listen: \[*\"*\(127.0.0.1:[0-9]*\).*/\1/p" "$KEPT/gslb/gslb.yaml"; }
orig_dns=$(listen_of dns) orig_admin=$(listen_of admin) orig_http=$(listen_of proxy)
for i in "${!BINS[@]}"; do
	alloc_port "DNS_PORT[b$i]"
	alloc_port "HTTP_PORT[b$i]"
	alloc_port admin_port
	sed -e "s/$orig_dns/127.0.0.1:${DNS_PORT[b$i]}/" -e "s/$orig_admin/127.0.0.1:$admin_port/" \
		-e "s/$orig_http/127.0.0.1:${HTTP_PORT[b$i]}/" "$KEPT/gslb/gslb.yaml" >"$WORK/gslb$i.yaml"
	start "b$i" "$SERVER_CPU" "${BINS[i]}" serve -config "$WORK/gslb$i.yaml"
done
SERVERS=$(for i in "${!BINS[@]}"; do printf 'b%s ' "$i"; done)
if [[ $MODE == dns ]]; then
	start gdnsd "$SERVER_CPU" gdnsd -c "$KEPT/gdnsd" start
	DNS_PORT[gdnsd]=$(grep -o 'listen => \[ 127.0.0.1:[0-9]*' "$KEPT/gdnsd/config" | grep -o '[0-9]*$')
	SERVERS+=gdnsd
fi
for s in $SERVERS; do
	if [[ $MODE == dns ]]; then
		wait_dns "$s" "${DNS_PORT[$s]}"
	else
		wait_http "$s" "${HTTP_PORT[$s]}"
	fi
done
sleep 2 # gslb's health checks settle (rise × interval)

for ((r = 1; r <= ROUNDS; r++)); do
	for s in $SERVERS; do
		if [[ $MODE == dns ]]; then
			dns_cpu "$s" "${DNS_PORT[$s]}" "$r"
		else
			proxy_run "$s" "${HTTP_PORT[$s]}" "$r"
		fi
	done
done

echo "medians over $ROUNDS rounds:"
for s in $SERVERS; do
	what=gdnsd
	[[ $s == b* ]] && what=${BINS[${s#b}]}
	if [[ $MODE == dns ]]; then
		printf '  %-6s %8s us CPU/query  %s\n' "$s" "$(stat median dnscpu "$s" us)" "$what"
	else
		printf '  %-6s %8s us CPU/request %8s req/s  %s\n' "$s" "$(stat median http "$s" us)" \
			"$(stat median http "$s" rps)" "$what"
	fi
done
