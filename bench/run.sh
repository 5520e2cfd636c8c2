#!/usr/bin/env bash
# bench/run.sh: benchmarks gslb against Knot DNS, gdnsd and a minimal
# miekg/dns server (DNS), and against HAProxy, nginx and a bare
# httputil.ReverseProxy (HTTP), on loopback, and prints medians and ratios
# against gslb measured in the same run. See bench/README.md.
#
# Usage: bench/run.sh [--quick] [--no-record]
#   --quick      one round of 3 s (smoke run; not recorded unless RECORD=1)
#   --no-record  do not append the tables to bench/RESULTS.md
# Environment: ROUNDS (3), DURATION (10 s), WARMUP (2 s), CPU_QPS (40000, or 60% of the
#   slowest warm-up throughput when lower),
#   DNS_QPS_MAX (1000000), DNS_CLIENTS (8), DNS_OUTSTANDING (100),
#   WRK_CONNS (32), SERVER_CPU (0), LOADGEN_CPU (1), RECORD (1),
#   NOTE (free text recorded with the results), KEEP_WORK (keep temp dir).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
COMMAND="$0${*:+ $*}"

QUICK=0
RECORD=${RECORD:-}
for arg in "$@"; do
	case $arg in
	--quick) QUICK=1 ;;
	--no-record) RECORD=0 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "unknown argument: $arg (try --help)" >&2
		exit 2
		;;
	esac
done
if ((QUICK)); then
	ROUNDS=1 DURATION=3 WARMUP=1
	RECORD=${RECORD:-0}
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RECORD=${RECORD:-1}
CPU_QPS_AUTO=0
if [[ -z ${CPU_QPS:-} ]]; then
	CPU_QPS=40000
	CPU_QPS_AUTO=1
