#!/bin/bash
# cluster.sh - a local fusefs cluster on one metadata device: quorum
# members and plain client mounts under one working directory.
#
#   scripts/cluster.sh up [DIR] [OPTIONS]   build, make the filesystem, mount
#                                           every member and client, wait for
#                                           a leader, show the status table
#   scripts/cluster.sh status [DIR]         the table again, and the leader's
#                                           status text
#   scripts/cluster.sh down [DIR]           unmount everything, end the
#                                           processes, remove the namespaces,
#                                           the loop device and DIR
#   scripts/cluster.sh mount [DIR] NAME     mount NAME (m0.., c0..) again, as
#                                           up did: a member that was killed
#                                           or fenced comes back a follower
#
# Options of up:
#   -m, --members N    quorum members, 1..15 (default 3)
#   -c, --clients N    plain client mounts, 0..50 (default 1)
#   -t, --hb-ms MS     the heartbeat timeout (default 2000)
#   -s, --size SIZE    the metadata file's size, sparse (default 2G)
#   --loop             put the metadata file behind a loop device
#   --dev PATH         use PATH (made anew by mkfs) instead of DIR/meta.img
#   --netns            every member and client in a network namespace of its
#                      own, with its own address on a private bridge; the
#                      bridge lives in a namespace of its own too, so the host
#                      gets no interface, route or firewall rule
#
# DIR defaults to ./run.  FUSEFS_PORT (default 7000) is the first UDP/TCP
# port (on loopback, member i uses PORT+i; in namespaces every member uses
# PORT on its own address, 10.213.0.(10+i); clients are 10.213.0.(100+j)).
# FUSEFS_HB_MS and FUSEFS_SIZE set the defaults of -t and -s.
#
# up writes what it makes into DIR/state before it makes it (namespaces,
# the loop device, pids), so down takes everything away even after up or a
# member crashed.
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

CMD=${1:-up}
[ $# -gt 0 ] && shift
DIR=$PWD/run
NAME=""
if [ "$CMD" = mount ] && [ $# -eq 1 ]; then # (mount NAME: the default DIR)
	NAME=$1
	shift
fi
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	DIR=$1
	shift
fi
if [ "$CMD" = mount ] && [ $# -gt 0 ]; then
	NAME=$1
	shift
fi
DIR=$(realpath -m "$DIR")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUSEFS_BUILD:-$ROOT/build}
PORT=${FUSEFS_PORT:-7000}
HB=${FUSEFS_HB_MS:-2000}
SIZE=${FUSEFS_SIZE:-2G}
MEMBERS=3
CLIENTS=1
LOOP=0
NETNS=0
DEVPATH=""
SUBNET=10.213.0

die() {
	echo "cluster: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	-m | --members) MEMBERS=${2:-}; shift ;;
	-c | --clients) CLIENTS=${2:-}; shift ;;
	-t | --hb-ms) HB=${2:-}; shift ;;
	-s | --size) SIZE=${2:-}; shift ;;
	--loop) LOOP=1 ;;
	--dev) DEVPATH=${2:-}; shift ;;
	--netns) NETNS=1 ;;
	-h | --help) usage ;;
	*) die "unknown option '$1' (see $0 --help)" ;;
	esac
	shift
done
[[ "$MEMBERS" =~ ^[0-9]+$ ]] && [ "$MEMBERS" -ge 1 ] && [ "$MEMBERS" -le 15 ] ||
	die "--members must be 1..15, not '$MEMBERS'"
[[ "$CLIENTS" =~ ^[0-9]+$ ]] && [ "$CLIENTS" -le 50 ] || die "--clients must be 0..50, not '$CLIENTS'"
[[ "$HB" =~ ^[0-9]+$ ]] || die "--hb-ms must be a number of ms, not '$HB'"

STATE=$DIR/state
# state KEY VALUE: recorded (appended) before the thing it names is made
state() { echo "$1 $2" >>"$STATE"; }
# state_get KEY: every value recorded for KEY
state_get() { awk -v k="$1" '$1 == k {print $2}' "$STATE" 2>/dev/null; }

