#!/usr/bin/env bash
# bench/ab.sh: A/B of gslb builds on the configs of a kept bench/run.sh work
# directory: every build runs at once (each on its own ports), pinned to the
# server CPU, and is measured in turn, round after round, so that the
# machine's drift falls on all of them alike. For DNS, gdnsd from the same
# work directory is measured in each round as the reference.
#
# Usage: bench/ab.sh WORK dns|http BINARY...
#   WORK     a directory kept by KEEP_WORK=1 bench/run.sh (configs, zone,
#            queries, the backend)
#   dns      server CPU µs per answered query at a fixed offered load
#   http     proxy CPU µs per request and requests/s under wrk
#   BINARY   gslb builds (go build -o /tmp/a ./cmd/gslb, ...) or scripts
#            that exec one with an environment of their own
# Environment: ROUNDS (6), DURATION (5 s), CPU_QPS (40000), WRK_CONNS (32),
#   SERVER_CPU (0), LOADGEN_CPU (1).
# Prints one line per measurement ("b0 8.300 us/query lost 0", ...) and the
# medians per build at the end.
set -euo pipefail

if [[ $# -lt 3 || ! -f ${1:-}/gslb/gslb.yaml || ( $2 != dns && $2 != http ) ]]; then
	sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
fi
WORK=$1 MODE=$2
shift 2
BINS=("$@")
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-5}
CPU_QPS=${CPU_QPS:-40000}
WRK_CONNS=${WRK_CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
CLK_TCK=$(getconf CLK_TCK)
ECS_HEX=00011800c63364 # ECS 198.51.100.0/24, as bench/run.sh sends
SERVICE_HOST=www.ecommerce.example.com

OUT=$(mktemp -d /tmp/gslb-ab.XXXXXX)
declare -a PIDS=()
cleanup() {
	kill "${PIDS[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$OUT"
}
trap cleanup EXIT

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The backend the gslb config's health checks and proxy use, on its port.
backend_port=$(grep -o 'port: [0-9]*' "$WORK/gslb/gslb.yaml" | head -n 1 | cut -d' ' -f2)
taskset -c "$LOADGEN_CPU" "$WORK/bin/backend" -listen "127.0.0.1:$backend_port,[::1]:$backend_port" \
	>"$OUT/backend.log" 2>&1 &
PIDS+=($!)

# Each build gets the work directory's gslb config with its own ports.
declare -a GPID=() DNS_PORT=() HTTP_PORT=()
orig_dns=$(sed -n '/^dns:/,/^[a-z]/s/.*listen: \["\(127.0.0.1:[0-9]*\)"\].*/\1/p' "$WORK/gslb/gslb.yaml")
orig_admin=$(sed -n '/^admin:/,/^[a-z]/s/.*listen: \(127.0.0.1:[0-9]*\).*/\1/p' "$WORK/gslb/gslb.yaml")
orig_http=$(sed -n '/^proxy:/,/^[a-z]/s/.*listen: \["\(127.0.0.1:[0-9]*\)"\].*/\1/p' "$WORK/gslb/gslb.yaml")
for i in "${!BINS[@]}"; do
	DNS_PORT[i]=$((41000 + i)) HTTP_PORT[i]=$((41100 + i))
	sed -e "s/$orig_dns/127.0.0.1:${DNS_PORT[i]}/" -e "s/$orig_admin/127.0.0.1:$((41200 + i))/" \
		-e "s/$orig_http/127.0.0.1:${HTTP_PORT[i]}/" "$WORK/gslb/gslb.yaml" >"$OUT/gslb$i.yaml"
	taskset -c "$SERVER_CPU" "${BINS[i]}" serve -config "$OUT/gslb$i.yaml" >"$OUT/gslb$i.log" 2>&1 &
	GPID[i]=$!
	PIDS+=($!)
done
if [[ $MODE == dns ]]; then
	taskset -c "$SERVER_CPU" gdnsd -c "$WORK/gdnsd" -f start >"$OUT/gdnsd.log" 2>&1 &
	PIDS+=($!)
	gdnsd_port=$(grep -o 'listen => \[ 127.0.0.1:[0-9]*' "$WORK/gdnsd/config" | grep -o '[0-9]*$')
fi
sleep 4 # listeners up, health checks settled (rise 2 × 1 s)
for i in "${!BINS[@]}"; do
	if ! kill -0 "${GPID[i]}" 2>/dev/null; then
		echo "error: ${BINS[i]} exited:" >&2
		tail -n 20 "$OUT/gslb$i.log" >&2
		exit 1
	fi
done
gdnsd_pid=""
if [[ $MODE == dns ]]; then
	gdnsd_pid=$(pgrep -n -x gdnsd)
fi

# dns_run NAME PID PORT prints "NAME µs us/query lost N".
dns_run() {
	local t0 t1
	t0=$(ticks "$2")
	taskset -c "$LOADGEN_CPU" dnsperf -s 127.0.0.1 -p "$3" -d "$WORK/queries.txt" -l "$DURATION" \
		-c 8 -T 1 -q 100 -t 2 -Q "$CPU_QPS" -E "8:$ECS_HEX" >"$OUT/dnsperf.txt" 2>&1 || true
	t1=$(ticks "$2")
	awk -v n="$1" -v t=$((t1 - t0)) -v hz="$CLK_TCK" '
		/Queries completed:/ { c = $3 } /Queries lost:/ { l = $3 }
		END { if (c > 0) printf "%-6s %8.3f us/query lost %s\n", n, t * 1e6 / hz / c, l }' "$OUT/dnsperf.txt"
}

# http_run NAME PID PORT prints "NAME µs us/request rps N errors N".
http_run() {
	local t0 t1
	t0=$(ticks "$2")
	taskset -c "$LOADGEN_CPU" wrk -t1 -c"$WRK_CONNS" -d"$DURATION"s -H "Host: $SERVICE_HOST" \
		"http://127.0.0.1:$3/" >"$OUT/wrk.txt" 2>&1 || true
	t1=$(ticks "$2")
	awk -v n="$1" -v t=$((t1 - t0)) -v hz="$CLK_TCK" '
		/requests in/ { c = $1 } /Requests\/sec:/ { r = $2 } /Non-2xx/ { e += $5 }
		/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
		END { if (c > 0) printf "%-6s %8.3f us/request rps %.0f errors %d\n", n, t * 1e6 / hz / c, r, e }' "$OUT/wrk.txt"
}

for ((r = 1; r <= ROUNDS; r++)); do
	for i in "${!BINS[@]}"; do
		if [[ $MODE == dns ]]; then
			dns_run "b$i" "${GPID[i]}" "${DNS_PORT[i]}"
		else
			http_run "b$i" "${GPID[i]}" "${HTTP_PORT[i]}"
		fi
	done
	if [[ $MODE == dns ]]; then
		dns_run gdnsd "$gdnsd_pid" "$gdnsd_port"
	fi
done | tee "$OUT/results.txt"

# median NAME prints the median of NAME's figures.
median() {
	awk -v n="$1" '$1 == n { print $2 }' "$OUT/results.txt" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo "medians over $ROUNDS rounds:"
for i in "${!BINS[@]}"; do
	printf '  %-6s %s  %s\n' "b$i" "$(median "b$i")" "${BINS[i]}"
done
if [[ $MODE == dns ]]; then
	printf '  %-6s %s\n' gdnsd "$(median gdnsd)"
fi
