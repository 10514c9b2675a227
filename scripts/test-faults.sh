#!/bin/bash
# test-faults.sh - the quorum rides out device faults (docs/quorum.md,
# "Device faults"), on real fusefs-mount processes: three quorum members and
# a plain client sharing one metadata device that is a fault-injecting FUSE
# file (fusefs-faultfs: I/O passed through to a backing file, faults set
# through its ctl file), heartbeat timeout 2000 ms.
#
#   1. a flipped bit in the leader's quorum block: the leader rewrites it
#      from memory and keeps serving;
#   2. a flipped bit in a follower's block: the follower rewrites it;
#   3. a flipped bit in the block of a member that is down, then the leader
#      killed and restarted: the new leader fences the unreadable slot (the
#      fence agent is told why) and serves; the down member's mount is
#      refused with the repair named, and -o quorum_repair rebuilds it;
#   4. 6 s of EIO on every member: they step down and retry, and a leader
#      serves again a few seconds after the errors end, with no remount;
#   5. every device I/O delayed by 1 s, then the leader killed: a new leader
#      is elected while the delay lasts.
# Each scenario prints the time from the fault (or from its end) to a
# serving leader.  Data written before the faults is read back after them.
#
# Needs root and /dev/fuse (it skips, saying so, without them).  Cleans up
# after itself on any exit: clears the faults, unmounts, kills only the
# PIDs it started.  Every wait is bounded.
# Usage: scripts/test-faults.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
MOUNT=$BUILD/fusefs-mount
MKFS=$BUILD/fusefs-mkfs
PRINT=$BUILD/fusefs-print
FAULTFS=$BUILD/fusefs-faultfs

