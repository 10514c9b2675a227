#!/bin/bash
# test-netns.sh - the cluster under real network faults: three members and
# a client, each in a network namespace of its own on a private bridge
# (scripts/cluster.sh up --netns), a writer on the client throughout
# (fusefs-writer: every step acknowledged is checked at the end).
#
#   1. the leader cut from every other member (nftables drop rules inside
#      its namespace): the majority elects a new leader and fences the old
#      one, the old one stops serving before the new one serves, the
#      writer rides through; healed (the old member mounted again): one
#      leader, one server;
#   2. a follower cut off and healed: the leader keeps leading, in the same
#      term (pre-vote: the follower's return starts no election);
#   3. one-way cuts: the leader's packets out dropped, then its packets in:
#      one leader serves after each, the writer rides through;
#   4. a stranger in a namespace of its own, without the cluster secret,
#      floods every member's quorum port for FLOOD_SECS (forged and random
#      datagrams, as fast as one core sends): no election, the same leader
#      in the same term, the writer goes on; then it holds the server's TCP
#      port with connections that never greet: the writer goes on;
#   5. device faults, the shared device being a fault-injecting FUSE file
#      (fusefs-faultfs): every I/O stalled for 5 s (the largest gap between
#      the leader's heartbeats meanwhile is measured), a follower's quorum
#      block corrupted under it (it rewrites it), 2 s of EIO on every I/O:
#      the writer rides through each;
#   6. 20% random packet loss on every link (nftables numgen) for
#      LOSS_SECS: a leader serves at the end, the writer went on;
#   7. the writer stops; every step it had acknowledged is there, none
#      twice; the cluster goes down and leaves no namespace or mount.
# Ends with a table of the failover times.
#
# Needs root, /dev/fuse, network namespaces and nft (says so and skips
# without).  Cleans up on any exit.
# Usage: scripts/test-netns.sh [BUILD_DIR] [LOSS_SECS] [FLOOD_SECS]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
LOSS_SECS=${2:-60}
FLOOD_SECS=${3:-30}
HB=2000
CLUSTER=$(dirname "$(realpath "$0")")/cluster.sh

