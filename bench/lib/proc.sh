# bench/lib/proc.sh: ports, pinned processes, readiness and CPU accounting.
# Sourced by bench/run.sh.
# shellcheck shell=bash

declare -a STARTED_PIDS=()
declare -A PID_OF=()
USED_PORTS=" "
CLK_TCK=$(getconf CLK_TCK)

# alloc_port VAR picks a free loopback port (not bound in TCP or UDP, v4 or
# v6, and not handed out before) and stores it in VAR.
alloc_port() {
	local p hex
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		printf -v hex ':%04X ' "$p"
		if ! cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | grep -q "$hex"; then
			USED_PORTS+="$p "
			printf -v "$1" '%s' "$p"
			return
		fi
	done
}

# start NAME CPU CMD... starts CMD pinned to CPU in the background, logging
# to $WORK/logs/NAME.log, and records its PID for cleanup and accounting.
start() {
	local name=$1 cpu=$2
	shift 2
	mkdir -p "$WORK/logs"
	taskset -c "$cpu" "$@" >"$WORK/logs/$name.log" 2>&1 &
	PID_OF[$name]=$!
	STARTED_PIDS+=("$!")
}

# alive NAME fails (showing the log) when NAME's process has exited.
alive() {
	if ! kill -0 "${PID_OF[$1]}" 2>/dev/null; then
		echo "error: $1 exited; last lines of its log:" >&2
		tail -n 20 "$WORK/logs/$1.log" >&2
		return 1
	fi
}

# stop_all terminates every process this run started, by PID, then reaps.
stop_all() {
	local pid i
	for pid in "${STARTED_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for ((i = 0; i < 30; i++)); do
		local left=0
		for pid in "${STARTED_PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && left=1
		done
		((left)) || break
		sleep 0.1
	done
	for pid in "${STARTED_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}

# wait_dns NAME PORT waits up to 15 s until the server answers www A.
wait_dns() {
	local i
	for ((i = 0; i < 150; i++)); do
		alive "$1" || return 1
		if [[ $(dig +short +time=1 +tries=1 -p "$2" @127.0.0.1 "www.$ZONE" A 2>/dev/null) == 127.0.0.1 ]]; then
			return 0
		fi
		sleep 0.1
	done
	echo "error: $1 did not answer DNS on 127.0.0.1:$2 within 15 s" >&2
	tail -n 20 "$WORK/logs/$1.log" >&2
	return 1
}

# wait_http NAME PORT [SECONDS] waits until a request for the service host
# through the proxy returns the backend's "ok".
wait_http() {
	local i n=$((${3:-15} * 10))
	for ((i = 0; i < n; i++)); do
		alive "$1" || return 1
		if [[ $(curl -s -m 1 -H "Host: $SERVICE_HOST" "http://127.0.0.1:$2/" 2>/dev/null) == ok ]]; then
			return 0
		fi
		sleep 0.1
	done
	echo "error: $1 did not proxy to the backend on 127.0.0.1:$2 within ${3:-15} s" >&2
	tail -n 20 "$WORK/logs/$1.log" >&2
	return 1
}

# cpu_ticks PID prints utime+stime (clock ticks) of PID and its children
# (nginx's worker runs under its master).
cpu_ticks() {
	local total=0 pid stat rest f
	local -a pids=("$1")
	mapfile -t -O 1 pids < <(pgrep -P "$1" 2>/dev/null || true)
	for pid in "${pids[@]}"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		rest=${stat##*) } # fields after "comm"; field 3 (state) comes first
		read -ra f <<<"$rest"
		total=$((total + f[11] + f[12])) # fields 14 (utime) and 15 (stime)
	done
	echo "$total"
}

# check_dns_answers NAME PORT compares a server's answers for a few names of
# the mix with the expected ones before it is measured, so that a fast wrong
# answer is never mistaken for a fast server. Mismatches are printed and
# appended to NOTES (www A was already required by wait_dns).
check_dns_answers() {
	local name=$1 port=$2 qname qtype want got
	local -a q=(+time=2 +tries=1 -p "$port" @127.0.0.1 +subnet=$ECS_SUBNET)
	while read -r qname qtype want; do
		if [[ $qtype == STATUS ]]; then
			got=$(dig "${q[@]}" "$qname" A | grep -o 'status: [A-Z]*' | cut -d' ' -f2)
		else
			got=$(dig +short "${q[@]}" "$qname" "$qtype" | sort | tr '\n' ' ')
			got=${got% }
		fi
		if [[ $got != "$want" ]]; then
			NOTES+=("$name answers $qname $qtype with '$got' (expected '$want')")
			echo "warning: ${NOTES[-1]}" >&2
		fi
	done <<LIST
www.$ZONE A 127.0.0.1
www.$ZONE AAAA ::1
api.$ZONE AAAA ::1
shop.$ZONE A 127.0.0.1 www.$ZONE.
$ZONE MX 10 mail.$ZONE.
nx1.$ZONE STATUS NXDOMAIN
LIST
}