fi
DNS_QPS_MAX=${DNS_QPS_MAX:-1000000}
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-100}
WRK_CONNS=${WRK_CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
DNS_SERVERS="gslb knot gdnsd minidns"
PROXIES="gslb haproxy nginx bareproxy"
declare -a NOTES=()

# --- prerequisites: install nothing, say what is missing --------------------
missing=()
declare -A PKG=([dnsperf]=dnsperf [knotd]=knot [gdnsd]=gdnsd [wrk]=wrk [haproxy]=haproxy
	[nginx]=nginx [taskset]=util-linux [dig]=bind9-dnsutils [curl]=curl [pgrep]=procps)
for tool in dnsperf knotd gdnsd wrk haproxy nginx taskset dig curl pgrep; do
	command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 ||
		missing+=("${PKG[$tool]}")
done
if ((${#missing[@]})); then
	echo "bench/run.sh needs tools that are not installed. On Debian/Ubuntu:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	echo "bench/run.sh needs Go (see go.mod for the version): https://go.dev/dl/" >&2
	exit 1
fi
PATH=$PATH:/usr/sbin:/sbin
if (($(nproc) < 2)); then
	echo "bench/run.sh needs at least 2 CPUs (server on CPU $SERVER_CPU, load generator on CPU $LOADGEN_CPU)" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/gslb-bench.XXXXXX)
# shellcheck source=bench/lib/gen.sh
source "$BENCH_DIR/lib/gen.sh"
# shellcheck source=bench/lib/proc.sh
source "$BENCH_DIR/lib/proc.sh"
# shellcheck source=bench/lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
# shellcheck source=bench/lib/report.sh
source "$BENCH_DIR/lib/report.sh"

cleanup() {
	stop_all
	if [[ -n ${KEEP_WORK:-} ]]; then
		echo "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/bin" "$WORK/out"
: >"$WORK/results.tsv"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (work dir $WORK)"
(cd "$REPO" && go build -o "$WORK/bin/" ./bench/cmd/minidns ./bench/cmd/bareproxy ./bench/cmd/backend)
GSLB_OK=1
if ! (cd "$REPO" && go build -o "$WORK/bin/gslb" ./cmd/gslb) 2>"$WORK/gslb-build.log"; then
	cat "$WORK/gslb-build.log" >&2
	if [[ -z ${ALLOW_NO_GSLB:-} ]]; then
		echo "error: ./cmd/gslb does not build (set ALLOW_NO_GSLB=1 to measure the peers alone)" >&2
		exit 1
	fi
	GSLB_OK=0
	UNAVAILABLE[dns/gslb]="not available in this build (cmd/gslb does not build)"
	UNAVAILABLE[http/gslb]=${UNAVAILABLE[dns/gslb]}
fi

# --- configuration ----------------------------------------------------------
for v in PORT_BACKEND PORT_KNOT PORT_GDNSD PORT_MINIDNS PORT_GSLB PORT_GSLB_ADMIN PORT_GSLB_HTTP \
	PORT_HAPROXY PORT_NGINX PORT_BAREPROXY; do
	alloc_port "$v"
done
gen_zone
gen_queries
gen_knot
gen_gdnsd
gen_gslb
gen_haproxy
gen_nginx

# --- servers: all pinned to SERVER_CPU; the backend shares LOADGEN_CPU ------
echo "== starting servers (servers on CPU $SERVER_CPU, load generators and backend on CPU $LOADGEN_CPU)"
start backend "$LOADGEN_CPU" "$WORK/bin/backend" -listen "127.0.0.1:$PORT_BACKEND,[::1]:$PORT_BACKEND"
start knot "$SERVER_CPU" knotd -c "$WORK/knot/knot.conf"
start gdnsd "$SERVER_CPU" gdnsd -c "$WORK/gdnsd" start
start minidns "$SERVER_CPU" "$WORK/bin/minidns" -listen "127.0.0.1:$PORT_MINIDNS" \
	-zone "$WORK/zone/$ZONE" -origin "$ZONE"
start haproxy "$SERVER_CPU" haproxy -db -f "$WORK/haproxy/haproxy.cfg"
start nginx "$SERVER_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
start bareproxy "$SERVER_CPU" "$WORK/bin/bareproxy" -listen "127.0.0.1:$PORT_BAREPROXY" \
	-upstream "http://127.0.0.1:$PORT_BACKEND,http://[::1]:$PORT_BACKEND"
if ((GSLB_OK)); then
	start gslb "$SERVER_CPU" "$WORK/bin/gslb" serve -config "$WORK/gslb/gslb.yaml"
fi

declare -A DNS_PORT=([gslb]=$PORT_GSLB [knot]=$PORT_KNOT [gdnsd]=$PORT_GDNSD [minidns]=$PORT_MINIDNS)
declare -A HTTP_PORT=([gslb]=$PORT_GSLB_HTTP [haproxy]=$PORT_HAPROXY [nginx]=$PORT_NGINX [bareproxy]=$PORT_BAREPROXY)
for s in $DNS_SERVERS; do
	[[ -n ${UNAVAILABLE[dns/$s]:-} ]] && continue
	wait_dns "$s" "${DNS_PORT[$s]}"
	check_dns_answers "$s" "${DNS_PORT[$s]}"
done
for s in $PROXIES; do
	[[ -n ${UNAVAILABLE[http/$s]:-} ]] && continue
	if [[ $s == gslb ]]; then
		# The proxy may not be wired into this build: measure DNS anyway.
		if ! wait_http gslb "$PORT_GSLB_HTTP" 10; then
			UNAVAILABLE[http/gslb]="not available in this build (no proxy answer on the configured listener)"
			NOTES+=("gslb proxy: ${UNAVAILABLE[http/gslb]}")
		fi
		continue
	fi
	wait_http "$s" "${HTTP_PORT[$s]}"
done
# gslb's health checks need rise × interval to settle before measuring.
sleep 2

measured() { [[ -z ${UNAVAILABLE[$1/$2]:-} ]]; }

# rotate N WORDS... prints WORDS rotated left by N (interleaving order).
rotate() {
	local n=$1
	shift
	local -a w=("$@")
	n=$((n % ${#w[@]}))
	echo "${w[@]:n}" "${w[@]:0:n}"
}

# --- warm-up ------------------------------------------------------------------
echo "== warm-up (${WARMUP} s each)"
for s in $DNS_SERVERS; do
	measured dns "$s" || continue
	line=$(run_dnsperf "$s" "${DNS_PORT[$s]}" "$WARMUP" "$DNS_QPS_MAX" "$WORK/out/warm-dns-$s.txt")
	warm_min=$(awk -v a="${warm_min:-}" -v b="${line%% *}" 'BEGIN { print (a == "" || b < a) ? b : a }')
done
# The CPU measurement needs a load every server really answers: unless
# CPU_QPS is given, use 40000 or 60% of the slowest warm-up throughput.
if ((CPU_QPS_AUTO)); then
	CPU_QPS=$(awk -v m="${warm_min:-0}" 'BEGIN { q = int(m * 0.6 / 1000) * 1000; if (q > 40000) q = 40000; if (q < 1000) q = 1000; print q }')
	echo "   fixed load for the CPU measurement: $CPU_QPS q/s (slowest warm-up: ${warm_min%.*} q/s)"
fi
for s in $PROXIES; do
	measured http "$s" || continue
	wrk_cmd "${HTTP_PORT[$s]}" "$WARMUP"
	timeout $((WARMUP + 30)) "${CMD[@]}" >"$WORK/out/warm-http-$s.txt" 2>&1 || true
done

# --- rounds -------------------------------------------------------------------
for ((round = 1; round <= ROUNDS; round++)); do
	echo "== round $round/$ROUNDS: DNS throughput (${DURATION} s each)"
	for s in $(rotate "$round" $DNS_SERVERS); do
		measured dns "$s" && dns_throughput "$s" "${DNS_PORT[$s]}" "$round"
	done
	echo "== round $round/$ROUNDS: DNS CPU at $CPU_QPS q/s offered"
	for s in $(rotate "$round" $DNS_SERVERS); do
		measured dns "$s" && dns_cpu "$s" "${DNS_PORT[$s]}" "$round"
	done
	echo "== round $round/$ROUNDS: proxies (wrk -t1 -c$WRK_CONNS, ${DURATION} s each)"
	for s in $(rotate "$round" $PROXIES); do
		measured http "$s" && proxy_run "$s" "${HTTP_PORT[$s]}" "$round"
	done
done

# --- report -------------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
dnsperf_cmd PORT "$DURATION" QPS
DNSPERF_LINE=$(printf '%q ' "${CMD[@]}")
DNSPERF_LINE=${DNSPERF_LINE//$WORK\//}
DNSPERF_LINE=${DNSPERF_LINE% }
wrk_cmd PORT "$DURATION"
WRK_LINE=$(printf '%q ' "${CMD[@]}")
WRK_LINE=${WRK_LINE% }

version() { "$@" 2>&1 | head -n 1 | tr -s ' ' | sed 's/[[:space:]]*$//'; }
report() {
	echo "### $(date -u '+%Y-%m-%d %H:%M UTC') — $ROUNDS round(s) × ${DURATION} s"
	echo
	echo "- Command: \`$COMMAND\` (ROUNDS=$ROUNDS DURATION=$DURATION CPU_QPS=$CPU_QPS DNS_CLIENTS=$DNS_CLIENTS DNS_OUTSTANDING=$DNS_OUTSTANDING WRK_CONNS=$WRK_CONNS)"
	echo "- Tree: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$REPO" && [[ -n $(git status --porcelain 2>/dev/null) ]] && echo ' (with uncommitted changes)')"
	echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r); load average $LOAD_BEFORE before, $LOAD_AFTER after"
	echo "- Versions: $( ((GSLB_OK)) && "$WORK/bin/gslb" version 2>/dev/null | head -n 1 || echo "gslb n/a"); $(go version | cut -d" " -f3); $(version knotd -V); gdnsd $(gdnsd -h 2>&1 | grep -m1 -o "gdnsd version [^ ]*" | cut -d" " -f3 || true); dnsperf $(dnsperf -h 2>&1 | grep -m1 -o 'Version [^ ]*' | cut -d' ' -f2 || true); $(version haproxy -v | cut -d" " -f1-3); $(version nginx -v); $(version wrk -v | cut -d' ' -f1-2)"
	echo "- Load: servers pinned to CPU $SERVER_CPU, load generators and the shared backend to CPU $LOADGEN_CPU; DNS: \`$DNSPERF_LINE\` (ECS $ECS_SUBNET on every query; mix: 60% service A/AAAA, 30% static, 10% NXDOMAIN); HTTP: \`$WRK_LINE\`"
	if [[ -n ${NOTE:-} ]]; then
		echo "- Note: $NOTE"
	fi
	for n in "${NOTES[@]}"; do
		echo "- Warning: $n"
	done
	echo
	dns_table
	echo
	http_table
	echo
	targets_check
	echo
}
TABLES=$(report)
echo
echo "$TABLES"
if [[ $RECORD == 1 ]]; then
	printf '%s\n\n' "$TABLES" >>"$BENCH_DIR/RESULTS.md"
	echo "appended to $BENCH_DIR/RESULTS.md"
fi
