#!/bin/bash
# test-integration.sh - real fusefs-mount processes: three quorum members and
# a plain client on loopback ports, one metadata file.
#
#   1. a leader is elected, every mount agrees who it is, fusefs-print shows
#      its ELECT and FENCE;
#   2. SIGKILL of the leader (heartbeat timeout 2000 ms): a new leader serves
#      within [1000, 4000] ms and fenced the old one (its log and the fence
#      agent's record say so);
#   3. clean unmount of the leader: a new leader within 1.5 s (resignation);
#   4. the heartbeat timeout set at run time (1000 ms) shortens the failover,
#      and bad values are refused with EINVAL, leaving the old value;
#   5. SIGSTOP of the leader: the new leader's local fencer kills the stopped
#      process before it serves; SIGCONT afterwards changes nothing;
#   6. every bad mount option fails with its own message and leaves no mount;
#      a daemonized mount reports success and failure through its exit status;
#   7. SIGTERM makes a member leave cleanly (END recorded);
#   8. the failover delay follows the heartbeat timeout, set by mount
#      option (2000 ms) and then at run time with setfattr (3000, 12000
#      ms): a new leader serves within [timeout - 1000, timeout + 5000] ms
#      of a SIGKILL (the scoutfs quorum-heartbeat-timeout check).
#
# Needs root and /dev/fuse (it skips, saying so, without them).  Cleans up
# after itself on any exit: unmounts, kills only the PIDs it started.
# Usage: scripts/test-integration.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
MOUNT=$BUILD/fusefs-mount
MKFS=$BUILD/fusefs-mkfs
PRINT=$BUILD/fusefs-print