# Wait up to $2 tenths of a second for "$1" (a command) to succeed.
wait_for() {
	local i
	for ((i = 0; i < $2; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

xattr() { getfattr --absolute-names --only-values -n "user.fusefs.$2" "$DIR/$1" 2>/dev/null; }

# The namespace of a mount (empty: none), and the command prefix that runs in it.
ns_of() { state_get "ns.$1"; }
in_ns() {
	local ns
	ns=$(ns_of "$1")
	if [ -n "$ns" ]; then
		echo "nsenter --net=/run/netns/$ns"
	fi
}

# addr_of NAME: a mount's address (its own in a namespace, else loopback)
addr_of() {
	case "$1" in
	m*) [ "$(state_get netns)" = 1 ] && echo "$SUBNET.$((10 + ${1#m}))" || echo 127.0.0.1 ;;
	c*) [ "$(state_get netns)" = 1 ] && echo "$SUBNET.$((100 + ${1#c}))" || echo 127.0.0.1 ;;
	esac
}

# ---- network namespaces ----

# The bridge's namespace and one per mount, named after DIR (so two
# clusters in two directories never meet).
ns_prefix() { echo "fz$(echo "$DIR" | cksum | cut -c1-6)"; }

netns_bridge() {
	local br
	br="$(ns_prefix)-br"
	state ns "$br"
	ip netns add "$br" || return 1
	ip -n "$br" link add br0 type bridge || return 1
	ip -n "$br" link set br0 up || return 1
	ip -n "$br" link set lo up
}

# netns_join NAME ADDR: NAME's namespace, its end of a veth pair as eth0
# with ADDR/24, the other end on the bridge
netns_join() {
	local name=$1 addr=$2 ns br
	ns="$(ns_prefix)-$name"
	br="$(ns_prefix)-br"
	state ns "$ns"
	state "ns.$name" "$ns"
	ip netns add "$ns" || return 1
	ip -n "$br" link add "v$name" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$br" link set "v$name" master br0 up || return 1
	ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
	ip -n "$ns" link set eth0 up || return 1
	ip -n "$ns" link set lo up
}

# ---- up ----

start_mount() {
	local name=$1 opts=$2 pid
	mkdir -p "$DIR/$name"
	state "opts.$name" "$opts"
	# shellcheck disable=SC2046 # (in_ns is a command prefix, or nothing)
	$(in_ns "$name") setsid "$BUILD/fusefs-mount" -f -o "$opts" "$DIR/$name" \
		>>"$DIR/logs/$name.log" 2>&1 </dev/null &
	pid=$!
	state "pid.$name" "$pid"
	if ! wait_for "is_mounted '$DIR/$name'" 150; then
		echo "cluster: $name did not mount; its log:" >&2
		sed 's/^/  /' "$DIR/logs/$name.log" >&2
		return 1
	fi
}

cluster_up() {
	local i dev opts quorum=() pid
	if [ -f "$STATE" ]; then
		for pid in $(awk '$1 ~ /^pid\./ {print $2}' "$STATE"); do
			alive "$pid" && die "a cluster is already running in $DIR (run: $0 down $DIR)"
		done
		die "$DIR holds what a cluster left (run: $0 down $DIR)"
	fi
	[ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
	if [ "$NETNS" = 1 ] || [ "$LOOP" = 1 ]; then
		[ "$(id -u)" = 0 ] || die "--netns and --loop need root"
	fi
	if [ "$NETNS" = 1 ]; then
		command -v nsenter >/dev/null || die "--netns needs nsenter (util-linux)"
	fi
	echo "cluster: building"
	[ -n "${FUSEFS_BUILD:-}" ] || make -C "$ROOT" -s >/dev/null || die "the build failed"
	mkdir -p "$DIR/logs"
	state members "$MEMBERS"
	state clients "$CLIENTS"
	state hb "$HB"
	state netns "$NETNS"
	if [ -n "$DEVPATH" ]; then
		dev=$DEVPATH
		[ -e "$dev" ] || die "--dev $dev: no such file or device"
	else
		truncate -s "$SIZE" "$DIR/meta.img"
		dev=$DIR/meta.img
	fi
	state dev "$dev"
	if [ "$LOOP" = 1 ]; then
		dev=$(losetup --find --show "$dev") || die "no loop device for $dev"
		state loop "$dev"
	fi
	for ((i = 0; i < MEMBERS; i++)); do
		if [ "$NETNS" = 1 ]; then
			quorum+=(-Q "$i,$SUBNET.$((10 + i)),$PORT")
		else
			quorum+=(-Q "$i,127.0.0.1,$((PORT + i))")
		fi
	done
	"$BUILD/fusefs-mkfs" --force "${quorum[@]}" "$dev" >"$DIR/logs/mkfs.log" 2>&1 ||
		die "mkfs failed: $(tail -1 "$DIR/logs/mkfs.log")"
	if [ "$NETNS" = 1 ]; then
		netns_bridge || die "could not make the bridge's namespace"
		for ((i = 0; i < MEMBERS; i++)); do
			netns_join "m$i" "$SUBNET.$((10 + i))" || die "could not make m$i's namespace"
		done
		for ((i = 0; i < CLIENTS; i++)); do
			netns_join "c$i" "$SUBNET.$((100 + i))" || die "could not make c$i's namespace"
		done
	fi
	for ((i = 0; i < MEMBERS; i++)); do
		opts="metadev_path=$dev,quorum_slot_nr=$i,quorum_heartbeat_timeout_ms=$HB"
		start_mount "m$i" "$opts" || die "mounting slot $i failed (take it down with: $0 down $DIR)"
	done
	for ((i = 0; i < CLIENTS; i++)); do
		start_mount "c$i" "metadev_path=$dev" ||
			die "mounting client c$i failed (take it down with: $0 down $DIR)"
	done
	echo "cluster: waiting for a leader"
	wait_for "[ -n \"\$(leader_slot)\" ]" 300 || die "no leader within 30 s (logs in $DIR/logs)"
	echo
	show_status
	echo
	echo "logs: $DIR/logs; take it down with: $0 down $DIR"
}

# mount NAME: NAME mounted again with the options up gave it, once its
# last process is gone (a mount left behind by a dead one is taken away)
cluster_mount() {
	local name=$1 opts pid
	[ -f "$STATE" ] || die "no cluster in $DIR (run: $0 up)"
	opts=$(state_get "opts.$name" | tail -1)
	[ -n "$opts" ] || die "no mount named '$name' in $DIR"
	pid=$(state_get "pid.$name" | tail -1)
	alive "$pid" && die "$name is still running (pid $pid)"
	is_mounted "$DIR/$name" && fusermount3 -u -z "$DIR/$name"
	start_mount "$name" "$opts" || die "mounting $name failed"
}

# ---- status ----

leader_slot() {
	local i
	for ((i = 0; i < $(state_get members); i++)); do
		[ "$(xattr "m$i" quorum.is_leader)" = 1 ] && echo "$i" && return 0
	done
	return 1
}

# One row per mount: slot, address, role, term, pid, mount point, the
# server it uses (address and term, from its server xattr: "none" while no
# server serves it), failovers ridden.
show_status() {
	local i n name st role term server fo leader
	[ -f "$STATE" ] || die "no cluster in $DIR (run: $0 up)"
	printf '%-6s %-5s %-13s %-10s %-5s %-8s %-28s %-20s %s\n' mount slot address role term pid \
		"mount point" "server in use" "failovers ridden"
	n=$(state_get members)
	for ((i = 0; i < n + $(state_get clients); i++)); do
		if [ "$i" -lt "$n" ]; then name=m$i; else name=c$((i - n)); fi
		if ! is_mounted "$DIR/$name"; then
			printf '%-6s %s\n' "$name" "not mounted"
			continue
		fi
		st=$(xattr "$name" quorum.status)
		role=$(echo "$st" | awk '/^role/ {print $3}' | tr -d '()')
		term=$(echo "$st" | awk '/^term/ {print $2}')
		server=$(xattr "$name" server | awk '$NF == "serving" {print $1 " t" $3}')
		fo=$(xattr "$name" counters | awk '$1 == "client_failovers" {print $2}')
		printf '%-6s %-5s %-13s %-10s %-5s %-8s %-28s %-20s %s\n' "$name" \
			"$([ "$i" -lt "$n" ] && echo "$i" || echo -)" "$(addr_of "$name")" "${role:-client}" \
			"${term:--}" "$(state_get "pid.$name")" "$DIR/$name" "${server:-none}" "${fo:-0}"
	done
	if leader=$(leader_slot); then
		echo
		echo "status of the leader (getfattr -n user.fusefs.quorum.status $DIR/m$leader):"
		xattr "m$leader" quorum.status | sed 's/^/  /'
	fi
}

# ---- down ----

cluster_down() {
	local m pid ns dev
	[ -d "$DIR" ] || {
		echo "cluster: nothing in $DIR"
		return 0
	}
	# a clean unmount makes a member resign and write STOP and END
	for m in "$DIR"/m* "$DIR"/c*; do
		is_mounted "$m" && fusermount3 -u "$m" 2>/dev/null
	done
	for pid in $(awk '$1 ~ /^pid\./ {print $2}' "$STATE" 2>/dev/null); do
		kill -CONT "$pid" 2>/dev/null
		if ! gone "$pid" 150; then
			echo "cluster: pid $pid did not exit; killing it"
			kill -9 "$pid" 2>/dev/null
			gone "$pid" 50
		fi
	done
	for m in "$DIR"/m* "$DIR"/c*; do
		is_mounted "$m" && fusermount3 -u -z "$m" 2>/dev/null
	done
	for ns in $(state_get ns); do
		ip netns del "$ns" 2>/dev/null
	done
	for dev in $(state_get loop); do
		losetup -d "$dev" 2>/dev/null
	done
	rm -rf "$DIR"
	echo "cluster: down; $DIR removed"
}

case "$CMD" in
up) cluster_up ;;
status) show_status ;;
down) cluster_down ;;
mount)
	[ -n "${NAME:-}" ] || die "mount: which mount? (m0.., c0..)"
	cluster_mount "$NAME"
	;;
-h | --help | help) usage ;;
*) usage ;;
esac
