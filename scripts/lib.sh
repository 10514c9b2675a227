# lib.sh - shell helpers the cluster, test and bench scripts share.  Source it.
# shellcheck shell=bash

# is_mounted PATH: listed in /proc/mounts (a dead FUSE mount fails mountpoint(1))
is_mounted() { grep -qs " $(realpath -m "$1") " /proc/mounts; }

now_ms() { date +%s%3N; }

# alive PID: the process runs (not a zombie: kill -0 succeeds on those)
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ]
}

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
	[ "$FAIL" = 1 ] && evidence
	if [ -n "${STOP_AT_FIRST:-}" ]; then
		echo "${0##*/}: $PASS passed, stopped at the first failure"
		exit 1
	fi
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

# evidence: what the first failure prints (a script may define its own;
# STOP_AT_FIRST set, the script ends there).  mounts_evidence: each mount's
# server and quorum status, and the end of every log under $T.
evidence() {
	echo "  --- evidence (first failure) ---"
	mounts_evidence
	echo "  ---"
}
mounts_evidence() {
	local n f
	for n in $(printf '%s\n' "${!PID[@]}" | sort); do
		echo "  $n (pid ${PID[$n]}): server $(xattr "$n" server | head -1)"
		xattr "$n" quorum.status | grep -E '^(term|role|leader_slot|server_state|lease_valid|device_state) ' | tr '\n' ' ' | sed 's/^/    /;s/$/\n/'
	done
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "  $(basename "$f"):"
		tail -8 "$f" | sed 's/^/    /'
	done
}

# Mounts of a test, under $T, their pids in the associative array PID.
# mount_bg NAME OPTS PROG LOG: PROG -f -o OPTS $T/NAME in the background
# (its output appended to LOG, its pid in PID[NAME]), waited for (15 s at
# most); when it does not mount, says so with the end of LOG and fails.
mount_bg() {
	local name=$1 opts=$2 prog=$3 log=$4 i
	mkdir -p "$T/$name"
	"$prog" -f -o "$opts" "$T/$name" >>"$log" 2>&1 </dev/null &
	PID[$name]=$!
	disown # no job notices when a test kills it; gone() checks /proc
	for ((i = 0; i < 150; i++)); do
		is_mounted "$T/$name" && return 0
		alive "${PID[$name]}" || break
		sleep 0.1
	done
	echo "  $name did not mount:"
	tail -20 "$log" | sed 's/^/    /'
	return 1
}
# kill_mounts: every mount in PID woken, unmounted (lazily) and its process
# gone (SIGKILL after 3 s): what a test's cleanup does, whatever happened
kill_mounts() {
	local n
	for n in "${!PID[@]}"; do
		kill -CONT "${PID[$n]}" 2>/dev/null
		is_mounted "$T/$n" && fusermount3 -u -z "$T/$n" 2>/dev/null
	done
	for n in "${!PID[@]}"; do
		gone "${PID[$n]}" 30 || kill -9 "${PID[$n]}" 2>/dev/null
	done
}
# xattr NAME KEY: the status xattr user.fusefs.KEY of the mount $T/NAME
xattr() { getfattr --only-values -n "user.fusefs.$2" "$T/$1" 2>/dev/null; }

# wait_leader NOT: a leader other than slot NOT, serving the client mount c,
# within 15 s; prints its slot
wait_leader() {
	local i l
	for ((i = 0; i < 300; i++)); do
		for l in 0 1 2; do
			[ "$l" = "$1" ] && continue
			[ -n "${PID[m$l]:-}" ] && [ "$(xattr "m$l" quorum.is_leader)" = 1 ] &&
				[[ $(xattr c server) == *serving* ]] && echo "$l" && return 0
		done
		sleep 0.1
	done
	return 1
}

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

# The writer's progress, for scripts that run fusefs-writer -w with its
# progress file at $T/progress and keep their fault's time in t0.
# steps: what the writer has done so far
steps() {
	local n
	n=$(awk '{print $1}' "$T/progress" 2>/dev/null)
	echo "${n:-0}"
}
# wait_step FROM: until the writer passed FROM (bounded: 30 s); prints the ms since $t0
wait_step() {
	local i
	for ((i = 0; i < 1500; i++)); do
		[ "$(steps)" -gt "$1" ] && echo $(($(now_ms) - t0)) && return 0
		sleep 0.02
	done
	echo "never"
	return 1
}

# mkfs3 DEV SIZE: a fresh filesystem of SIZE (sparse) with slots 0..2 on
# 127.0.0.1 ports $PORT..$PORT+2
mkfs3() {
	truncate -s "$2" "$1" &&
		"$BUILD/fusefs-mkfs" -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
			-Q "2,127.0.0.1,$((PORT + 2))" "$1" >/dev/null
}
