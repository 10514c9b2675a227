#!/bin/bash
# test-failover.sh - failovers that programs do not notice.  Three quorum
# members and two plain clients on loopback; a writer on one client
# (fusefs-writer: O_EXCL creates, fsync'ed O_APPEND records, renames,
# unlinks) and a reader on the other that checks the records never go
# backwards; meanwhile the leader is, three times each,
#   - killed with SIGKILL and remounted at once,
#   - stopped with SIGSTOP (the new leader's local fencer kills it) and
#     remounted,
#   - unmounted cleanly and remounted.
# The writer (a hard mount) must see no error, every acknowledged step must
# be there exactly once, and the reader must never see one go.  Beside it a
# holder keeps a 4 MiB file unlinked while open, writing and reading it
# through its descriptor all along; after its close the space is free
# again.  It prints, for every failover, the time from the fault to the
# writer's next step.  At the end a soft mount fails with EIO within its
# bound while no member runs, and works again once they are back.
#
# Needs root and /dev/fuse (says so and skips without).  Cleans up on any
# exit.  Usage: scripts/test-failover.sh [BUILD_DIR] [HB_TIMEOUT_MS]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
HB=${2:-2000}

skip() {
	echo "SKIP: test-failover: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"

T=$(mktemp -d /var/tmp/fusefs-failover.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
WPID=
RPID=
HPID=
cleanup() {
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	[ -n "$HPID" ] && kill "$HPID" 2>/dev/null
	kill_mounts
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME OPTS: a mount in the background, waited for (lib.sh)
start() { mount_bg "$1" "$2" "$BUILD/fusefs-mount" "$T/$1.log"; }

member() { start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB"; }



DEV=$T/meta.img
mkfs3 "$DEV" 2G || exit 1
for i in 0 1 2; do member "$i" || exit 1; done
start c "metadev_path=$DEV" || exit 1
start c2 "metadev_path=$DEV" || exit 1
mkdir "$T/c/w" || exit 1

echo "test-failover: a writer on one client, a reader on another (heartbeat timeout $HB ms)"
# the writer keeps its progress, step by step, in a file of ours (not on fusefs)
"$BUILD/fusefs-writer" -w "$T/c/w" "$T/stop" "$T/progress" 2>"$T/writer.err" >"$T/writer.out" &
WPID=$!
"$BUILD/fusefs-writer" -r "$T/c2/w" "$T/stop" >"$T/reader.out" 2>"$T/reader.err" &
RPID=$!
free_bytes() { stat -f -c '%f %S' "$T/c" | awk '{print $1 * $2}'; }
free0=$(free_bytes)
"$BUILD/fusefs-writer" -u "$T/c/w" "$T/stop" >"$T/holder.out" 2>"$T/holder.err" &
HPID=$!
t0=$(now_ms)
wait_step 10 >/dev/null || bad "the writer did not start"
for ((i = 0; i < 300; i++)); do
	grep -q held "$T/holder.out" && break
	sleep 0.1
done
check "the holder unlinked its file while holding it open ($(cat "$T/holder.err"))" grep -q held "$T/holder.out"
check "and its 4 MiB are in use meanwhile (free $free0 -> $(free_bytes) bytes)" \
	test "$(free_bytes)" -le $((free0 - (3 << 20)))

declare -a FIG
# fault KIND: one failover of the leader, the member remounted at once.  The
# figure is from the fault to the end of the writer's second step after the
# old server stopped answering (the first may have had all its answers before).
fault() {
	local kind=$1 l n dt
	l=$(wait_leader -1) || { bad "no leader before $kind"; return 1; }
	t0=$(now_ms)
	case $kind in
	kill)
		kill -9 "${PID[m$l]}"
		gone "${PID[m$l]}" 100
		n=$(steps)
		is_mounted "$T/m$l" && fusermount3 -u -z "$T/m$l"
		member "$l" || bad "m$l did not remount after SIGKILL"
		;;
	stop)
		kill -STOP "${PID[m$l]}"
		n=$(steps)
		wait_leader "$l" >/dev/null || bad "no new leader after SIGSTOP of m$l"
		# the new leader's local fencer kills the stopped one
		gone "${PID[m$l]}" 150 || { bad "the stopped leader m$l was not fenced"; kill -9 "${PID[m$l]}"; }
		is_mounted "$T/m$l" && fusermount3 -u -z "$T/m$l"
		member "$l" || bad "m$l did not remount after it was fenced"
		;;
	unmount)
		fusermount3 -u "$T/m$l"
		gone "${PID[m$l]}" 150 || bad "m$l did not exit after its unmount"
		n=$(steps)
		member "$l" || bad "m$l did not remount after its unmount"
		;;
	esac
	dt=$(wait_step $((n + 1)))
	FIG+=("$kind $dt")
	check "$kind of the leader m$l (now m$(wait_leader -1)): the writer's next step $dt ms after the fault" \
		test "$dt" != never
}
for kind in kill stop unmount kill stop unmount kill stop unmount; do
	fault "$kind"
done

touch "$T/stop"
wait "$WPID"
st=$? # (before any expansion below: a command substitution sets $? too)
check "the writer saw no error through 9 failovers ($(cat "$T/writer.err"))" test "$st" = 0
WPID=
wait "$RPID"
st=$?
check "the reader never saw a record go, or one twice ($(cat "$T/reader.err" "$T/reader.out"))" test "$st" = 0
RPID=
wait "$HPID"
st=$?
check "the unlinked file read and wrote true through its descriptor ($(cat "$T/holder.out" "$T/holder.err" | tr '\n' ' '))" test "$st" = 0
HPID=
for ((i = 0; i < 100; i++)); do
	[ "$(free_bytes)" -ge $((free0 - (1 << 20))) ] && break
	sleep 0.1
done
check "its space free again after its close (free $free0 -> $(free_bytes) bytes)" \
	test "$(free_bytes)" -ge $((free0 - (1 << 20)))
n=$(cat "$T/writer.out")
check "every acknowledged step there exactly once ($("$BUILD/fusefs-writer" -c "$T/c2/w" "${n:-0}" 2>&1))" \
	"$BUILD/fusefs-writer" -c "$T/c2/w" "${n:-0}"
check "the writer's mount rode through failovers (client_failovers $(xattr c counters | awk '$1 == "client_failovers" {print $2}'))" \
	test "$(xattr c counters | awk '$1 == "client_failovers" {print $2}')" -ge 3

# a soft mount: EIO within its bound while no member runs, and served again once one does
start c3 "metadev_path=$DEV,soft,failover_timeout_ms=1000" || exit 1
check "the soft mount serves" test -f "$T/c3/w/log"
for l in 0 1 2; do
	fusermount3 -u "$T/m$l"
	gone "${PID[m$l]}" 150 || bad "m$l did not exit after its unmount"
done
t0=$(now_ms)
# (a name in the root: one LOOKUP; deeper, each component it revalidates waits its own bound)
err=$(stat "$T/c3/not-cached-$RANDOM" 2>&1 >/dev/null)
dt=$(($(now_ms) - t0))
check "with no member running, the soft mount fails with EIO after $dt ms (bound 1000 ms a call; the root's getattr, then the lookup): $err" \
	eval '[[ $err == *"Input/output error"* ]] && [ "$dt" -ge 900 ] && [ "$dt" -lt 3000 ]'
for i in 0 1 2; do member "$i" || bad "m$i did not mount again"; done
wait_leader -1 >/dev/null || bad "no leader after the members came back"
check "and once they are back it serves again" test -f "$T/c3/w/log"

echo "test-failover: from the fault to the writer's next step (ms, heartbeat timeout $HB ms)"
for kind in kill stop unmount; do
	printf '  %-8s' "$kind"
	for f in "${FIG[@]}"; do
		[ "${f%% *}" = "$kind" ] && printf ' %8s' "${f#* }"
	done
	echo
done
echo "test-failover: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
