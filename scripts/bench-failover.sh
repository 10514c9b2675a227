#!/bin/bash
# bench-failover.sh - what a program sees of a failover, in figures.  Three
# quorum members and two plain clients on loopback; on one client a probe
# makes one call after another (mkdir, rmdir), on the other a probe looks a
# name up every 5 ms.  The leader is SIGKILLed RUNS times (remounted at
# once, as a supervisor would) at each heartbeat timeout, then cleanly
# unmounted UNMOUNTS times.  For each fault:
#   in flight  from the fault to the completion of the call that was in
#              flight on the first client when it came
#   first new  from the fault to the completion of the first lookup the
#              second client began after it
# printed as min, median, p99 and max beside the heartbeat timeout.  Then,
# at the first heartbeat timeout, LOAD_SECS seconds (default 600) of the
# benchmark workload (fusefs-fsbench, over and over through both clients)
# with no fault: how many elections it saw (the target is none).
#
# Needs root and /dev/fuse.  Usage:
#   scripts/bench-failover.sh [BUILD_DIR] [RUNS] [UNMOUNTS] [HB_MS...]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
RUNS=${2:-20}
UNMOUNTS=${3:-5}
shift 3 2>/dev/null
HBS=${*:-500 2000}

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	echo "SKIP: bench-failover: needs root and /dev/fuse"
	exit 0
fi
T=$(mktemp -d /var/tmp/fusefs-benchfo.XXXXXX)
declare -A PID
PROBES=()
cleanup() {
	local p
	touch "$T/stop"
	for p in "${PROBES[@]}"; do kill "$p" 2>/dev/null; done
	kill_mounts
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { mount_bg "$1" "$2" "$BUILD/fusefs-mount" "$T/$1.log"; }

member() { start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB"; }


# after T_MS FILE: wait (bounded) for a record of FILE that began after T_MS
after() {
	local i
	for ((i = 0; i < 600; i++)); do
		awk -v t="$1" '$1 > t { found = 1 } END { exit !found }' "$2" && return 0
		sleep 0.05
	done
	return 1
}

# the two figures of a fault at T_MS, appended to FILE
figures() {
	awk -v t="$1" '$1 <= t && $2 > t { print $2 - t; exit }' "$T/calls" >>"$2.inflight"
	awk -v t="$1" '$1 > t { print $2 - t; exit }' "$T/lookups" >>"$2.first"
}

# stats FILE: "n min median p99 max" of its numbers
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "0 - - - -"; exit }
		p99 = int(NR * 0.99 + 0.999); if (p99 > NR) p99 = NR
		printf "%d %d %d %d %d\n", NR, v[1], v[int((NR + 1) / 2)], v[p99], v[NR] }'
}

up() {
	local i
	PORT=$((20000 + RANDOM % 20000))
	DEV=$T/meta-$HB.img
	truncate -s 16G "$DEV" # (sparse: the load writes about 300 MiB a run)
	"$BUILD/fusefs-mkfs" -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
		-Q "2,127.0.0.1,$((PORT + 2))" "$DEV" >/dev/null || exit 1
	for i in 0 1 2; do member "$i" || exit 1; done
	start c "metadev_path=$DEV" || exit 1
	start c2 "metadev_path=$DEV" || exit 1
	mkdir -p "$T/c/p" || exit 1
	rm -f "$T/stop" "$T/calls" "$T/lookups"
	"$BUILD/fusefs-writer" -p "$T/c/p" "$T/stop" "$T/calls" 2>>"$T/probe.err" &
	PROBES+=($!)
	"$BUILD/fusefs-writer" -l "$T/c2" "$T/stop" "$T/lookups" 2>>"$T/probe.err" &
	PROBES+=($!)
}

down() {
	local n p
	touch "$T/stop"
	for p in "${PROBES[@]}"; do wait "$p" 2>/dev/null; done
	PROBES=()
	for n in c c2 m0 m1 m2; do
		is_mounted "$T/$n" && fusermount3 -u "$T/$n"
	done
	for n in "${!PID[@]}"; do
		gone "${PID[$n]}" 100 || kill -9 "${PID[$n]}" 2>/dev/null
		unset "PID[$n]"
	done
}

