#!/bin/bash
# cluster.sh - a local fusefs cluster on one metadata file: three quorum
# members and one plain client, on loopback, under one working directory.
#
#   scripts/cluster.sh up [DIR]      build, make the filesystem, mount all four,
#                                    wait for a leader, show every member's role
#                                    and the leader's status
#   scripts/cluster.sh status [DIR]  show roles and the status text again
#   scripts/cluster.sh down [DIR]    unmount everything, end the processes,
#                                    remove DIR
#
# DIR defaults to ./run.  FUSEFS_PORT (default 7000) is the first of three
# UDP/TCP ports; FUSEFS_HB_MS (default 2000) the heartbeat timeout; FUSEFS_SIZE
# (default 2G) the size of the metadata file (sparse).
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: $0 up|status|down [DIR]" >&2
	exit 2
}

CMD=${1:-up}
DIR=$(realpath -m "${2:-$PWD/run}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUSEFS_BUILD:-$ROOT/build}
PORT=${FUSEFS_PORT:-7000}
HB=${FUSEFS_HB_MS:-2000}
SIZE=${FUSEFS_SIZE:-2G}
MOUNTS="m0 m1 m2 client"

die() {
	echo "cluster: $*" >&2
	exit 1
}

# Wait up to $2 tenths of a second for "$1" (a command) to succeed.
wait_for() {
	local i
	for ((i = 0; i < $2; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

xattr() {
	getfattr --only-values -n "user.fusefs.$2" "$DIR/$1" 2>/dev/null
}

start_mount() {
	local name=$1 opts=$2
	mkdir -p "$DIR/$name"
	setsid "$BUILD/fusefs-mount" -f -o "$opts" "$DIR/$name" >"$DIR/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$DIR/pids/$name"
	if ! wait_for "is_mounted '$DIR/$name'" 100; then
		echo "cluster: $name did not mount; its log:" >&2
		sed 's/^/  /' "$DIR/logs/$name.log" >&2
		return 1
	fi
}

show_status() {
	local leader="" i role
	[ -d "$DIR/pids" ] || die "no cluster in $DIR (run: $0 up)"
	for i in 0 1 2; do
		if ! is_mounted "$DIR/m$i"; then
			echo "slot $i: not mounted"
			continue
		fi
		role=$(xattr "m$i" quorum.status | awk '/^role/ {print $3}' | tr -d '()')
		echo "slot $i: $role, term $(xattr "m$i" quorum.status | awk '/^term/ {print $2}'), mounted at $DIR/m$i"
		[ "$(xattr "m$i" quorum.is_leader)" = 1 ] && leader=$i
	done
	echo "client: server $(xattr client server)"
	if [ -n "$leader" ]; then
		echo
		echo "status of the leader (getfattr -n user.fusefs.quorum.status $DIR/m$leader):"
		xattr "m$leader" quorum.status | sed 's/^/  /'
	fi
}

cluster_up() {
	local i
	if [ -d "$DIR/pids" ]; then
		for i in "$DIR"/pids/*; do
			[ -e "$i" ] && kill -0 "$(cat "$i")" 2>/dev/null &&
				die "a cluster is already running in $DIR (run: $0 down)"
		done
	fi
	[ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
	echo "cluster: building"
	[ -n "${FUSEFS_BUILD:-}" ] || make -C "$ROOT" -s >/dev/null || die "the build failed"
	mkdir -p "$DIR/logs" "$DIR/pids"
	truncate -s "$SIZE" "$DIR/meta.img"
	"$BUILD/fusefs-mkfs" --force -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
		-Q "2,127.0.0.1,$((PORT + 2))" "$DIR/meta.img" || die "mkfs failed"
	for i in 0 1 2; do
		start_mount "m$i" "metadev_path=$DIR/meta.img,quorum_slot_nr=$i,quorum_heartbeat_timeout_ms=$HB" ||
			die "mounting slot $i failed"
	done
	start_mount client "metadev_path=$DIR/meta.img" || die "mounting the client failed"
	echo "cluster: waiting for a leader"
	wait_for "xattr client server | grep -q serving" 200 || die "no leader within 20 s (logs in $DIR/logs)"
	echo
	show_status
	echo
	echo "logs: $DIR/logs; take it down with: $0 down $DIR"
}

cluster_down() {
	local m pid i
	[ -d "$DIR" ] || {
		echo "cluster: nothing in $DIR"
		return 0
	}
	for m in $MOUNTS; do
		is_mounted "$DIR/$m" 2>/dev/null && fusermount3 -u "$DIR/$m" 2>/dev/null
	done
	for m in $MOUNTS; do
		[ -f "$DIR/pids/$m" ] || continue
		pid=$(cat "$DIR/pids/$m")
		# a clean unmount makes it resign and write STOP and END; give it time
		if ! gone "$pid" 150; then
			echo "cluster: $m (pid $pid) did not exit; killing it"
			kill -9 "$pid" 2>/dev/null
		fi
	done
	for m in $MOUNTS; do
		is_mounted "$DIR/$m" 2>/dev/null && fusermount3 -u -z "$DIR/$m" 2>/dev/null
	done
	rm -rf "$DIR"
	echo "cluster: down; $DIR removed"
}

case "$CMD" in
up) cluster_up ;;
status) show_status ;;
down) cluster_down ;;
*) usage ;;
esac
