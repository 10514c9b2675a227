#!/bin/bash
# test-locks.sh - locks that hold across mounts and across a failover.
# Three quorum members and two plain client mounts, c and c2, on one
# metadata file; one program on each side (build/fusefs-locktest).
#
#   1. An exclusive fcntl lock on c: c2's F_SETLK is refused, its F_GETLK
#      names the lock (pid 0: a process on another mount; the holder's pid
#      on its own mount), and its F_SETLKW waits until the holder lets go.
#   2. Ranges split as POSIX says (lock 0-99, unlock 40-59).
#   3. Closing any descriptor of the file releases the process's locks.
#   4. flock from both mounts serialises a counter: 500 increments each,
#      no lost update.
#   5. SQLite's own locking: two processes on two mounts insert 1,000 rows
#      each into one database: 2,000 rows, integrity ok.
#   6. A blocked F_SETLKW interrupted by a signal returns EINTR, and the
#      lock is free to others once the holder lets go.
#   7. Failover: a lock held on c is still held after the leader is
#      SIGKILLed and another serves; a waiter gets it when it is released.
#   8. A client mount that dies holding a lock: after the server's grace
#      it is fenced (the members' fence_cmd is told its rid, address and
#      process, reason "client"), and only then the lock goes to the waiter.
#   9. A client mount SIGSTOPped holding a lock: silent past 5 s and its
#      grace, it is fenced and declared gone and the lock goes to the
#      waiter; after SIGCONT every call it makes fails with EIO, so it
#      never writes under the lock it lost.  (The fence agent here only
#      records what it is told, so the stopped mount lives on to be
#      refused.)
#
# Needs root and /dev/fuse (says so and skips without).  Cleans up on any
# exit.  Usage: scripts/test-locks.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
LT=$BUILD/fusefs-locktest
HB=1000
GRACE=6000 # (long enough for every mount to come back after a failover on a busy machine)

