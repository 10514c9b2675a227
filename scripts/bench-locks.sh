#!/bin/bash
# bench-locks.sh - file locks and copies: uncontended fcntl lock/unlock
# pairs per second from one mount, beside /var/tmp; the time a lock takes
# to pass from a holder on one mount to a waiter on another (median and
# worst of ROUNDS, from the holder's exit to the waiter holding it); and
# copy_file_range of a 256 MiB file (the server copies), beside cat
# through the mount and beside /var/tmp.
# Needs root and /dev/fuse.  Usage: scripts/bench-locks.sh [BUILD_DIR] [ROUNDS]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
ROUNDS=${2:-20}
LT=$BUILD/fusefs-locktest
[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] || { echo "SKIP: bench-locks: needs root and /dev/fuse"; exit 0; }

T=$(mktemp -d /var/tmp/fusefs-benchlk.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
cleanup() {
	kill_mounts
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DEV=$T/meta.img
mkfs3 "$DEV" 1G >/dev/null || exit 1
for i in 0 1; do
	mount_bg "m$i" "metadev_path=$DEV,quorum_slot_nr=$i" "$BUILD/fusefs-mount" "$T/m$i.log" || exit 1
done
for n in c c2; do mount_bg "$n" "metadev_path=$DEV" "$BUILD/fusefs-mount" "$T/$n.log" || exit 1; done
: >"$T/c/f"
: >"$T/local"
pairs=$("$LT" bench "$T/c/f" 2000)
local_pairs=$("$LT" bench "$T/local" 200000)

lat=()
for ((r = 0; r < ROUNDS; r++)); do
	"$LT" hold "$T/c/f" w 0 0 </dev/null >"$T/h.out" 2>&1 &
	h=$!
	for ((i = 0; i < 100; i++)); do grep -q held "$T/h.out" && break; sleep 0.05; done
	"$LT" wait "$T/c2/f" w 0 0 >"$T/w.out" 2>&1 &
	w=$!
	sleep 0.2 # (the waiter is waiting)
	t0=$(now_ms)
	kill "$h"
	wait "$w" 2>/dev/null
	lat+=($(($(now_ms) - t0)))
	wait "$h" 2>/dev/null
done
# copy MB/s: the command's MB/s for 256 MiB (it prints nothing of its own)
mbs() {
	local t0 t1
	t0=$(now_ms)
	"$@" >/dev/null || return 1
	t1=$(now_ms)
	echo $((256 * 1000 / (t1 - t0 > 0 ? t1 - t0 : 1)))
}
head -c $((256 << 20)) /dev/urandom >"$T/src"
cp "$T/src" "$T/c/src"
sync
copy_fusefs=$(mbs "$BUILD/fusefs-fileops" copy "$T/c/src" "$T/c/dst")
cat_fusefs=$(mbs sh -c "cat '$T/c/src' >'$T/c/dst2'")
copy_local=$(mbs "$BUILD/fusefs-fileops" copy "$T/src" "$T/dst")
cmp -s "$T/src" "$T/c/dst" || copy_fusefs="wrong"

sorted=$(printf '%s\n' "${lat[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(((ROUNDS + 1) / 2))p")
worst=$(echo "$sorted" | tail -1)

echo "bench-locks: fcntl locks and copies, two mounts of a 2-member cluster, and /var/tmp beside it"
printf '  %-58s %10s %10s\n' figure fusefs /var/tmp
printf '  %-58s %10s %10s\n' "uncontended lock/unlock pairs, one mount (per s)" "$pairs" "$local_pairs"
printf '  %-58s %10s %10s\n' "hand-off to a waiter on another mount, median (ms)" "$median" -
printf '  %-58s %10s %10s\n' "hand-off to a waiter on another mount, worst of $ROUNDS (ms)" "$worst" -
printf '  %-58s %10s %10s\n' "copy_file_range of 256 MiB, the server copies (MB/s)" "$copy_fusefs" "$copy_local"
printf '  %-58s %10s %10s\n' "the same copied with cat, through the mount (MB/s)" "$cat_fusefs" -
echo "  (a hand-off counts from the holder's kill to the waiter's exit with the lock;"
echo "   the server tells a waiting mount when the lock is let go (LOCK_FREED); a waiter"
echo "   that misses it asks again after 1 ms, doubling up to 100 ms)"