# fault KIND OUT: one failover, its figures appended to OUT.*
fault() {
	local l t
	l=$(wait_leader -1) || { echo "bench-failover: no leader" >&2; return 1; }
	after "$(now_ms)" "$T/calls" || { echo "bench-failover: the probe stopped" >&2; return 1; }
	t=$(now_ms)
	if [ "$1" = kill ]; then
		kill -9 "${PID[m$l]}"
		gone "${PID[m$l]}" 100
		is_mounted "$T/m$l" && fusermount3 -u -z "$T/m$l"
	else
		fusermount3 -u "$T/m$l"
		gone "${PID[m$l]}" 150
	fi
	member "$l" || return 1
	after "$t" "$T/lookups" && after "$t" "$T/calls" || { echo "bench-failover: no call after the fault" >&2; return 1; }
	sleep 0.2 # (the calls after it, for the in-flight one's end)
	figures "$t" "$2"
}

row() {
	local what=$1 hb=$2 f=$3 s kill=0
	[[ $what == SIGKILL* ]] && kill=1
	s=$(stats "$f")
	# shellcheck disable=SC2086
	set -- $s
	printf '%-22s %6s %4s %7s %7s %7s %7s %9s\n' "$what" "$hb" "$1" "$2" "$3" "$4" "$5" \
		"$([ "$3" != - ] && [ $kill = 1 ] && echo $(($3 - hb)) || echo -)"
}

# term: the term of the server the first client uses
term() { xattr c server | sed -n 's/.*term \([0-9]*\).*/\1/p'; }

# load: LOAD_SECS of the benchmark workload with no fault; LOAD_LINE says what it saw
load() {
	local t0 end runs=0 before after
	before=$(term)
	t0=$(now_ms)
	end=$((t0 + LOAD_SECS * 1000))
	# (each run in directories of its own: deleting its 256 MiB file is issue 17's)
	while [ "$(now_ms)" -lt "$end" ]; do
		mkdir "$T/c/load$runs" "$T/c2/load$runs.2" || break
		"$BUILD/fusefs-fsbench" "$T/c/load$runs" "$T/c2/load$runs.2" >/dev/null 2>>"$T/load.err" ||
			break
		runs=$((runs + 1))
	done
	after=$(term)
	LOAD_LINE="$((($(now_ms) - t0) / 1000)) s of the benchmark workload ($runs runs) at heartbeat timeout $HB ms: term $before -> $after, $((after - before)) elections (target 0)"
}

LOAD_SECS=${LOAD_SECS:-600}
LOAD_LINE=
echo "bench-failover: $RUNS SIGKILLs and $UNMOUNTS clean unmounts of the leader at each heartbeat timeout"
for HB in $HBS; do
	up
	for ((k = 0; k < RUNS; k++)); do fault kill "$T/kill-$HB" || break; done
	for ((k = 0; k < UNMOUNTS; k++)); do fault unmount "$T/unmount-$HB" || break; done
	[ -z "$LOAD_LINE" ] && [ "$LOAD_SECS" -gt 0 ] && load
	down
done
if [ -s "$T/probe.err" ]; then
	echo "bench-failover: a probe failed:"
	cat "$T/probe.err"
	exit 1
fi
echo
echo "failover, ms from the fault (wall clock; a program's calls on hard mounts)"
printf '%-22s %6s %4s %7s %7s %7s %7s %9s\n' "fault: call" "hb_ms" "n" "min" "median" "p99" "max" \
	"median-hb"
for HB in $HBS; do
	row "SIGKILL: in flight" "$HB" "$T/kill-$HB.inflight"
	row "SIGKILL: first new" "$HB" "$T/kill-$HB.first"
	row "unmount: in flight" "$HB" "$T/unmount-$HB.inflight"
	row "unmount: first new" "$HB" "$T/unmount-$HB.first"
done
echo "targets: SIGKILL median within 150 ms of the heartbeat timeout, every kill within 400 ms;"
echo "         a clean unmount's first call served within 500 ms"
[ -n "$LOAD_LINE" ] && echo "$LOAD_LINE"
[ -s "$T/load.err" ] && { echo "bench-failover: the load failed:"; cat "$T/load.err"; exit 1; }
exit 0