skip() {
	echo "SKIP: test-faults: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems and signal mount processes"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"
for c in fusermount3 getfattr ss timeout; do
	command -v $c >/dev/null || skip "needs $c"
done

HB=2000
T=$(mktemp -d /var/tmp/fusefs-faults.XXXXXX)
FF=$T/ff
DEV=$FF/disk
CTL=$FF/ctl
FFPID=
declare -A PID
declare -A RID
SCEN=0

# set_fault KEY=VALUE: bounded, so a hung faultfs cannot hang the test
set_fault() { timeout 5 sh -c "echo '$1' >'$CTL'"; }

cleanup() {
	local n p
	[ -n "$FFPID" ] && set_fault eio=0 2>/dev/null && set_fault delay_ms=0 2>/dev/null
	kill_mounts
	if [ -n "$FFPID" ]; then
		is_mounted "$FF" && fusermount3 -u -z "$FF" 2>/dev/null
		gone "$FFPID" 30 || kill -9 "$FFPID" 2>/dev/null
	fi
	if [ -n "${FUSEFS_KEEP_LOGS:-}" ]; then
		mkdir -p "$FUSEFS_KEEP_LOGS" && cp "$T"/*.log "$T"/fence-record "$FUSEFS_KEEP_LOGS"/ 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# every access through a FUSE mount is bounded (SIGTERM, then SIGKILL, end a FUSE wait)
xattr() { timeout -k 2 10 getfattr --only-values -n "user.fusefs.$2" "$T/$1" 2>/dev/null; }
cwrite() { timeout -k 2 20 sh -c "echo '$2' >'$T/c/$1'"; }
cread() { timeout -k 2 20 grep -q "$2" "$T/c/$1"; }
log_of() { echo "$T/$1.$SCEN.log"; }
# the byte offset of a spot in the middle of slot N's quorum block (block 17 + N)
qblock_off() { echo $(((17 + $1) * 4096 + 1000)); }
# slot N's block as fusefs-print shows it (BAD with the reason when it fails verification)
qblock_text() { timeout 20 "$PRINT" "$DEV" 2>&1 | sed -n "/quorum block of slot $1 /,/^\$/p"; }
qblock_bad() { qblock_text "$1" | grep -q BAD; }

# the fault-injecting device, once for the whole run
truncate -s 64M "$T/back.img"
mkdir -p "$FF"
"$FAULTFS" -f "$T/back.img" "$FF" >"$T/faultfs.log" 2>&1 </dev/null &
FFPID=$!
disown
for ((i = 0; i < 50; i++)); do
	[ -e "$DEV" ] && break
	sleep 0.1
done
[ -e "$DEV" ] || {
	cat "$T/faultfs.log"
	echo "FAIL: test-faults: fusefs-faultfs did not mount"
	exit 1
}

cat >"$T/fence-agent.sh" <<EOF
#!/bin/sh
# records each request; kills the target when it is on this host: by the
# recorded pid, or for an unreadable block by whoever holds the slot's address
echo "rid=\$FUSEFS_FENCE_RID slot=\$FUSEFS_FENCE_SLOT port=\$FUSEFS_FENCE_PORT term=\$FUSEFS_FENCE_TERM reason=\$FUSEFS_FENCE_REASON detail=\${FUSEFS_FENCE_DETAIL:-} pid=\${FUSEFS_FENCE_PID:-}" >>"$T/fence-record"
if [ -n "\${FUSEFS_FENCE_PID:-}" ]; then
	kill -9 "\$FUSEFS_FENCE_PID" 2>/dev/null
elif [ "\$FUSEFS_FENCE_REASON" = quorum_block_unreadable ]; then
	for p in \$(ss -Hunp "( sport = :\$FUSEFS_FENCE_PORT )" | grep -o 'pid=[0-9]*' | cut -d= -f2); do
		kill -9 "\$p" 2>/dev/null
	done
fi
exit 0
EOF
chmod +x "$T/fence-agent.sh"

# start NAME OPTIONS: a foreground mount at $T/NAME, waits (bounded) until mounted
start() {
	mount_bg "$1" "$2" "$MOUNT" "$(log_of "$1")" || return 1
	RID[$1]=$(xattr "$1" rid)
}

member() { # member SLOT [EXTRA]
	start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=$HB,fence_cmd=$T/fence-agent.sh${2:-}"
}

# crash NAME: SIGKILL, then take its dead mount away
crash() {
	kill -9 "${PID[$1]}" 2>/dev/null
	gone "${PID[$1]}" 50
	fusermount3 -u -z "$T/$1" 2>/dev/null
	unset "PID[$1]"
}

# stop, stop_all and leader are in lib.sh

# wait_serving LIMIT_MS: until the client greets a serving server; prints the
# elapsed ms (LIMIT_MS when it gave up) and fails after LIMIT_MS
wait_serving() {
	local limit=$1 t0 s
	t0=$(now_ms)
	while (($(now_ms) - t0 < limit)); do
		s=$(xattr c server)
		if [[ $s == *" serving"* ]]; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.05
	done
	echo "$limit"
	return 1
}

serving_now() { wait_serving 10000 >/dev/null; }

# Times from the logs, which stamp every line with the wall clock (HH:MM:SS.mmm),
# so a status read that is slow while the device is (the root's getattr goes
# through the client) cannot stretch a measurement.
clock_ms() { date +%H:%M:%S.%3N | awk -F'[:.]' '{print (($1 * 60 + $2) * 60 + $3) * 1000 + $4}'; }

# log_after NAMES PATTERN SINCE_MS: the first line of NAMES' logs matching
# PATTERN stamped at or after SINCE_MS (clock_ms), as ms after SINCE_MS
log_after() {
	local names=$1 pat=$2 since=$3 files=() n
	for n in $names; do files+=("$(log_of "$n")"); done
	cat "${files[@]}" 2>/dev/null | grep -E "$pat" |
		awk -F'[:. ]' -v s="$since" '{t = (($1 * 60 + $2) * 60 + $3) * 1000 + $4
			if (t < s - 43200000) t += 86400000
			if (t >= s && (best == "" || t < best)) best = t}
			END {if (best != "") print best - s}'
}

# wait_event NAMES PATTERN SINCE_MS LIMIT_MS: until log_after finds a line;
# prints its time after SINCE_MS, or LIMIT_MS and fails
wait_event() {
	local t0 dt
	t0=$(now_ms)
	while (($(now_ms) - t0 < $4)); do
		dt=$(log_after "$1" "$2" "$3")
		if [ -n "$dt" ]; then
			echo "$dt"
			return 0
		fi
		sleep 0.1
	done
	echo "$4"
	return 1
}

cluster() {
	SCEN=$((SCEN + 1))
	PORT=$((20000 + (RANDOM % 3000) * 10))
	set_fault eio=0 && set_fault delay_ms=0 || return 1
	"$MKFS" --force -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
		-Q "2,127.0.0.1,$((PORT + 2))" "$DEV" >/dev/null || return 1
	member 0 && member 1 && member 2 && start c "metadev_path=$DEV" || return 1
	wait_serving 15000 >/dev/null
}

# the members still running, each still a member (none left the quorum for good)
all_members_alive() {
	local i
	for i in 0 1 2; do
		[ -n "${PID[m$i]:-}" ] || continue
		kill -0 "${PID[m$i]}" 2>/dev/null || return 1
		grep -q "no longer takes part in elections" "$(log_of "m$i")" && return 1
	done
	return 0
}

# sleep_until MS: until now_ms reaches MS
sleep_until() {
	local left=$(($1 - $(now_ms)))
	((left > 0)) && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"
	return 0
}

FIG=()
figure() { FIG+=("$(printf '%-58s %6s ms' "$1" "$2")"); }

# ---------------------------------------------------------------------------
# flip_own ROLE SLOT: a flipped bit in a running member's block, which it rewrites
flip_own() {
	local role=$1 slot=$2 since dt
	since=$(clock_ms)
	set_fault "flip=$(qblock_off "$slot")"
	check "the flip was made" grep -q "^flips [1-9]" "$CTL"
	dt=$(wait_event "m$slot" "slot $slot: our quorum block failed verification .*rewriting it whole" "$since" 8000)
	check "the $role (slot $slot) rewrote its block from memory $dt ms after the flip" test "$dt" -lt 8000
	check "slot $slot's block verifies again" not qblock_bad "$slot"
	check "a leader serves" serving_now
	check "slot $L still leads, its server never stopped" \
		test "$(leader)" = "$L" -a -z "$(log_after "m$L" "stopping server|resigned" "$since")"
	figure "$3 flipped bit in the $role's block: serving throughout, repaired after" "$dt"
}

echo "test-faults: a flipped bit in the leader's quorum block"
cluster || bad "cluster did not come up"
cwrite before "written before the faults" || bad "cannot write through the client"
L=$(leader)
L=${L:-0}
flip_own leader "$L" 1

echo "test-faults: a flipped bit in a follower's quorum block"
F=$(((L + 1) % 3))
flip_own follower "$F" 2
check "repairs show in the counters" \
	sh -c "timeout -k 2 10 getfattr --only-values -n user.fusefs.counters '$T/m$F' 2>/dev/null | grep -qE '^block_repairs [1-9]'"

echo "test-faults: a flipped bit in the block of a member that is down, then the leader killed"
D=$(((L + 2) % 3))
stop "m$D"
set_fault "flip=$(qblock_off "$D")"
check "slot $D's block fails verification" qblock_bad "$D"
old=${RID[m$L]}
since=$(clock_ms)
crash "m$L"
member "$L" || bad "slot $L did not remount"
dt=$(wait_event "m0 m1 m2" "server: term [0-9]+: serving on" "$since" 20000)
check "a leader serves $dt ms after the leader was killed and restarted" test "$dt" -lt 20000
check "the client reaches it" serving_now
figure "3 flipped bit in a down member's block, leader killed: serving after" "$dt"
check "the fence agent was told slot $D's block is unreadable, and why" \
	grep -q "slot=$D port=$((PORT + D)) term=.* reason=quorum_block_unreadable detail=.*crc check failed" "$T/fence-record"
check "the fence agent fenced the killed leader rid $old" grep -q "rid=$old slot=$L " "$T/fence-record"
mkdir -p "$T/bad"
out=$(timeout 30 "$MOUNT" -f -o "metadev_path=$DEV,quorum_slot_nr=$D,quorum_heartbeat_timeout_ms=$HB" "$T/bad" 2>&1)
rc=$?
check "remounting slot $D is refused in one line naming the repair: $out" \
	test $rc -ne 0 -a "$(wc -l <<<"$out")" = 1 -a -n "$(grep -F quorum_repair <<<"$out")"
is_mounted "$T/bad" && fusermount3 -u -z "$T/bad"
check "-o quorum_repair rebuilds it and mounts" member "$D" ",quorum_repair"
check "its log says how it was rebuilt" grep -q "rebuilt our unreadable quorum block" "$(log_of "m$D")"
check "slot $D's block verifies again" not qblock_bad "$D"
check "the data written before the faults is there" cread before "written before the faults"
check "every member is still a member" all_members_alive

# ---------------------------------------------------------------------------
echo "test-faults: 6 s of EIO on every member"
cwrite before-eio "written before the errors" || bad "cannot write through the client"
since=$(clock_ms)
set_fault eio=1
t0=$(now_ms)
sleep 3
# the status reads run beside the errors: a slow read must not stretch them
for i in 0 1 2; do
	xattr "m$i" quorum.status >"$T/status-$i" &
done
sleep_until $((t0 + 6000))
set_fault eio=0
end=$(clock_ms)
echo "  (EIO for $(($(now_ms) - t0)) ms)"
wait
failing=$(cat "$T"/status-? | grep -c "device_state failing")
check "the status of $failing members showed device_state failing" test "$failing" -ge 1
dt=$(log_after "m0 m1 m2" "out of elections, retrying" "$since")
check "a member stepped down ${dt:-?} ms after the errors began, out of elections, retrying" test -n "$dt"
dt=$(wait_event "m0 m1 m2" "server: term [0-9]+: serving on" "$end" 20000)
check "a leader serves $dt ms after the errors ended" test "$dt" -lt 20000
check "the client reaches it" serving_now
figure "4 6 s of EIO on all members: serving after the end" "$dt"
check "no member left the quorum on its own" not grep -q "no longer takes part in elections" \
	"$(log_of m0)" "$(log_of m1)" "$(log_of m2)"
# A leader whose STOP could not be written while the device failed still
# looks like a running leader on disk, so the next leader fences it (that is
# the rule; docs/quorum.md, "Device faults").  Such a member is the only one
# that may need a restart: as a fence agent would, the test remounts it.
for i in 0 1 2; do
	if ! kill -0 "${PID[m$i]}" 2>/dev/null; then
		check "slot $i, gone, was fenced by the next leader (its STOP was not on disk)" \
			grep -q "rid=${RID[m$i]} slot=$i .*reason=quorum_block_leader" "$T/fence-record"
		crash "m$i"
		member "$i" || bad "slot $i did not remount"
	else
		ok "slot $i came back on its own, no remount"
	fi
done
check "a member said it is back in elections" test -n "$(log_after "m0 m1 m2" "back in elections" "$since")"
outages=0
for i in 0 1 2; do
	n=$(xattr "m$i" quorum.status | awk '/^device_outages/ {print $2}')
	outages=$((outages + ${n:-0}))
done
check "the status counts $outages device outages" test "$outages" -ge 1
# a member retries at most 1 s apart: within a few seconds every one says so
device_ok_everywhere() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(timeout -k 2 10 getfattr --only-values -n user.fusefs.quorum.status \
			"$T/m0" "$T/m1" "$T/m2" 2>/dev/null | grep -c '^device_state ok')" = 3 ] && return 0
		sleep 0.1
	done
	return 1
}
check "the status says the device is ok again" device_ok_everywhere
check "the data written before the errors is there" cread before-eio "written before the errors"

# ---------------------------------------------------------------------------
echo "test-faults: every device I/O delayed by 1 s, then the leader killed"
L=$(leader)
L=${L:-0}
survivors="m$(((L + 1) % 3)) m$(((L + 2) % 3))"
set_fault delay_ms=1000
sleep 1
since=$(clock_ms)
crash "m$L"
dt=$(wait_event "$survivors" "elected leader in term" "$since" 40000)
check "a new leader is elected $dt ms after the leader was killed, every I/O taking 1 s" \
	test "$dt" -lt 40000
figure "5 every I/O delayed 1 s, leader killed: elected after" "$dt"
cleared=$(clock_ms)
set_fault delay_ms=0
dt=$(wait_event "$survivors" "server: term [0-9]+: serving on" "$since" 40000)
check "it serves $dt ms after the kill ($((cleared - since)) ms with the delay on)" test "$dt" -lt 40000
check "the client reaches it" serving_now
figure "5 ... and serving after (delay ended at $((cleared - since)) ms)" "$dt"
check "no member left the quorum" all_members_alive
check "the data written before the faults is there" cread before-eio "written before the errors"
stop_all

echo "test-faults: time to a serving leader (heartbeat timeout $HB ms)"
for f in "${FIG[@]}"; do echo "  $f"; done
echo "test-faults: $PASS passed, $FAIL failed"
if [ "$FAIL" -ne 0 ]; then
	for f in "$T"/*.log; do
		echo "--- $f"
		grep -hE "fenc|serving|elected|lease|resign|stopp|quorum block|device|elections|repair|refus" "$f" | tail -40
	done
	exit 1
fi
exit 0
