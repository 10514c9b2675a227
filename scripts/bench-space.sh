#!/bin/bash
# bench-space.sh - big files and their deletion, in figures.  Three quorum
# members and two plain clients on loopback, a 4 GiB metadata file (its
# store's log region: 64 MiB).  On one client:
#   - a 1 GiB file written with one dd (bs=1M, fsync at the end): MB/s;
#   - its rm: the time until the call returns, and until statfs shows the
#     space free again (its data is released in the background);
#   - a file twice the log region written the same way: MB/s;
# meanwhile the other client looks a name up every 5 ms (a round trip to
# the server each: the names are not there), and the longest of those
# lookups during the write and during the delete is printed (target: under
# 100 ms).  Then ENTRIES empty files (default 100,000) are made through
# one client, the device is filled to ENOSPC with one more file, and they
# are removed with rm -rf through the other client: entries a second each
# way, and whether the rm -rf on the full device succeeded.  Beside each
# figure, the same on this machine's own filesystem under /var/tmp, as the
# reference.
#
# Needs root and /dev/fuse.  Usage:
#   scripts/bench-space.sh [BUILD_DIR] [SIZE_MIB] [ENTRIES]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
SIZE=${2:-1024}
ENTRIES=${3:-100000}
LOG_MIB=64

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	echo "SKIP: bench-space: needs root and /dev/fuse"
	exit 0
fi
T=$(mktemp -d /var/tmp/fusefs-benchsp.XXXXXX)
declare -A PID
PROBE=
cleanup() {
	touch "$T/stop"
	[ -n "$PROBE" ] && kill "$PROBE" 2>/dev/null
	kill_mounts
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { mount_bg "$1" "$2" "$BUILD/fusefs-mount" "$T/$1.log"; }
used() {
	local b f s
	read -r b f s < <(stat -f -c '%b %f %S' "$1")
	echo $(((b - f) * s))
}
# mbs MIB MS: MB/s
mbs() { awk -v m="$1" -v t="$2" 'BEGIN { printf "%.0f", m * 1048576 / 1e6 / (t / 1000) }'; }
# longest FROM_MS TO_MS: the longest lookup that began in [FROM, TO)
longest() { awk -v a="$1" -v b="$2" '$1 >= a && $1 < b && $2 - $1 > m { m = $2 - $1 } END { print m + 0 }' "$T/lookups"; }
# dd_ms FILE MIB: ms to write MIB MiB of zeros to FILE with one dd, fsync'ed
dd_ms() {
	local t0
	t0=$(now_ms)
	dd if=/dev/zero of="$1" bs=1M count="$2" conv=fsync status=none || return 1
	echo $(($(now_ms) - t0))
}
# rm_ms FILE DIR: "CALL_MS FREE_MS": until rm returns, until DIR's statfs is back (bounded: 120 s)
rm_ms() {
	local t0 t1 i base=$3
	t0=$(now_ms)
	rm "$1" || return 1
	t1=$(now_ms)
	for ((i = 0; i < 2400; i++)); do # (every 50 ms: the polling must not load the machine it measures)
		[ "$(used "$2")" -le "$base" ] && break
		sleep 0.05
	done
	echo "$((t1 - t0)) $(($(now_ms) - t0))"
}

DEV=$T/meta.img
PORT=$((20000 + RANDOM % 20000))
mkfs3 "$DEV" 4G || exit 1
for i in 0 1 2; do start "m$i" "metadev_path=$DEV,quorum_slot_nr=$i" || exit 1; done
start c "metadev_path=$DEV" || exit 1
start c2 "metadev_path=$DEV" || exit 1
wait_leader -1 >/dev/null || { echo "bench-space: no leader"; exit 1; }
base=$(($(used "$T/c") + (8 << 20)))
"$BUILD/fusefs-writer" -l "$T/c2" "$T/stop" "$T/lookups" 2>"$T/probe.err" &
PROBE=$!

w0=$(now_ms)
wms=$(dd_ms "$T/c/big" "$SIZE") || { echo "bench-space: the write failed"; exit 1; }
d0=$(now_ms)
read -r rcall rfree < <(rm_ms "$T/c/big" "$T/c" "$base")
d1=$(now_ms)
w2ms=$(dd_ms "$T/c/log2" $((2 * LOG_MIB))) || { echo "bench-space: the second write failed"; exit 1; }
rm -f "$T/c/log2"
touch "$T/stop"
wait "$PROBE"
PROBE=

# many entries, and their rm -rf on a full device
mkdir "$T/c/e" || exit 1
make_rate=$("$BUILD/fusefs-writer" -n "$T/c/e" "$ENTRIES") || { echo "bench-space: making entries failed"; exit 1; }
dd if=/dev/zero of="$T/c/filler" bs=1M status=none 2>/dev/null # (until ENOSPC)
filled=$(used "$T/c")
t0=$(now_ms)
if rm -rf "$T/c2/e" 2>"$T/rm.err"; then rm_ok=yes; else rm_ok="no: $(head -1 "$T/rm.err")"; fi
rm_rate=$((ENTRIES * 1000 / ($(now_ms) - t0 + 1)))
rm -f "$T/c/filler"
lw=$(longest "$w0" "$d0")
ld=$(longest "$d0" "$d1")

# the reference: the same on this machine's own filesystem
mkdir "$T/local"
lwms=$(dd_ms "$T/local/big" "$SIZE")
t0=$(now_ms)
rm "$T/local/big"
lrcall=$(($(now_ms) - t0))
lw2ms=$(dd_ms "$T/local/log2" $((2 * LOG_MIB)))
rm -f "$T/local/log2"
mkdir "$T/local/e"
lmake_rate=$("$BUILD/fusefs-writer" -n "$T/local/e" "$ENTRIES")
t0=$(now_ms)
rm -rf "$T/local/e"
lrm_rate=$((ENTRIES * 1000 / ($(now_ms) - t0 + 1)))

echo "bench-space: a $SIZE MiB file on a 4 GiB store (log region $LOG_MIB MiB), and /var/tmp beside it"
printf '  %-52s %12s %12s\n' "figure" "fusefs" "/var/tmp"
printf '  %-52s %12s %12s\n' "write $SIZE MiB, one dd, fsync (MB/s)" "$(mbs "$SIZE" "$wms")" "$(mbs "$SIZE" "$lwms")"
printf '  %-52s %12s %12s\n' "rm of it: until the call returns (ms)" "$rcall" "$lrcall"
printf '  %-52s %12s %12s\n' "rm of it: until statfs shows the space free (ms)" "$rfree" "-"
printf '  %-52s %12s %12s\n' "write $((2 * LOG_MIB)) MiB, twice the log region (MB/s)" "$(mbs $((2 * LOG_MIB)) "$w2ms")" "$(mbs $((2 * LOG_MIB)) "$lw2ms")"
printf '  %-52s %12s %12s\n' "longest lookup on the other mount, during the write (ms)" "$lw" "-"
printf '  %-52s %12s %12s\n' "longest lookup on the other mount, during the rm (ms)" "$ld" "-"
printf '  %-52s %12s %12s\n' "make $ENTRIES empty files, 4 threads (per s)" "$make_rate" "$lmake_rate"
printf '  %-52s %12s %12s\n' "rm -rf of them on a full device (per s)" "$rm_rate" "$lrm_rate"
echo "  (target: the longest lookup under 100 ms; $(wc -l <"$T/lookups") lookups in all; the device"
echo "   was full at $((filled >> 20)) MiB used, and the rm -rf through the other mount succeeded: $rm_ok)"
