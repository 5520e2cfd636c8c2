# bench/lib/measure.sh: runs dnsperf and wrk against one server and records
# parsed figures in $WORK/results.tsv as "test<TAB>server<TAB>round<TAB>metric<TAB>value".
# Sourced by bench/run.sh.
# shellcheck shell=bash

# record TEST SERVER ROUND METRIC VALUE appends one figure.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$WORK/results.tsv"; }

# dnsperf_cmd PORT SECONDS QPS sets CMD to the dnsperf command line (load
# generator pinned to $LOADGEN_CPU).
dnsperf_cmd() {
	CMD=(taskset -c "$LOADGEN_CPU" dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" \
		-l "$2" -c "$DNS_CLIENTS" -T 1 -q "$DNS_OUTSTANDING" -t 2 -Q "$3" -E "8:$ECS_HEX")
}

# run_dnsperf SERVER PORT SECONDS QPS OUT runs dnsperf and reads the server's
# CPU ticks around it; prints "qps completed lost ticks avg_response rcodes".
run_dnsperf() {
	local server=$1 port=$2 secs=$3 qps=$4 out=$5 t0 t1
	local pid=${PID_OF[$server]}
	t0=$(cpu_ticks "$pid")
	dnsperf_cmd "$port" "$secs" "$qps"
	timeout $((secs + 30)) "${CMD[@]}" >"$out" 2>&1 || true
	t1=$(cpu_ticks "$pid")
	alive "$server" || return 1
	awk -v ticks=$((t1 - t0)) '
		/Queries completed:/ { completed = $3 }
		/Queries lost:/      { lost = $3 }
		/Queries per second:/ { qps = $4 }
		/Average packet size:/ { resp = $7 }
		/Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, "="); rc = $0 }
		END {
			if (qps == "") { exit 1 }
			printf "%s %s %s %s %s %s\n", qps, completed, lost, ticks, resp, rc
		}' "$out" || {
		echo "error: could not parse dnsperf output for $server:" >&2
		tail -n 20 "$out" >&2
		return 1
	}
}

# dns_throughput SERVER PORT ROUND measures queries/s at the highest load.
dns_throughput() {
	local qps completed lost ticks resp rc
	read -r qps completed lost ticks resp rc < <(run_dnsperf "$1" "$2" "$DURATION" "$DNS_QPS_MAX" \
		"$WORK/out/dns-tput-$1-$3.txt") || return 1
	record dns "$1" "$3" qps "$qps"
	record dns "$1" "$3" lost "$lost"
	record dns "$1" "$3" resp "$resp"
	record dns "$1" "$3" rcodes "$rc"
	printf '  %-9s %10.0f q/s  lost %s\n' "$1" "$qps" "$lost"
}

# dns_cpu SERVER PORT ROUND measures server CPU microseconds per answered
# query at the fixed offered load $CPU_QPS.
dns_cpu() {
	local qps completed lost ticks resp rc us
	read -r qps completed lost ticks resp rc < <(run_dnsperf "$1" "$2" "$DURATION" "$CPU_QPS" \
		"$WORK/out/dns-cpu-$1-$3.txt") || return 1
	us=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$completed" 'BEGIN { printf "%.3f", (n > 0) ? t * 1e6 / hz / n : 0 }')
	record dnscpu "$1" "$3" us "$us"
	record dnscpu "$1" "$3" qps "$qps"
	record dnscpu "$1" "$3" lost "$lost"
	printf '  %-9s %8s us CPU/query at %.0f q/s  lost %s\n' "$1" "$us" "$qps" "$lost"
}

# wrk_cmd PORT SECONDS sets CMD to the wrk command line.
wrk_cmd() {
	CMD=(taskset -c "$LOADGEN_CPU" wrk -t1 -c"$WRK_CONNS" -d"$2"s --latency \
		-H "Host: $SERVICE_HOST" "http://127.0.0.1:$1/")
}

# proxy_run SERVER PORT ROUND measures requests/s, latency p50/p99, errors
# and the proxy's CPU microseconds per request at wrk's closed-loop load.
proxy_run() {
	local server=$1 port=$2 round=$3 out=$WORK/out/http-$1-$3.txt t0 t1 line
	local pid=${PID_OF[$server]}
	t0=$(cpu_ticks "$pid")
	wrk_cmd "$port" "$DURATION"
	timeout $((DURATION + 30)) "${CMD[@]}" >"$out" 2>&1 || true
	t1=$(cpu_ticks "$pid")
	alive "$server" || return 1
	line=$(awk -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1000
			return v
		}
		/requests in/ { n = $1 }
		/Requests\/sec:/ { rps = $2 }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { bad += $5 }
		/Socket errors:/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
		END {
			if (rps == "") { exit 1 }
			printf "%s %.3f %.3f %d %.3f\n", rps, p50, p99, bad, (n > 0) ? ticks * 1e6 / hz / n : 0
		}' "$out") || {
		echo "error: could not parse wrk output for $server:" >&2
		tail -n 20 "$out" >&2
		return 1
	}
	local rps p50 p99 bad us
	read -r rps p50 p99 bad us <<<"$line"
	record http "$server" "$round" rps "$rps"
	record http "$server" "$round" p50 "$p50"
	record http "$server" "$round" p99 "$p99"
	record http "$server" "$round" errors "$bad"
	record http "$server" "$round" us "$us"
	printf '  %-9s %10.0f req/s  p50 %s ms  p99 %s ms  CPU %s us/req  errors %s\n' "$server" "$rps" "$p50" "$p99" "$us" "$bad"
}
