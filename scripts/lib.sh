# lib.sh - shell helpers the cluster, test and bench scripts share.  Source it.
# shellcheck shell=bash

# is_mounted PATH: listed in /proc/mounts (a dead FUSE mount fails mountpoint(1))
is_mounted() { grep -qs " $(realpath -m "$1") " /proc/mounts; }

now_ms() { date +%s%3N; }

# gone PID [TENTHS]: wait (default 10 s) until the process has exited,
# reaped or a zombie (kill -0 still succeeds on a zombie)
gone() {
	local i st
	for ((i = 0; i < ${2:-100}; i++)); do
		st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
		[ -z "$st" ] || [ "$st" = Z ] && return 0
		sleep 0.1
	done
	return 1
}

# Test reports: ok/bad count into PASS and FAIL; check "what" CMD... runs
# CMD and reports it (returning its failure); not CMD... negates.
PASS=0
FAIL=0
ok() {
	PASS=$((PASS + 1))
	echo "  ok: $*"
}
bad() {
	FAIL=$((FAIL + 1))
	echo "  FAIL: $*"
}
check() {
	local what=$1
	shift
	if "$@"; then
		ok "$what"
	else
		bad "$what"
		return 1
	fi
}
not() { ! "$@"; }

# Members of a test cluster, for scripts that keep their mounts under $T and
# their pids in the associative array PID (names m0, m1, m2, c) and define
# xattr NAME KEY.
# stop NAME: unmount and wait for the process (SIGKILL after 10 s)
stop() {
	local n=$1
	is_mounted "$T/$n" && fusermount3 -u "$T/$n" 2>/dev/null
	gone "${PID[$n]}" || kill -9 "${PID[$n]}" 2>/dev/null
	is_mounted "$T/$n" && fusermount3 -u -z "$T/$n"
	unset "PID[$n]"
}
stop_all() {
	local n
	for n in "${!PID[@]}"; do stop "$n"; done
}
# leader: the slot whose running member says it leads, or nothing
leader() {
	local i
	for i in 0 1 2; do
		[ -n "${PID[m$i]:-}" ] && is_mounted "$T/m$i" && [ "$(xattr "m$i" quorum.is_leader)" = 1 ] &&
			echo "$i" && return
	done
}
