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
