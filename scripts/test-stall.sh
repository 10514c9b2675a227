#!/bin/bash
# test-stall.sh - a connection that stops answering is found and replaced
# within the heartbeat timeout, with no failover.  A three-member cluster and
# a plain client, all on loopback inside a network namespace of our own;
# while a writer works on the client, every TCP packet the servers' ports
# send is dropped for STALL_S seconds (a policy-routing blackhole rule in
# that namespace: one way, the quorum's UDP untouched, so no election).  The
# writer's call in flight must complete, and a mkdir begun during the
# stall too, within the heartbeat timeout plus one second after the rule is
# removed; the writer sees no error and the term does not change.
#
# Needs root, /dev/fuse and network namespaces (says so and skips without).
# Cleans up on any exit.  Usage: scripts/test-stall.sh [BUILD_DIR] [HB_TIMEOUT_MS]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
HB=${2:-2000}
STALL_S=${STALL_S:-6}

skip() {
	echo "SKIP: test-stall: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems and make a network namespace"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"
command -v nsenter >/dev/null || skip "needs nsenter (util-linux)"
NS=fusefs-stall-$$
ip netns add "$NS" 2>/dev/null || skip "cannot create a network namespace (ip netns add)"

T=$(mktemp -d /var/tmp/fusefs-stall.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
WPID=
MPID=
cleanup() {
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null
	kill_mounts
	ip netns del "$NS" 2>/dev/null
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the namespace's loopback, with the local table looked up after our rule
ip -n "$NS" link set lo up &&
	ip -n "$NS" rule add pref 100 lookup local &&
	ip -n "$NS" rule del pref 0 || { echo "test-stall: cannot set up $NS's routing"; exit 1; }
RULE=(pref 10 ipproto tcp sport "$PORT-$((PORT + 2))" blackhole)
ip -n "$NS" rule add "${RULE[@]}" 2>/dev/null || skip "this kernel has no ipproto/sport rule selectors (Linux 4.17)"
ip -n "$NS" rule del "${RULE[@]}"

# start NAME OPTS: a mount in the background, in the namespace's network
# only (its FUSE mount is seen here), waited for (lib.sh)
in_ns() { exec nsenter --net="/run/netns/$NS" "$BUILD/fusefs-mount" "$@"; }
start() { mount_bg "$1" "$2" in_ns "$T/$1.log"; }
member() { start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB"; }


DEV=$T/meta.img
mkfs3 "$DEV" 1G || exit 1
for i in 0 1 2; do member "$i" || exit 1; done
start c "metadev_path=$DEV,quorum_heartbeat_timeout_ms=$HB" || exit 1
mkdir "$T/c/w" || exit 1
l=$(wait_leader -1) || { echo "test-stall: no leader"; exit 1; }
term() { xattr "m$1" quorum.status | awk '/^term/ {print $2}'; }
term0=$(term "$l")

echo "test-stall: the servers' TCP packets dropped for $STALL_S s (heartbeat timeout $HB ms, leader m$l, term $term0)"
"$BUILD/fusefs-writer" -w "$T/c/w" "$T/stop" "$T/progress" 2>"$T/writer.err" >"$T/writer.out" &
WPID=$!
t0=$(now_ms)
wait_step 10 >/dev/null || bad "the writer did not start"

ip -n "$NS" rule add "${RULE[@]}" || exit 1
n=$(steps)
sleep 1 # (the stall itself: the writer's calls and the mkdir below wait in it)
mkdir "$T/c/made-in-the-stall" 2>"$T/mkdir.err" &
MPID=$!
sleep $((STALL_S - 1))
stalled=$(($(steps) - n))
ip -n "$NS" rule del "${RULE[@]}"
t0=$(now_ms)
dt=$(wait_step "$(steps)")
check "the writer's next step $dt ms after the packets flow again (bound $((HB + 1000)) ms; $stalled steps during the stall)" \
	eval '[ "$dt" != never ] && [ "$dt" -le $((HB + 1000)) ]'
for ((i = 0; i < 300; i++)); do
	kill -0 "$MPID" 2>/dev/null || break
	sleep 0.02
done
dm=$(($(now_ms) - t0))
wait "$MPID"
st=$?
MPID=
check "the mkdir begun in the stall done $dm ms after ($(cat "$T/mkdir.err"))" \
	eval '[ "$st" = 0 ] && [ "$dm" -le $((HB + 1000)) ] && [ -d "$T/c/made-in-the-stall" ]'
check "no failover: the leader is m$l still, term $(term "$l")" \
	eval '[ -n "$term0" ] && [ "$(xattr "m$l" quorum.is_leader)" = 1 ] && [ "$(term "$l")" = "$term0" ]'
check "the client replaced its connection (client_failovers $(xattr c counters | awk '$1 == "client_failovers" {print $2}'))" \
	test "$(xattr c counters | awk '$1 == "client_failovers" {print $2}')" -ge 1

t0=$(now_ms)
wait_step $(($(steps) + 20)) >/dev/null || bad "the writer did not go on"
touch "$T/stop"
wait "$WPID"
st=$?
WPID=
check "the writer saw no error ($(cat "$T/writer.err"))" test "$st" = 0
n=$(cat "$T/writer.out")
check "every acknowledged step there exactly once ($("$BUILD/fusefs-writer" -c "$T/c/w" "${n:-0}" 2>&1))" \
	"$BUILD/fusefs-writer" -c "$T/c/w" "${n:-0}"
echo "test-stall: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