skip() {
	echo "SKIP: test-locks: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"

T=$(mktemp -d /var/tmp/fusefs-locks.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
HOLDERS=()
cleanup() {
	local p
	for p in "${HOLDERS[@]}"; do kill -9 "$p" 2>/dev/null; done
	kill_mounts
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { mount_bg "$1" "$2" "$BUILD/fusefs-mount" "$T/$1.log"; }
member() {
	start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB,grace_ms=$GRACE,fence_cmd=$T/fence.sh"
}
# fenced RID: the fence agent was told to fence the client mount RID
fenced() { grep -q "^client $1 " "$T/fences.log" 2>/dev/null; }

# hold NAME MOUNT ARGS...: a holder in the background, until let_go kills
# it; waited for until it says "held"
hold() {
	local name=$1 i
	shift 2
	"$LT" "$@" </dev/null >"$T/$name.out" 2>&1 &
	eval "HOLD_$name=$!"
	HOLDERS+=("$!")
	disown
	for ((i = 0; i < 100; i++)); do
		grep -q "held\|closed" "$T/$name.out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "    $name: $(cat "$T/$name.out")"
	return 1
}
# let_go NAME: the holder is killed; its descriptors close, and its locks go
let_go() {
	local pid
	pid=$(eval echo "\$HOLD_$1")
	kill -TERM "$pid"
	gone "$pid" 100
}
# waiter FILE MOUNT: an F_SETLKW on MOUNT's file in the background, its
# output in $T/waiter.out
waiter() {
	rm -f "$T/waiter.out"
	"$LT" wait "$T/$1/$F" w 0 0 >"$T/waiter.out" 2>&1 &
	W=$!
	HOLDERS+=("$W")
	disown
}
# waited: until the waiter says it has the lock (bounded: 20 s), and its
# process is gone; WAITED is the ms since $t0
waited() {
	local i
	for ((i = 0; i < 400; i++)); do
		if grep -q locked "$T/waiter.out" 2>/dev/null; then
			WAITED=$(($(now_ms) - t0))
			gone "$W" 50
			return 0
		fi
		sleep 0.05
	done
	WAITED=never
	return 1
}
says() { [ "$("${@:2}" 2>&1)" = "$1" ]; }
# both ARGS...: fusefs-locktest ARGS on c and on c2 at once ("@" in an
# argument is the mount); R is the two exit statuses, OUT the two outputs
both() {
	local p1 p2
	"$LT" "${@//@/$T/c}" >"$T/both1.out" 2>&1 &
	p1=$!
	"$LT" "${@//@/$T/c2}" >"$T/both2.out" 2>&1 &
	p2=$!
	HOLDERS+=("$p1" "$p2")
	wait "$p1"
	R=$?
	wait "$p2"
	R=$R$?
	OUT=$(cat "$T/both1.out" "$T/both2.out")
}

DEV=$T/meta.img
# the fence agent: records what it is told (a leader it is told of is
# already dead here: the test SIGKILLs it)
cat >"$T/fence.sh" <<EOF
#!/bin/sh
echo "\$FUSEFS_FENCE_REASON \$FUSEFS_FENCE_RID \$FUSEFS_FENCE_ADDR \$FUSEFS_FENCE_PID \${FUSEFS_FENCE_SLOT:-noslot}" >>"$T/fences.log"
EOF
chmod +x "$T/fence.sh"
mkfs3 "$DEV" 256M || exit 1
for i in 0 1 2; do member "$i" || exit 1; done
start c "metadev_path=$DEV" || exit 1
start c2 "metadev_path=$DEV" || exit 1
L=$(wait_leader -1) || { echo "test-locks: no leader"; exit 1; }
F=f

# ---------------------------------------------------------------------------
echo "test-locks: an exclusive lock across mounts"
: >"$T/c/$F"
check "c takes an exclusive lock on the whole file" hold h1 c hold "$T/c/$F" w 0 0
check "c2's F_SETLK is refused" says EAGAIN "$LT" try "$T/c2/$F" w 10 10
check "so is a read lock" says EAGAIN "$LT" try "$T/c2/$F" r 0 1
check "c2's F_GETLK names it, pid 0 (a process on another mount)" \
	says "w 0 0 0" "$LT" getlk "$T/c2/$F" r 5 5
check "c's F_GETLK names it with the holder's pid" \
	says "w 0 0 $HOLD_h1" "$LT" getlk "$T/c/$F" w 0 0
waiter c2
sleep 1 # (that it still waits after a second is the point)
check "c2's F_SETLKW waits while c holds it" not grep -q locked "$T/waiter.out"
t0=$(now_ms)
let_go h1
waited
check "and gets it when c lets go ($WAITED ms)" test "$WAITED" != never
ctr() { xattr "$1" counters | awk -v k="$2" '$1 == k {print $2}'; }
check "c2's counters: one lock wait, none waiting now" \
	test "$(ctr c2 mount_lock_waits) $(ctr c2 mount_lock_waiting)" = "1 0"

echo "test-locks: ranges split"
check "c locks 0-99 and unlocks 40-59" hold h2 c split "$T/c/$F"
check "c2 may lock 40-59" says ok "$LT" try "$T/c2/$F" w 40 20
check "but not 0-9" says EAGAIN "$LT" try "$T/c2/$F" w 0 10
check "nor 60-99" says EAGAIN "$LT" try "$T/c2/$F" w 60 40
check "and may lock from 100 on" says ok "$LT" try "$T/c2/$F" w 100 0
check "F_GETLK on 30-49 names 0-39" says "w 0 40 0" "$LT" getlk "$T/c2/$F" w 30 20
let_go h2

echo "test-locks: close releases"
check "c locks through one descriptor and closes another" hold h3 c closetwo "$T/c/$F"
check "the lock went with the close" says ok "$LT" try "$T/c2/$F" w 0 0
let_go h3

echo "test-locks: flock serialises a counter across mounts"
echo 0 >"$T/c/counter"
both flockcount @/$F @/counter 500
check "both finished ($R) $OUT" test "$R" = 00
check "the counter is 1000 ($(cat "$T/c/counter"))" test "$(cat "$T/c/counter")" = 1000

echo "test-locks: SQLite across mounts"
t0=$(now_ms)
both sqlite @/db 1000 t
check "both inserted 1000 rows ($R, $(($(now_ms) - t0)) ms) $OUT" test "$R" = 00
check "the database has 2000 rows and is intact ($("$LT" sqlcheck "$T/c2/db"))" \
	says "2000 ok" "$LT" sqlcheck "$T/c2/db"

echo "test-locks: a signal ends a wait"
check "c holds the lock" hold h4 c hold "$T/c/$F" w 0 0
check "c2's F_SETLKW, SIGALRM after 300 ms: EINTR" says EINTR "$LT" intr "$T/c2/$F" w 0 0 300
let_go h4
check "and nothing is left behind: c2 takes it at once" says ok "$LT" try "$T/c2/$F" w 0 0

echo "test-locks: deadlock across mounts, and many waiters"
# c locks byte 0 and waits for byte 1; c2 locks byte 1 and waits for byte 0
rm -f "$T/go"
"$LT" cross "$T/c/$F" 0 1 "$T/go" >"$T/x1.out" 2>&1 &
X1=$!
"$LT" cross "$T/c2/$F" 1 0 "$T/go" >"$T/x2.out" 2>&1 &
X2=$!
HOLDERS+=("$X1" "$X2")
for ((i = 0; i < 200; i++)); do
	[ "$(cat "$T/x1.out" "$T/x2.out" 2>/dev/null | grep -c held)" = 2 ] && break
	sleep 0.05
done
touch "$T/go"
wait "$X1"
wait "$X2"
XS=$(cat "$T/x1.out" "$T/x2.out" | grep -v held | sort | tr '\n' ' ')
check "two processes on two mounts in a cycle: one gets EDEADLK, the other the lock ($XS)" \
	test "$XS" = "EDEADLK locked "
check "a wait that closes no cycle is no deadlock (chain c -> c2)" hold h8 c2 hold "$T/c2/$F" w 5 1
"$LT" cross "$T/c/$F" 6 5 "$T/go" >"$T/x3.out" 2>&1 &
X3=$!
HOLDERS+=("$X3")
# 80 waiters on c2 (more than the mount's 64 worker threads) for byte 9, held on c
check "c holds byte 9" hold h9 c hold "$T/c/$F" w 9 1
WS=()
for ((i = 0; i < 80; i++)); do
	"$LT" wait "$T/c2/$F" w 9 1 >"$T/w$i.out" 2>&1 &
	WS+=("$!")
	HOLDERS+=("$!")
done
for ((i = 0; i < 200; i++)); do
	[ "$(ctr c2 mount_lock_waiting)" = 80 ] && break
	sleep 0.05
done
check "all 80 wait at once (mount_lock_waiting)" test "$i" -lt 200
G="$(ctr "m$L" server_locks_held) $(ctr "m$L" server_lock_waiters)"
check "the leader's gauges ($G): 3 lock ranges held (h8, h9 and the chained waiter's), 2 mounts waiting" \
	test "$G" = "3 2"
check "and c2 still serves: a new file written and read back" \
	eval 'echo fine >"$T/c2/during" && test "$(cat "$T/c2/during")" = fine'
let_go h9
t0=$(now_ms)
ok=0
for p in "${WS[@]}"; do wait "$p" && ok=$((ok + 1)); done
check "every waiter got the lock in turn once c let go ($ok of 80, $(($(now_ms) - t0)) ms)" test "$ok" = 80
let_go h8
wait "$X3"
check "and the chained waiter got its lock too, no EDEADLK" grep -qx locked "$T/x3.out"

echo "test-locks: failover"
check "c holds the lock" hold h5 c hold "$T/c/$F" w 0 0
kill -9 "${PID[m$L]}"
gone "${PID[m$L]}"
fusermount3 -u -z "$T/m$L"
unset "PID[m$L]"
L2=$(wait_leader "$L")
check "a new leader serves (m$L2)" test -n "$L2"
check "the lock is still held: c2 is refused" says EAGAIN "$LT" try "$T/c2/$F" w 0 0
waiter c2
t0=$(now_ms)
let_go h5
waited
check "a waiter on c2 gets it when c lets go ($WAITED ms)" test "$WAITED" != never

echo "test-locks: a mount that dies holding a lock"
check "c holds the lock" hold h6 c hold "$T/c/$F" w 0 0
RID_C=$(getfattr --absolute-names --only-values -n user.fusefs.rid "$T/c")
PID_C=${PID[c]}
waiter c2
t0=$(now_ms)
kill -9 "${PID[c]}"
gone "${PID[c]}"
fusermount3 -u -z "$T/c"
unset "PID[c]"
waited
check "the waiter on c2 gets it ($WAITED ms after the SIGKILL)" test "$WAITED" != never
check "and not before the server's grace ($GRACE ms) ran out" test "${WAITED/never/0}" -ge $((GRACE - 100))
check "the fence agent was told to fence c: a client, its rid, address and pid, no slot" \
	grep -q "^client $RID_C 127.0.0.1 $PID_C noslot\$" "$T/fences.log"

echo "test-locks: a mount stopped while holding a lock"
check "c is mounted again (a new mount)" start c "metadev_path=$DEV"
check "c holds the lock" hold h7 c hold "$T/c/$F" w 0 0
RID_C=$(getfattr --absolute-names --only-values -n user.fusefs.rid "$T/c")
waiter c2
t0=$(now_ms)
kill -STOP "${PID[c]}"
waited
check "the waiter on c2 gets it ($WAITED ms after the SIGSTOP)" test "$WAITED" != never
check "not before the silence (5 s) and the grace ($GRACE ms) ran out" \
	test "${WAITED/never/0}" -ge $((5000 + GRACE - 100))
check "and c was fenced first" fenced "$RID_C"
echo "c2 has it" >"$T/c2/owned"
kill -CONT "${PID[c]}"
check "after SIGCONT, c's writes fail with EIO" \
	eval '! echo "c writes" 2>"$T/cont.err" >"$T/c/owned" && grep -q "Input/output error" "$T/cont.err"'
check "and so does every other call" not ls "$T/c/" 2>/dev/null
check "c's log says it was declared gone, once" \
	test "$(grep -c "declared this mount gone" "$T/c.log")" = 1
check "what c2 wrote under the lock stands" test "$(cat "$T/c2/owned")" = "c2 has it"
L3=$(leader)
check "the leader counts silent connections closed ($(ctr "m$L3" server_silent_closed))" \
	test "$(ctr "m$L3" server_silent_closed)" -ge 1
check "and two mounts gone with a lock each" \
	test "$(ctr "m$L3" server_gone_mounts) $(ctr "m$L3" server_gone_locks)" = "2 2"
check "both fenced ($(ctr "m$L3" server_fenced_mounts))" test "$(ctr "m$L3" server_fenced_mounts)" = 2

echo "test-locks: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