skip() {
	echo "SKIP: test-netns: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root for namespaces and FUSE mounts"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"
command -v nft >/dev/null || skip "needs nft (apt-get install nftables)"
command -v nsenter >/dev/null || skip "needs nsenter (util-linux)"
ip netns add fusefs-probe-$$ 2>/dev/null || skip "cannot make network namespaces here"
ip netns del fusefs-probe-$$

T=$(mktemp -d /var/tmp/fusefs-netns.XXXXXX)
D=$T/c
FF=$T/ff
DEV=$FF/disk
WRITER=""
FFPID=""
SAMPLER=""
set_fault() { timeout 5 sh -c "echo '$1' >'$FF/ctl'"; }
cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	[ -n "$FFPID" ] && set_fault eio=0 2>/dev/null && set_fault delay_ms=0 2>/dev/null
	[ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
	FUSEFS_BUILD=$BUILD "$CLUSTER" down "$D" >/dev/null 2>&1
	if [ -n "$FFPID" ]; then
		is_mounted "$FF" && fusermount3 -u -z "$FF" 2>/dev/null
		gone "$FFPID" 30 || kill -9 "$FFPID" 2>/dev/null
	fi
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# evidence on a failure: every mount's status and the ends of the logs
evidence() {
	local f
	echo "  --- evidence ---"
	FUSEFS_BUILD=$BUILD "$CLUSTER" status "$D" 2>&1 | head -12 | sed 's/^/  /'
	for f in "$D"/logs/m*.log "$D"/logs/c*.log; do
		echo "  $(basename "$f"):"
		tail -6 "$f" | sed 's/^/    /'
	done
}
fail_now() {
	evidence
	echo "test-netns: $PASS passed, $FAIL failed (stopped at the first failure)"
	exit 1
}
# must "what" CMD...: a check that ends the script with the evidence when it fails
must() { check "$@" || fail_now; }

ns() { awk -v k="ns.$1" '$1 == k {print $2}' "$D/state"; }
dx() { getfattr --absolute-names --only-values -n "user.fusefs.$2" "$D/$1" 2>/dev/null; }
pid_of() { awk -v k="pid.$1" '$1 == k {print $2}' "$D/state" | tail -1; }

# the slot that leads and serves, as every mounted member agrees; empty if none
leader_now() {
	local i l=""
	for i in 0 1 2; do
		is_mounted "$D/m$i" || continue
		[ "$(dx "m$i" quorum.is_leader)" = 1 ] && { [ -z "$l" ] || return 1; l=$i; }
	done
	echo "$l"
}
term_of() { dx "m$1" quorum.status | awk '/^term/ {print $2}'; }
# wait_new_leader NOT SECS: a leader other than NOT that the client is served by; prints it
wait_new_leader() {
	local i l
	for ((i = 0; i < $2 * 20; i++)); do
		l=$(leader_now)
		if [ -n "$l" ] && [ "$l" != "$1" ] && dx c0 server | grep -q serving; then
			echo "$l"
			return 0
		fi
		sleep 0.05
	done
	return 1
}
# cut NAME [in|out|both]: drop NAME's packets on its bridge link, inside its namespace
cut() {
	local dir=${2:-both} rules=""
	[ "$dir" != out ] && rules="$rules chain in { type filter hook input priority 0; iifname eth0 drop; };"
	[ "$dir" != in ] && rules="$rules chain out { type filter hook output priority 0; oifname eth0 drop; };"
	ip netns exec "$(ns "$1")" nft "add table inet fzcut { $rules }"
}
heal() { ip netns exec "$(ns "$1")" nft delete table inet fzcut 2>/dev/null; }
# lossy NAME PCT: NAME drops PCT% of the packets it receives (nftables
# numgen), so every path between two namespaces loses PCT% each way
lossy() {
	ip netns exec "$(ns "$1")" nft "add table inet fzloss { chain in { type filter hook input priority 0; iifname eth0 numgen random mod 100 < $2 drop; }; }"
}
unlossy() { ip netns exec "$(ns "$1")" nft delete table inet fzloss 2>/dev/null; }
steps_done() {
	local n
	n=$(tr -d ' \n' 2>/dev/null <"$T/progress")
	echo "${n:-0}"
}
# writer_goes_on SECS: the writer acknowledges a step within SECS; prints the wait in ms
writer_goes_on() {
	local s0 t0 i
	s0=$(steps_done)
	t0=$(now_ms)
	for ((i = 0; i < $1 * 20; i++)); do
		[ "$(steps_done)" -gt "$s0" ] && { echo $(($(now_ms) - t0)); return 0; }
		kill -0 "$WRITER" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
# log_ms FILE PATTERN: the time of day (ms) of FILE's last line matching PATTERN
log_ms() {
	grep -a "$2" "$1" | tail -1 | awk '{split($1, t, "[:.]"); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4]}'
}
# remount NAME SLOT: a member mounted again in its namespace (a follower now)
remount() {
	local pid
	is_mounted "$D/$1" && fusermount3 -u -z "$D/$1"
	# shellcheck disable=SC2046
	nsenter --net="/run/netns/$(ns "$1")" setsid "$BUILD/fusefs-mount" -f \
		-o "metadev_path=$DEV,quorum_slot_nr=$2,quorum_heartbeat_timeout_ms=$HB" "$D/$1" \
		>>"$D/logs/$1.log" 2>&1 </dev/null &
	pid=$!
	echo "pid.$1 $pid" >>"$D/state"
	for ((i = 0; i < 150; i++)); do
		is_mounted "$D/$1" && return 0
		sleep 0.1
	done
	return 1
}
# wait_follows NAME SLOT: NAME is a follower in SLOT's term (10 s at most)
wait_follows() {
	local i
	for ((i = 0; i < 200; i++)); do
		dx "$1" quorum.status | grep -q "^role [0-9]* (follower)" &&
			[ "$(dx "$1" quorum.status | awk '/^term/ {print $2}')" = "$(term_of "$2")" ] && return 0
		sleep 0.05
	done
	return 1
}
# remount_fenced WHY: every member whose process is gone (fenced) mounts again
remount_fenced() {
	local i
	for i in 0 1 2; do
		if ! is_mounted "$D/m$i" || ! kill -0 "$(pid_of "m$i")" 2>/dev/null; then
			must "m$i (fenced $1) mounts again" remount "m$i" "$i"
		fi
	done
}
FO_TIMES=()

echo "test-netns: a cluster in namespaces"
truncate -s 1G "$T/back.img"
mkdir -p "$FF"
"$BUILD/fusefs-faultfs" -f "$T/back.img" "$FF" >"$T/faultfs.log" 2>&1 </dev/null &
FFPID=$!
for ((i = 0; i < 50; i++)); do
	[ -e "$DEV" ] && break
	sleep 0.1
done
must "the shared device is a fault-injecting file (fusefs-faultfs)" test -e "$DEV"
must "three members and a client, each in its own namespace (cluster.sh up --netns)" \
	eval 'FUSEFS_BUILD=$BUILD "$CLUSTER" up "$D" -m 3 -c 1 -t $HB --netns --dev "$DEV" >"$T/up.out" 2>&1'
must "the host got no interface from it" not eval 'ip -o link | grep -q "fz"'
L=$(wait_new_leader -1 20)
must "a leader serves the client (m$L)" test -n "$L"
mkdir -p "$D/c0/w"
"$BUILD/fusefs-writer" -w "$D/c0/w" "$T/stop" "$T/progress" >"$T/writer.out" 2>"$T/writer.err" &
WRITER=$!
must "the writer writes through the client" writer_goes_on 10 >/dev/null

# leader_cut DIR: the leader's packets cut (both ways, or only out or in):
# another leads and serves, the writer rides through, and once healed the
# old leader (mounted again if it was fenced) follows the new one
leader_cut() {
	local dir=$1 fo w stop_ms serve_ms
	L=$(leader_now)
	t0=$(now_ms)
	cut "m$L" "$dir"
	L2=$(wait_new_leader "$L" 20)
	fo=$(($(now_ms) - t0))
	FO_TIMES+=("leader-cut-$dir $fo")
	must "the leader's packets cut ($dir): m$L2 leads and serves, $fo ms after the cut" test -n "$L2"
	if [ "$dir" = both ]; then
		stop_ms=$(log_ms "$D/logs/m$L.log" "stopped\|lease")
		serve_ms=$(log_ms "$D/logs/m$L2.log" "serving on")
		must "the cut-off leader stopped serving (${stop_ms:-never}) before the new one served (${serve_ms:-never})" \
			test -n "$stop_ms" -a -n "$serve_ms" -a "${stop_ms:-0}" -lt "${serve_ms:-0}"
		# it still reaches the device: it records that its server stopped
		# (then no fence is needed), or the new leader finds it did not and fences it
		must "and it resigned on the device, or was fenced" \
			eval 'grep -q "server of term [0-9]* stopped" "$D/logs/m$L.log" || gone "$(pid_of "m$L")" 1'
	fi
	w=$(writer_goes_on 20)
	must "the writer rode through (next step ${w:-never} ms later)" test -n "$w"
	heal "m$L"
	if gone "$(pid_of "m$L")" 1; then
		must "healed: m$L (fenced) mounts again" remount "m$L" "$L"
	fi
	must "healed: m$L follows m$L2" wait_follows "m$L" "$L2"
	must "one leader, and it is still m$L2" eval '[ "$(leader_now)" = "$L2" ]'
}

echo "test-netns: the leader cut off from everyone"
leader_cut both

echo "test-netns: a follower cut off and healed"
F=$(( (L2 + 1) % 3 ))
term0=$(term_of "$L2")
cut "m$F"
w=$(writer_goes_on 10)
must "the writer goes on while m$F is cut off (${w:-never} ms)" test -n "$w"
# long enough for the follower to time out and campaign, alone
for ((i = 0; i < 3 * HB / 50; i++)); do sleep 0.05; done
heal "m$F"
w=$(writer_goes_on 10)
must "healed, the writer goes on (${w:-never} ms)" test -n "$w"
for ((i = 0; i < 2 * HB / 50; i++)); do sleep 0.05; done
must "m$L2 still leads, in the same term ($term0 -> $(term_of "$L2")): pre-vote" \
	eval '[ "$(leader_now)" = "$L2" ] && [ "$(term_of "$L2")" = "$term0" ]'

echo "test-netns: one-way cuts"
leader_cut out
leader_cut in

echo "test-netns: a stranger floods the quorum ports for $FLOOD_SECS s, then holds the server's port"
prefix=$(awk '$1 == "ns" {print $2; exit}' "$D/state" | sed 's/-br$//')
X=$prefix-x
echo "ns $X" >>"$D/state" # (cluster.sh down takes it away with the rest)
ip netns add "$X" && ip -n "$prefix-br" link add vx type veth peer name eth0 netns "$X" &&
	ip -n "$prefix-br" link set vx master br0 up && ip -n "$X" addr add 10.213.0.200/24 dev eth0 &&
	ip -n "$X" link set eth0 up && ip -n "$X" link set lo up
must "the stranger's namespace is on the bridge" test $? = 0
L=$(leader_now)
term0=$(term_of "$L")
inv0=$(dx "m$L" counters | awk '$1 == "recv_invalid" {print $2}')
ack0=$(dx "m$L" counters | awk '$1 == "recv_heartbeat_ack" {print $2}')
s0=$(steps_done)
ip netns exec "$X" "$BUILD/fusefs-hostile" "$DEV" 10.213.0.10,10.213.0.11,10.213.0.12 7000 \
	--udp "$FLOOD_SECS" >"$T/flood.out" 2>&1
s1=$(steps_done)
inv1=$(dx "m$L" counters | awk '$1 == "recv_invalid" {print $2}')
ack1=$(dx "m$L" counters | awk '$1 == "recv_heartbeat_ack" {print $2}')
must "the flood ran: $(cat "$T/flood.out"), the leader rejected $((inv1 - inv0))" \
	test "$((inv1 - inv0))" -gt 1000
must "genuine heartbeats got through: $((ack1 - ack0)) acks reached the leader" \
	test "$((ack1 - ack0))" -gt "$FLOOD_SECS"
must "no election: m$L still leads, in term $term0" \
	eval '[ "$(leader_now)" = "$L" ] && [ "$(term_of "$L")" = "$term0" ]'
must "the writer went on ($((s1 - s0)) steps during the flood)" test "$((s1 - s0))" -gt 0
ip netns exec "$X" "$BUILD/fusefs-hostile" "$DEV" "10.213.0.$((10 + L))" 7000 \
	--idle 200 10 10.213.0.200 >"$T/idle.out" 2>&1 &
IDLE=$!
w=$(writer_goes_on 10)
must "while a stranger holds 200 connections to the server, the writer goes on (${w:-never} ms)" \
	test -n "$w"
wait "$IDLE"
must "and the server closed the stranger's connections ($(tail -1 "$T/idle.out"))" test $? = 0
w=$(writer_goes_on 10)
must "the writer goes on afterwards (${w:-never} ms)" test -n "$w"

echo "test-netns: device faults under the writer"
L=$(leader_now)
L0=$L
# the largest gap between the leader's heartbeats, sampled every 50 ms
# meanwhile, for as long as it leads
(
	max=0
	while :; do
		g=$(dx "m$L" quorum.status | awk '/^role/ && $3 != "(leader)" {exit} /^last_send to .* type 3 / {if ($NF > m) m = $NF} END {print m + 0}')
		max=$(awk -v a="$max" -v b="$g" 'BEGIN {print (b > a) ? b : a}')
		echo "$max" >"$T/hbgap"
		sleep 0.05
	done
) &
SAMPLER=$!
must "every device I/O stalls for 5 s" set_fault delay_ms=5000
for ((i = 0; i < 100; i++)); do sleep 0.05; done
set_fault delay_ms=0
w=$(writer_goes_on 30)
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=""
HBGAP=$(awk '{printf "%d", $1 * 1000}' "$T/hbgap")
must "the writer rode through the stall (next step ${w:-never} ms after it ended)" test -n "$w"
# (a stall this long may time out the leader's block I/O, so that it steps
# down and the next leader fences it: then its gap counts until it stepped down)
L=$(wait_new_leader -1 30)
must "a leader serves after the stall (m$L)" test -n "$L"
must "m$L0's heartbeats went on while it led: the largest gap was $HBGAP ms (the timeout: $HB$([ "$L" != "$L0" ] && echo "; it stepped down, m$L leads now"))" \
	test "$HBGAP" -lt "$HB"
remount_fenced "after the stall"
F=$(((L + 1) % 3))
must "m$F follows m$L" wait_follows "m$F" "$L"
rep0=$(dx "m$F" counters | awk '$1 == "block_repairs" {print $2}')
must "a flipped bit in follower m$F's quorum block, under it" \
	set_fault flip=$(((17 + F) * 4096 + 1000))
for ((i = 0; i < 200; i++)); do
	[ "$(dx "m$F" counters | awk '$1 == "block_repairs" {print $2}')" -gt "${rep0:-0}" ] 2>/dev/null && break
	sleep 0.05
done
must "m$F found it and rewrote its block" test "$i" -lt 200
w=$(writer_goes_on 20)
must "the writer goes on (${w:-never} ms)" test -n "$w"
must "2 s of EIO on every device I/O" set_fault eio=1
for ((i = 0; i < 40; i++)); do sleep 0.05; done
set_fault eio=0
w=$(writer_goes_on 60)
must "the writer rode through the errors (next step ${w:-never} ms after they ended)" test -n "$w"
L=$(wait_new_leader -1 30)
must "a leader serves after the errors (m$L)" test -n "$L"

echo "test-netns: 20% packet loss on every link for $LOSS_SECS s"
for n in m0 m1 m2 c0; do
	must "$n drops 20% of the packets it receives" lossy "$n" 20
done
s0=$(steps_done)
for ((i = 0; i < LOSS_SECS * 10; i++)); do sleep 0.1; done
s1=$(steps_done)
for n in m0 m1 m2 c0; do unlossy "$n"; done
must "the writer went on under the loss ($((s1 - s0)) steps)" test "$((s1 - s0))" -gt 0
for ((i = 0; i < 3; i++)); do
	L=$(wait_new_leader -1 20) && break
done
must "a leader serves after the loss (m$L)" test -n "$L"
remount_fenced "under the loss"

echo "test-netns: the end"
touch "$T/stop"
wait "$WRITER"
st=$?
WRITER=""
n=$(cat "$T/writer.out")
must "the writer ended cleanly after $n steps" test "$st" = 0
must "every acknowledged step is there, none twice (fusefs-writer -c)" \
	"$BUILD/fusefs-writer" -c "$D/c0/w" "$n"
must "one leader, one server" test -n "$(leader_now)"
must "the cluster goes down" eval 'FUSEFS_BUILD=$BUILD "$CLUSTER" down "$D" >/dev/null 2>&1'
must "leaving no namespace" not eval 'ip netns list | grep -q "^$prefix-"'
must "and no mount" not grep -q " $D/" /proc/mounts

echo "test-netns: figures"
printf '  %-32s %s\n' "failover" "ms"
for f in "${FO_TIMES[@]}"; do printf '  %-32s %s\n' ${f}; done
printf '  %-32s %s\n' "heartbeat gap, 5 s device stall" "$HBGAP"
echo "test-netns: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
