#!/bin/bash
# bench-cluster.sh - real-process figures for a three-member cluster on
# loopback: cold-start election time, SIGKILL failover delay (heartbeat
# timeout 2000 ms), and the idle CPU use of one member.  Printed as a table.
# Needs root and /dev/fuse.  Usage: scripts/bench-cluster.sh [BUILD_DIR] [RUNS] [IDLE_SECS]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
RUNS=${2:-10}
IDLE=${3:-60}
HB=2000

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	echo "SKIP: bench-cluster: needs root and /dev/fuse"
	exit 0
fi
T=$(mktemp -d /var/tmp/fusefs-bench.XXXXXX)
declare -a PIDS=()

cleanup() {
	local m p
	for m in "$T"/m* "$T"/c; do
		is_mounted "$m" 2>/dev/null && fusermount3 -u -z "$m"
	done
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server() { getfattr --only-values -n user.fusefs.server "$T/c" 2>/dev/null; }

# up: fresh fs, start 3 members and a client; UP_MS = ms from launch to "serving"
up() {
	local i t0 s
	PORT=$((30000 + (RANDOM % 2000) * 10))
	truncate -s 64M "$T/meta.img"
	"$BUILD/fusefs-mkfs" --force -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
		-Q "2,127.0.0.1,$((PORT + 2))" "$T/meta.img" >/dev/null
	mkdir -p "$T/m0" "$T/m1" "$T/m2" "$T/c"
	"$BUILD/fusefs-mount" -f -o "metadev_path=$T/meta.img" "$T/c" >/dev/null 2>&1 &
	PIDS+=($!)
	disown
	for ((i = 0; i < 50; i++)); do is_mounted "$T/c" && break; sleep 0.1; done
	t0=$(now_ms)
	for i in 0 1 2; do
		"$BUILD/fusefs-mount" -f -o "metadev_path=$T/meta.img,quorum_slot_nr=$i,quorum_heartbeat_timeout_ms=$HB" \
			"$T/m$i" >"$T/m$i.log" 2>&1 &
		PIDS+=($!)
		MPID[$i]=$!
		disown
	done
	for ((i = 0; i < 400; i++)); do
		s=$(server)
		[[ $s == *serving* ]] && break
		sleep 0.02
	done
	UP_MS=$(($(now_ms) - t0))
}

down() {
	local m p
	for m in "$T"/m0 "$T"/m1 "$T"/m2 "$T"/c; do
		is_mounted "$m" && fusermount3 -u "$m" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		gone "$p" || kill -9 "$p" 2>/dev/null
	done
	for m in "$T"/m0 "$T"/m1 "$T"/m2 "$T"/c; do
		is_mounted "$m" && fusermount3 -u -z "$m"
	done
	PIDS=()
}

leader() {
	local i
	for i in 0 1 2; do
		[ "$(getfattr --only-values -n user.fusefs.quorum.is_leader "$T/m$i" 2>/dev/null)" = 1 ] &&
			echo "$i" && return
	done
}

stats() { # stats NAME values...: min median max
	local name=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v name="$name" '{v[NR] = $1} END {
		printf "%-40s %5d %8d %8d %8d\n", name, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
}

declare -a MPID COLD FAIL
for ((r = 0; r < RUNS; r++)); do
	up
	COLD+=("$UP_MS")
	L=$(leader)
	L=${L:-0}
	sleep 0.5
	kill -9 "${MPID[$L]}"
	t0=$(now_ms)
	for ((i = 0; i < 400; i++)); do
		s=$(server)
		[[ $s == *serving* && $s != *":$((PORT + L)) "* ]] && break
		sleep 0.02
	done
	FAIL+=($(($(now_ms) - t0)))
	down
done

up
L=$(leader)
F=$(((${L:-0} + 1) % 3))
sleep 2
clk=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
a=$(cpu "${MPID[$F]}")
b=$(cpu "${MPID[${L:-0}]}")
sleep "$IDLE"
a2=$(cpu "${MPID[$F]}")
b2=$(cpu "${MPID[${L:-0}]}")
down

printf "%-40s %5s %8s %8s %8s\n" "figure (ms)" "runs" "min" "median" "max"
stats "cold start: launch to serving" "${COLD[@]}"
stats "SIGKILL of leader to new server (H=${HB})" "${FAIL[@]}"
awk -v t=$((a2 - a)) -v l=$((b2 - b)) -v hz="$clk" -v s="$IDLE" 'BEGIN {
	printf "%-40s %5s %8.3f%%  (follower, %d s)\n", "idle CPU of one member", "", 100 * t / hz / s, s
	printf "%-40s %5s %8.3f%%  (leader, %d s)\n", "idle CPU of the leader", "", 100 * l / hz / s, s }'
