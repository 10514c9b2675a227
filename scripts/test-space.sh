#!/bin/bash
# test-space.sh - files of any size and a full device.  Three quorum members
# and two plain clients on a 256 MiB metadata file (its store's log region
# is about 32 MiB).
#
#   1. Fill and empty, three cycles: files of 1 byte to 64 MiB written
#      through one client until ENOSPC; every file written whole reads the
#      same through the other; rm -rf of everything through the other;
#      statfs back to within 1% of empty; the next cycle fills to the same
#      total.  No election, and no call fails but with ENOSPC.
#   2. A file larger than the log region: written, read back through the
#      other client, overwritten in place, a 20 MiB hole punched, truncated
#      to half, grown and cut again above that, deleted; the leader is
#      SIGKILLed while the data is being released and the new leader
#      finishes it (the space comes back).
#   3. The same size unlinked while open and closed, then unlinked while
#      open again across a SIGKILL of the leader, its holder idle past the
#      new server's grace: every leader serves, the descriptor still reads
#      it whole, and after its close the space comes back.
#
# Needs root and /dev/fuse (says so and skips without).  Cleans up on any
# exit.  Usage: scripts/test-space.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
HB=1000

skip() {
	echo "SKIP: test-space: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"

T=$(mktemp -d /var/tmp/fusefs-space.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
cleanup() {
	exec 3<&- 4<&- 2>/dev/null
	kill_mounts
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# (not holding the descriptors the test keeps open, or they would stay open)
start() { mount_bg "$1" "$2" "$BUILD/fusefs-mount" "$T/$1.log" 3<&- 4<&-; }
member() { start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB"; }
term() { xattr "m$1" quorum.status | awk '/^term/ {print $2}'; }
# used MOUNT: bytes in use, as statfs says on that mount
used() { stat -f -c '%b %f %S' "$T/$1" | awk '{print ($1 - $2) * $3}'; }
total() { stat -f -c '%b %S' "$T/$1" | awk '{print $1 * $2}'; }
# wait_used MOUNT MAX: until statfs shows at most MAX bytes used (bounded: 60 s)
wait_used() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(used "$1")" -le "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

DEV=$T/meta.img
mkfs3 "$DEV" 256M || exit 1
for i in 0 1 2; do member "$i" || exit 1; done
start c "metadev_path=$DEV" || exit 1
start c2 "metadev_path=$DEV" || exit 1
L=$(wait_leader -1) || { echo "test-space: no leader"; exit 1; }
term0=$(term "$L")
empty=$(used c)
TOTAL=$(total c)
SLACK=$((TOTAL / 100))

# ---------------------------------------------------------------------------
echo "test-space: fill and empty, three cycles ($((TOTAL >> 20)) MiB in all, $((empty >> 10)) KiB used empty)"
SIZES=(1 1000 100000 1048576 10485760 67108864 4096 33554432)
declare -a FILLED
for cycle in 1 2 3; do
	mkdir "$T/c/fill" || bad "cycle $cycle: mkdir"
	: >"$T/sums"
	n=0
	others=""
	while ((n < 1000)); do
		size=${SIZES[n % ${#SIZES[@]}]}
		f=$T/c/fill/f$n
		if ! head -c "$size" /dev/urandom 2>"$T/err" >"$f"; then
			grep -q "No space left on device" "$T/err" || others="$others f$n: $(cat "$T/err")"
			break
		fi
		echo "$(md5sum <"$f" | cut -d' ' -f1) f$n" >>"$T/sums"
		n=$((n + 1))
	done
	written=$(used c)
	FILLED[cycle]=$written
	check "cycle $cycle: $n files whole, then ENOSPC at $((written >> 20)) MiB used, no other error$others" \
		test -z "$others" -a "$n" -ge 10 -a "$n" -lt 1000
	bad_sums=0
	while read -r sum name; do
		[ "$(md5sum <"$T/c2/fill/$name" | cut -d' ' -f1)" = "$sum" ] || bad_sums=$((bad_sums + 1))
	done <"$T/sums"
	check "cycle $cycle: every file written whole reads the same through the other mount ($bad_sums differ)" \
		test "$bad_sums" = 0
	check "cycle $cycle: rm -rf through the other mount" rm -rf "$T/c2/fill"
	check "cycle $cycle: statfs back to within 1% of empty ($(((written - empty) >> 20)) MiB to free)" \
		wait_used c2 $((empty + SLACK))
	check "cycle $cycle: and c agrees ($(($(used c) >> 10)) KiB used)" wait_used c $((empty + SLACK))
done
check "each cycle filled to the same total (${FILLED[*]} bytes used)" \
	eval '[ $((FILLED[1] - FILLED[2])) -le $SLACK ] && [ $((FILLED[2] - FILLED[1])) -le $SLACK ] &&
	      [ $((FILLED[1] - FILLED[3])) -le $SLACK ] && [ $((FILLED[3] - FILLED[1])) -le $SLACK ]'
check "no election: m$L leads term $(term "$L") still" test "$(term "$L")" = "$term0"
check "no service stopped (the leader's log)" not grep -q "service stops\|the service failed" "$T/m$L.log"

# ---------------------------------------------------------------------------
echo "test-space: a file larger than the log region"
BIG=48
head -c $((BIG << 20)) /dev/urandom >"$T/big.src"
check "written ($BIG MiB)" cp "$T/big.src" "$T/c/big"
check "read back the same through the other mount" cmp -s "$T/big.src" "$T/c2/big"
head -c $((5 << 20)) /dev/urandom >"$T/patch"
dd if="$T/patch" of="$T/big.src" bs=1M seek=10 conv=notrunc status=none
check "overwritten in place (5 MiB at 10 MiB)" \
	dd if="$T/patch" of="$T/c/big" bs=1M seek=10 conv=notrunc,fsync status=none
check "and read the same through the other mount" cmp -s "$T/big.src" "$T/c2/big"
fallocate -p -o $(((15 << 20) + 100)) -l $((20 << 20)) "$T/big.src"
check "a 20 MiB hole punched at 15 MiB" \
	fallocate -p -o $(((15 << 20) + 100)) -l $((20 << 20)) "$T/c/big"
check "and read the same through the other mount" cmp -s "$T/big.src" "$T/c2/big"
truncate -s $((BIG << 19)) "$T/big.src"
check "truncated to half" truncate -s $((BIG << 19)) "$T/c/big"
check "and read the same through the other mount" cmp -s "$T/big.src" "$T/c2/big"
head -c $((16 << 20)) /dev/urandom >"$T/patch"
cat "$T/patch" >>"$T/big.src"
truncate -s $((30 << 20)) "$T/big.src"
check "grown by 16 MiB and cut again above the first cut" \
	eval 'cat "$T/patch" >>"$T/c/big" && truncate -s $((30 << 20)) "$T/c/big"'
check "and read the same through the other mount" cmp -s "$T/big.src" "$T/c2/big"
before=$(used c)
check "deleted" rm "$T/c/big"
l=$(wait_leader -1)
kill -9 "${PID[m$l]}" # while its data is being released
gone "${PID[m$l]}"
fusermount3 -u -z "$T/m$l"
# (mounted again once another leads: mounted sooner, it may win the election)
nl=$(wait_leader "$l") || bad "no new leader after the SIGKILL"
member "$l" || bad "m$l did not remount"
check "the new leader m$nl finishes the release: the space is back ($((before >> 20)) MiB used before)" \
	wait_used c $((empty + SLACK))
check "the file is gone on every mount" not test -e "$T/c2/big"

# ---------------------------------------------------------------------------
echo "test-space: a file larger than the log region unlinked while open"
cp "$T/big.src" "$T/c/held" || bad "write held"
exec 3<"$T/c/held"
rm "$T/c/held"
check "held open, unlinked: its data stays in use" test "$(used c)" -ge $((empty + (BIG << 18)))
exec 3<&-
check "closed: the space comes back" wait_used c $((empty + SLACK))
cp "$T/big.src" "$T/c/held" || bad "write held again"
exec 4<"$T/c/held"
rm "$T/c/held"
l=$(wait_leader -1)
kill -9 "${PID[m$l]}"
gone "${PID[m$l]}"
fusermount3 -u -z "$T/m$l"
nl=$(wait_leader "$l")
member "$l" || bad "m$l did not remount"
check "unlinked while open across a SIGKILL of leader m$l: m${nl:-?} serves" test -n "$nl"
# the holder is idle: it must name the file to the new server before the grace's purge
purges() { xattr "m$nl" counters | awk '$1 == "server_purges" {print $2}'; }
for ((i = 0; i < 300; i++)); do
	[ "$(purges)" -ge 1 ] 2>/dev/null && break
	sleep 0.1
done
check "the new server's grace ran out (purges $(purges))" test "$(purges)" -ge 1
check "the descriptor still reads it whole" cmp -s "$T/big.src" - <&4
exec 4<&-
check "closed: the space comes back" wait_used c $((empty + SLACK))
for i in 0 1 2; do
	[ -n "${PID[m$i]:-}" ] && grep -q "service stops\|the service failed" "$T/m$i.log" &&
		bad "m$i's service stopped: $(grep -m1 "service stops\|the service failed" "$T/m$i.log")"
done
echo "test-space: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
