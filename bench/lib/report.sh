# bench/lib/report.sh: turns $WORK/results.tsv into markdown tables with
# medians over the rounds and ratios against gslb from the same run.
# Sourced by bench/run.sh.
# shellcheck shell=bash

declare -A UNAVAILABLE=() # "dns/server" or "http/server" -> reason

# values TEST SERVER METRIC prints the per-round values, one a line.
values() {
	awk -F'\t' -v t="$1" -v s="$2" -v m="$3" '$1 == t && $2 == s && $4 == m { print $5 }' "$WORK/results.tsv"
}

# stat KIND TEST SERVER METRIC prints the median, min, max or sum ("" if none).
stat() {
	values "$2" "$3" "$4" | sort -g | awk -v k="$1" '
		{ a[NR] = $1; s += $1 }
		END {
			if (NR == 0) exit
			if (k == "median") print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			if (k == "min") print a[1]
			if (k == "max") print a[NR]
			if (k == "sum") print s
		}'
}

# fmt FORMAT VALUE prints VALUE with a printf format, or "–" when empty.
fmt() { if [[ -n $2 ]]; then printf "$1" "$2"; else printf '–'; fi; }

# ratio A B prints A/B with two decimals, or "n/a".
ratio() {
	if [[ -n $1 && -n $2 ]] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else
		printf 'n/a'
	fi
}

# per_cpu US prints the queries/s one CPU would sustain at US µs per query.
per_cpu() { [[ -n $1 ]] && awk -v u="$1" 'BEGIN { if (u > 0) print 1e6 / u }'; }

# dns_table prints the DNS table.
dns_table() {
	local s g_qps g_us qps us
	g_qps=$(stat median dns gslb qps)
	g_us=$(stat median dnscpu gslb us)
	echo "| DNS server | queries/s median (min–max) | gslb ÷ server | lost, all rounds (max load / fixed load) | server CPU µs/query at $CPU_QPS q/s offered | gslb ÷ server | q/s one CPU sustains at that cost (10⁶ ÷ µs) | answered q/s at that load | avg response bytes | response codes (last round) |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for s in $DNS_SERVERS; do
		if [[ -n ${UNAVAILABLE[dns/$s]:-} ]]; then
			echo "| $s | ${UNAVAILABLE[dns/$s]} | | | | | | | | |"
			continue
		fi
		qps=$(stat median dns "$s" qps)
		us=$(stat median dnscpu "$s" us)
		printf '| %s | %s (%s–%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$s" \
			"$(fmt %.0f "$qps")" "$(fmt %.0f "$(stat min dns "$s" qps)")" "$(fmt %.0f "$(stat max dns "$s" qps)")" \
			"$(ratio "$g_qps" "$qps")" \
			"$(fmt %.0f "$(stat sum dns "$s" lost)") / $(fmt %.0f "$(stat sum dnscpu "$s" lost)")" \
			"$(fmt %.2f "$us")" "$(ratio "$g_us" "$us")" "$(fmt %.0f "$(per_cpu "$us")")" \
			"$(fmt %.0f "$(stat median dnscpu "$s" qps)")" "$(fmt %.0f "$(stat median dns "$s" resp)")" \
			"$(values dns "$s" rcodes | tail -n 1 | tr ',' ' ')"
	done
}

# http_table prints the proxy table.
http_table() {
	local s g_rps g_us rps us
	g_rps=$(stat median http gslb rps)
	g_us=$(stat median http gslb us)
	echo "| proxy | requests/s median (min–max) | gslb ÷ proxy | p50 ms | p99 ms | proxy CPU µs/request | gslb ÷ proxy | non-2xx + socket errors (all rounds) |"
	echo "|---|---|---|---|---|---|---|---|"
	for s in $PROXIES; do
		if [[ -n ${UNAVAILABLE[http/$s]:-} ]]; then
			echo "| $s | ${UNAVAILABLE[http/$s]} | | | | | | |"
			continue
		fi
		rps=$(stat median http "$s" rps)
		us=$(stat median http "$s" us)
		printf '| %s | %s (%s–%s) | %s | %s | %s | %s | %s | %s |\n' "$s" \
			"$(fmt %.0f "$rps")" "$(fmt %.0f "$(stat min http "$s" rps)")" "$(fmt %.0f "$(stat max http "$s" rps)")" \
			"$(ratio "$g_rps" "$rps")" "$(fmt %.2f "$(stat median http "$s" p50)")" "$(fmt %.2f "$(stat median http "$s" p99)")" \
			"$(fmt %.1f "$us")" "$(ratio "$g_us" "$us")" "$(fmt %.0f "$(stat sum http "$s" errors)")"
	done
}

# round_ratios TEST METRIC A B prints A's value divided by B's for each
# round in which both were measured ("0.91 / 0.89 / 0.71"), or nothing.
round_ratios() {
	awk -F'\t' -v t="$1" -v m="$2" -v a="$3" -v b="$4" '
		$1 == t && $4 == m && $2 == a { va[$3] = $5 }
		$1 == t && $4 == m && $2 == b { vb[$3] = $5 }
		END {
			for (r = 1; r <= 1000; r++) {
				if ((r in va) && (r in vb) && vb[r] > 0) {
					out = out sep sprintf("%.2f", va[r] / vb[r]); sep = " / "
				}
			}
			print out
		}' "$WORK/results.tsv"
}

# target NAME VALUE OP LIMIT [PER_ROUND] prints one line of the targets
# check, with the per-round ratios when given.
target() {
	local verdict rounds=""
	[[ -n ${5:-} ]] && rounds="; per round: $5"
	if [[ $2 == n/a ]]; then
		verdict="not measured"
	elif awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !((op == ">=") ? v >= l : v <= l) }'; then
		verdict=met
	else
		verdict="NOT met"
	fi
	echo "- $1: $2 (target $3 $4${rounds}) — $verdict"
}

# targets_check prints issue 7's targets against this run's ratios.
targets_check() {
	local lost
	echo "Targets (issue 7), from this run:"
	echo
	target "DNS throughput gslb ÷ knot" "$(ratio "$(stat median dns gslb qps)" "$(stat median dns knot qps)")" ">=" 0.9 \
		"$(round_ratios dns qps gslb knot)"
	target "DNS CPU per query gslb ÷ gdnsd" "$(ratio "$(stat median dnscpu gslb us)" "$(stat median dnscpu gdnsd us)")" "<=" 1.25 \
		"$(round_ratios dnscpu us gslb gdnsd)"
	lost=$(stat sum dns gslb lost)
	if [[ -n $lost ]]; then
		lost=$((lost + $(stat sum dnscpu gslb lost)))
	else
		lost=n/a
	fi
	target "gslb lost queries, all runs" "$lost" "<=" 0
	target "proxy throughput gslb ÷ haproxy" "$(ratio "$(stat median http gslb rps)" "$(stat median http haproxy rps)")" ">=" 0.8 \
		"$(round_ratios http rps gslb haproxy)"
	target "proxy throughput gslb ÷ bareproxy" "$(ratio "$(stat median http gslb rps)" "$(stat median http bareproxy rps)")" ">=" 2 \
		"$(round_ratios http rps gslb bareproxy)"
}