skip() {
	echo "SKIP: test-integration: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems and signal mount processes"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"
for c in fusermount3 getfattr setfattr; do
	command -v $c >/dev/null || skip "needs $c"
done

T=$(mktemp -d /var/tmp/fusefs-it.XXXXXX)
declare -A PID
declare -A RID

cleanup() {
	local n
	kill_mounts
	for n in "$T"/*/; do
		is_mounted "$n" 2>/dev/null && fusermount3 -u -z "$n" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a fresh filesystem with three slots on fresh ports
new_fs() {
	PORT=$((20000 + (RANDOM % 3000) * 10))
	DEV=$T/meta-$PORT.img
	truncate -s 64M "$DEV"
	"$MKFS" -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" -Q "2,127.0.0.1,$((PORT + 2))" \
		"$DEV" >/dev/null
}

# start NAME OPTIONS: a foreground mount at $T/NAME, waits until mounted
start() {
	mount_bg "$1" "$2" "$MOUNT" "$(log_of "$1")" || return 1
	RID[$1]=$(xattr "$1" rid)
}

member() { # member SLOT [EXTRA]
	start "m$1" "metadev_path=$DEV,quorum_slot_nr=$1,quorum_heartbeat_timeout_ms=${HB:-2000}${2:-}"
}

# stop, stop_all and leader are in lib.sh

# wait_serving NOT_PORT LIMIT_MS: until the client greets a server on another
# port; prints the elapsed ms, fails after LIMIT_MS
wait_serving() {
	local not=$1 limit=$2 start s
	start=$(now_ms)
	while (($(now_ms) - start < limit)); do
		s=$(xattr c server)
		if [[ $s == *serving* && $s != *":$not "* ]]; then
			echo $(($(now_ms) - start))
			return 0
		fi
		sleep 0.05
	done
	echo "$limit"
	return 1
}

SCEN=0
log_of() { echo "$T/$1.$SCEN.log"; }

cluster() { # cluster [EXTRA_MEMBER_OPTS]
	SCEN=$((SCEN + 1))
	new_fs
	member 0 "${1:-}" && member 1 "${1:-}" && member 2 "${1:-}" && start c "metadev_path=$DEV" || return 1
	wait_serving none 15000 >/dev/null
}

# ---------------------------------------------------------------------------
echo "test-integration: election, agreement, fencing with fence_cmd"
cat >"$T/fence-agent.sh" <<EOF
#!/bin/sh
# records each request; kills the process when it is on this host
echo "rid=\$FUSEFS_FENCE_RID slot=\$FUSEFS_FENCE_SLOT addr=\$FUSEFS_FENCE_ADDR port=\$FUSEFS_FENCE_PORT term=\$FUSEFS_FENCE_TERM reason=\$FUSEFS_FENCE_REASON pid=\${FUSEFS_FENCE_PID:-} scoutfs_rid=\$SCOUTFS_FENCED_REQ_RID scoutfs_ip=\$SCOUTFS_FENCED_REQ_IP" >>"$T/fence-record"
[ -n "\${FUSEFS_FENCE_PID:-}" ] && kill -9 "\$FUSEFS_FENCE_PID" 2>/dev/null
echo "fenced \$FUSEFS_FENCE_RID"
exit 0
EOF
chmod +x "$T/fence-agent.sh"
HB=2000
cluster ",fence_cmd=$T/fence-agent.sh" || bad "cluster did not come up"

L=$(leader)
check "a leader is elected" test -n "$L"
L=${L:-0}
want="127.0.0.1:$((PORT + L)) term"
agree=1
for n in m0 m1 m2 c; do
	s=$(xattr $n server)
	[[ $s == "$want"*serving* ]] || agree=0
done
check "every mount names slot $L as the server" test $agree = 1
term=$(xattr "m$L" quorum.status | awk '/^term/ {print $2}')
blk=$("$PRINT" "$DEV" | sed -n "/quorum block of slot $L /,/^\$/p")
check "fusefs-print shows slot $L's ELECT in term $term" grep -qE "^  elect +${RID[m$L]} +$term " <<<"$blk"
check "fusefs-print shows slot $L's FENCE in term $term" grep -qE "^  fence +${RID[m$L]} +$term " <<<"$blk"
check "the plain client has status without quorum lines" \
	test "$(xattr c quorum.status)" = "$(printf 'quorum_slot_nr none\nrole client')"
names=$(getfattr -d -m - "$T/m0" 2>/dev/null | grep -c '^user.fusefs')
check "getfattr -d -m - lists the 7 status xattrs" test "$names" = 7

echo "test-integration: SIGKILL of the leader"
old=${RID[m$L]}
kill -9 "${PID[m$L]}"
dt=$(wait_serving $((PORT + L)) 8000)
check "a new leader serves ${dt} ms after SIGKILL (want 1000..4000)" test "$dt" -ge 1000 -a "$dt" -le 4000
L2=$(leader)
L2=${L2:-0}
# (by the first leader after the kill: when its election needed two rounds,
# the one that leads now may have found it fenced already)
if ! check "a new leader's log records fencing rid $old" grep -q "fenced rid $old slot $L " \
	"$(log_of "m$(((L + 1) % 3))")" "$(log_of "m$(((L + 2) % 3))")"; then
	grep -hE "fenc|serving|elected|lease|resign|stopp" "$T"/m?."$SCEN".log | sort | sed 's/^/    /'
fi
check "the fence agent's record names rid $old, slot $L, its term" \
	grep -q "rid=$old slot=$L addr=127.0.0.1 port=$((PORT + L)) term=$term reason=quorum_block_leader .* scoutfs_rid=$old scoutfs_ip=127.0.0.1" "$T/fence-record"
fusermount3 -u -z "$T/m$L"
unset "PID[m$L]"
member "$L" ",fence_cmd=$T/fence-agent.sh" || bad "slot $L did not remount"

echo "test-integration: clean unmount of the leader"
L=$L2
fusermount3 -u "$T/m$L"
dt=$(wait_serving $((PORT + L)) 5000)
check "a new leader serves ${dt} ms after the leader unmounted (want <= 1500)" test "$dt" -le 1500
check "the unmounted leader's process exited" gone "${PID[m$L]}"
check "its block records STOP and END" sh -c "'$PRINT' '$DEV' | sed -n '/quorum block of slot $L /,/^\$/p' | grep -qE '^  end +${RID[m$L]} '"
check "its log says it resigned" grep -q "resigned leadership" "$(log_of "m$L")"
unset "PID[m$L]"
member "$L" ",fence_cmd=$T/fence-agent.sh" || bad "slot $L did not remount"

echo "test-integration: the heartbeat timeout at run time"
for i in 0 1 2; do
	setfattr -n user.fusefs.quorum_heartbeat_timeout_ms -v 1000 "$T/m$i" || bad "setfattr 1000 on m$i"
done
check "getfattr shows 1000" test "$(xattr m1 quorum_heartbeat_timeout_ms)" = 1000
for v in 100 499 60001 abc ""; do
	out=$(setfattr -n user.fusefs.quorum_heartbeat_timeout_ms -v "$v" "$T/m1" 2>&1)
	rc=$?
	check "setfattr '$v' is refused with EINVAL" test $rc -ne 0 -a -n "$(grep 'Invalid argument' <<<"$out")"
done
check "the refused values left 1000" test "$(xattr m1 quorum_heartbeat_timeout_ms)" = 1000
check "a plain client refuses the setting" sh -c "! setfattr -n user.fusefs.quorum_heartbeat_timeout_ms -v 1000 '$T/c' 2>/dev/null"
sleep 2.5 # promises made with the old 2000 ms run out
L=$(leader)
L=${L:-0}
kill -9 "${PID[m$L]}"
dt=$(wait_serving $((PORT + L)) 8000)
check "with 1000 ms the failover took ${dt} ms (want 500..2000)" test "$dt" -ge 500 -a "$dt" -le 2000
fusermount3 -u -z "$T/m$L"
unset "PID[m$L]"

echo "test-integration: SIGTERM leaves cleanly"
F=$(((L + 1) % 3))
kill -TERM "${PID[m$F]}"
check "SIGTERM ended slot $F's process" gone "${PID[m$F]}"
check "and unmounted it" not is_mounted "$T/m$F"
check "and recorded END" sh -c "'$PRINT' '$DEV' | sed -n '/quorum block of slot $F /,/^\$/p' | grep -qE '^  end +${RID[m$F]} '"
unset "PID[m$F]"
stop_all

# ---------------------------------------------------------------------------
echo "test-integration: the failover follows the heartbeat timeout (2000, 3000, 12000 ms)"
HB=2000
cluster || bad "cluster did not come up"
for t in 2000 3000 12000; do
	if [ "$t" != 2000 ]; then # (raised at run time: no promise of a shorter one to wait out)
		for n in "${!PID[@]}"; do
			[[ $n == m* ]] && { setfattr -n user.fusefs.quorum_heartbeat_timeout_ms -v "$t" "$T/$n" ||
				bad "setfattr $t on $n"; }
		done
	fi
	L=$(leader)
	L=${L:-0}
	# until the leader's heartbeats with it reached the followers: their
	# election timers run the new length (bounded: 5 s)
	for ((i = 0; i < 100; i++)); do
		late=0
		for n in m0 m1 m2; do
			[ "$n" = "m$L" ] && continue
			awk -v min=$(((t - 500) / 100))e-1 '/^timeout_in_secs/ {exit !($2 > min)}' \
				<<<"$(xattr "$n" quorum.status)" || late=1
		done
		[ "$late" = 0 ] && break
		sleep 0.05
	done
	check "m$L's timeout is $t ms ($([ "$t" = 2000 ] && echo "mount option" || echo setfattr))" \
		test "$(xattr "m$L" quorum_heartbeat_timeout_ms)" = "$t"
	kill -9 "${PID[m$L]}"
	dt=$(wait_serving $((PORT + L)) $((t + 8000)))
	check "with $t ms a new leader serves ${dt} ms after SIGKILL (want $((t - 1000))..$((t + 5000)))" \
		test "$dt" -ge $((t - 1000)) -a "$dt" -le $((t + 5000))
	fusermount3 -u -z "$T/m$L"
	unset "PID[m$L]"
	HB=$t
	member "$L" || bad "slot $L did not remount"
done
stop_all

# ---------------------------------------------------------------------------
echo "test-integration: SIGSTOP of the leader, local fencer"
HB=2000
cluster || bad "cluster did not come up"
L=$(leader)
L=${L:-0}
old=${RID[m$L]}
kill -STOP "${PID[m$L]}"
dt=$(wait_serving $((PORT + L)) 10000)
check "a new leader serves ${dt} ms after SIGSTOP" test "$dt" -lt 10000
check "the stopped leader's process is gone" gone "${PID[m$L]}"
L2=$(leader)
L2=${L2:-0}
log=$(log_of "m$L2")
fenced=$(grep -n "fenced rid $old slot $L .*killed pid ${PID[m$L]} (SIGKILL) and it exited" "$log" | tail -1 | cut -d: -f1)
serving=$(grep -n "serving on" "$log" | tail -1 | cut -d: -f1)
if ! check "slot $L2's local fencer killed pid ${PID[m$L]} before serving" test -n "$fenced" -a -n "$serving" -a "${fenced:-0}" -lt "${serving:-0}"; then
	grep -hE "fenc|serving|elected|lease|resign|stopp" "$T"/m?."$SCEN".log | sort | sed 's/^/    /'
fi
kill -CONT "${PID[m$L]}" 2>/dev/null
sleep 2
check "SIGCONT changed nothing: slot $L2 still leads" test "$(leader)" = "$L2"
fusermount3 -u -z "$T/m$L"
unset "PID[m$L]"

# ---------------------------------------------------------------------------
echo "test-integration: bad mount options"
F=$((3 - L - L2)) # the follower still running
mkdir -p "$T/bad"
truncate -s 64M "$T/zero.img"
other=$T/other.img
truncate -s 64M "$other"
"$MKFS" -Q "0,127.0.0.1,$((PORT + F))" "$other" >/dev/null
cp "$T/fence-agent.sh" "$T/not-exec"
chmod -x "$T/not-exec"
# refused NAME MESSAGE ARGS...: fails with one line holding MESSAGE, no mount left
refused() {
	local what=$1 msg=$2 out rc
	shift 2
	out=$(timeout 20 "$MOUNT" "$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		bad "$what: mount succeeded"
		fusermount3 -u -z "$T/bad" 2>/dev/null
	elif ! grep -qF -- "$msg" <<<"$out"; then
		bad "$what: got '$out', want '$msg'"
	elif [ "$(wc -l <<<"$out")" -ne 1 ]; then
		bad "$what: more than one line: $out"
	elif is_mounted "$T/bad"; then
		bad "$what: left a mount behind"
	else
		ok "$what: $out"
	fi
}
refused "slot out of range" "quorum_slot_nr=15: not a slot number 0..14" -f -o "metadev_path=$DEV,quorum_slot_nr=15" "$T/bad"
refused "slot not configured" "quorum_slot_nr=5 references a slot that is not configured on $DEV; configured slots: 0,1,2" -f -o "metadev_path=$DEV,quorum_slot_nr=5" "$T/bad"
refused "slot given twice" "quorum_slot_nr given twice (1 and 2)" -f -o "metadev_path=$DEV,quorum_slot_nr=1,quorum_slot_nr=2" "$T/bad"
refused "timeout out of range" "quorum_heartbeat_timeout_ms=100: out of range 500..60000" -f -o "metadev_path=$DEV,quorum_slot_nr=1,quorum_heartbeat_timeout_ms=100" "$T/bad"
refused "not a fusefs device" "$T/zero.img: not a fusefs filesystem: block 16: crc check failed" -f -o "metadev_path=$T/zero.img" "$T/bad"
refused "missing device" "no metadata device" -f "$T/bad"
refused "fence_cmd not executable" "fence_cmd=$T/not-exec: not an executable file" -f -o "metadev_path=$DEV,quorum_slot_nr=1,fence_cmd=$T/not-exec" "$T/bad"
refused "slot already running here" "quorum slot $F is already mounted by pid ${PID[m$F]}" -f -o "metadev_path=$DEV,quorum_slot_nr=$F" "$T/bad"
refused "slot address this host cannot bind" "quorum slot 0 address 127.0.0.1:$((PORT + F)): cannot bind: Address already in use" -f -o "metadev_path=$other,quorum_slot_nr=0" "$T/bad"
refused "daemon mode reports the failure" "quorum_slot_nr=5 references a slot that is not configured" "$DEV" "$T/bad" -o quorum_slot_nr=5
out=$(timeout 20 "$MOUNT" "$DEV" "$T/bad" 2>&1)
rc=$?
check "a daemonized plain client (mount(8) form) exits 0 once mounted: $out" test $rc = 0 -a -z "$out"
check "and it is mounted" is_mounted "$T/bad"
dpid=""
for p in /proc/[0-9]*; do
	if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$MOUNT $DEV $T/bad"; then dpid=${p#/proc/}; fi
done
fusermount3 -u "$T/bad"
check "fusermount3 -u ended the daemon (pid ${dpid:-?})" gone "${dpid:-0}"
out=$(timeout 20 mount.fuse3 "$MOUNT#$DEV" "$T/bad" -o "rw,nosuid,nodev" 2>&1)
check "mount.fuse3 (what mount -t fuse.fusefs runs) mounts: $out" test $? = 0
check "and /proc/mounts shows it as fuse.fusefs on the device" grep -q "^$DEV $T/bad fuse.fusefs " /proc/mounts
dpid=""
for p in /proc/[0-9]*; do
	if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$MOUNT $DEV $T/bad"; then dpid=${p#/proc/}; fi
done
umount "$T/bad"
check "umount ends it (pid ${dpid:-?})" gone "${dpid:-0}"
stop_all

# ---------------------------------------------------------------------------
echo "test-integration: a fence agent that fails leaves every new leader not serving"
cat >"$T/fence-fails.sh" <<EOF
#!/bin/sh
# fails while $T/fence-fail exists, then fences like fence-agent.sh
if [ -e "$T/fence-fail" ]; then echo "cannot reach the power switch"; exit 1; fi
[ -n "\${FUSEFS_FENCE_PID:-}" ] && kill -9 "\$FUSEFS_FENCE_PID" 2>/dev/null
exit 0
EOF
chmod +x "$T/fence-fails.sh"
HB=1000
cluster ",fence_cmd=$T/fence-fails.sh" || bad "cluster did not come up"
L=$(leader)
L=${L:-0}
logs() { cat "$T"/m?."$SCEN".log; }
n0=$(logs | grep -c "serving on")
touch "$T/fence-fail"
kill -9 "${PID[m$L]}"
gone "${PID[m$L]}"
fusermount3 -u -z "$T/m$L"
unset "PID[m$L]"
# the survivors elect, run the agent, see it fail, step down, and again
for ((i = 0; i < 300; i++)); do
	[ "$(logs | grep -c "fence_cmd .* exited with status 1")" -ge 3 ] && break
	sleep 0.05
done
check "the survivors ran the agent and said it failed, $(logs | grep -c "fence_cmd .* exited with status 1") times: $(logs | grep -m1 "fence_cmd .* exited with status 1" | cut -c1-200)" \
	test "$(logs | grep -c "fence_cmd .* exited with status 1")" -ge 3
check "and none of them served ($n0 -> $(logs | grep -c "serving on") 'serving on' lines)" \
	test "$(logs | grep -c "serving on")" = "$n0"
check "and the client had no server meanwhile ($(xattr c server))" not eval '[[ $(xattr c server) == *serving* ]]'
rm "$T/fence-fail"
dt=$(wait_serving $((PORT + L)) 15000)
check "once the agent fences, a new leader serves (${dt} ms)" test "$dt" -lt 15000
stop_all

echo "test-integration: $PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
