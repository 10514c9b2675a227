#!/bin/bash
# test-fs.sh - the shared filesystem on real mounts: three quorum members
# and a plain client on loopback, one metadata file.
#
#   1. POSIX behaviour through pairs of mounts, with the error cases, and as
#      an unprivileged user (fusefs-posix); kernel caches coherent through
#      three mounts (fusefs-coherence), and a stopped mount delaying a
#      writer by no more than its grant;
#   2. a real tree copied in with tar through one mount and compared byte
#      for byte (content, modes, times, symlinks) through each of the others;
#      cp -a, and git init/add/commit/fsck through the plain client;
#   3. SIGKILL of the leader while a writer on the client is between
#      operations: after the next leader serves, every acknowledged write is
#      there and intact;
#   4. a stale server: with a fence command that fences nothing, SIGSTOP the
#      leader, let another be elected and serve writes, SIGCONT the old one:
#      it writes nothing more to the store regions and stops serving;
#   5. a hostile client (random, truncated, oversized, unauthenticated
#      frames) at the leader's port while the mounts work, with the members
#      built with ASan+UBSan (make test builds build-asan/fusefs-mount):
#      nothing crashes, the bad connections are closed, the mounts go on;
#      and a greedy client (8 connections sending 1 MiB writes without
#      reading a reply, past the service's queue limit) gets every answer.
#
# Needs root and /dev/fuse (it says so and skips without them).  Cleans up
# after itself on any exit.  Usage: scripts/test-fs.sh [BUILD_DIR]
# FUSEFS_TREE (default /usr/include) is the tree copied in step 2.
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
MEMBER_BUILD=$BUILD
ASAN_BUILD=$BUILD
[ -x "$BUILD/../build-asan/fusefs-mount" ] && ASAN_BUILD=$(realpath "$BUILD/../build-asan")
TREE=${FUSEFS_TREE:-/usr/include}

skip() {
	echo "SKIP: test-fs: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"
for c in fusermount3 getfattr tar diff git; do
	command -v $c >/dev/null || skip "needs $c"
done

T=$(mktemp -d /var/tmp/fusefs-fs.XXXXXX)
chmod 755 "$T" # the unprivileged checks walk through it
PORT=$((20000 + RANDOM % 20000))
declare -A PID

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

# start NAME OPTS [BUILD]: a mount in the background, waited for (lib.sh)
start() { mount_bg "$1" "$2" "${3:-$MEMBER_BUILD}/fusefs-mount" "$T/$1.log"; }

leader() {
	local i
	for i in 0 1 2; do
		is_mounted "$T/m$i" && [ "$(xattr "m$i" quorum.is_leader)" = 1 ] && echo "$i" && return
	done
}

# wait_serving [NOT_SLOT] [TENTHS]: until the client reaches a server (not NOT_SLOT's)
wait_serving() {
	local not=${1:--1} i s
	for ((i = 0; i < ${2:-300}; i++)); do
		s=$(xattr c server)
		if [[ $s == *serving* ]] && [[ $s != "127.0.0.1:$((PORT + not)) "* ]]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# cluster NAME_OF_SCENARIO [EXTRA_MEMBER_OPTS]
cluster() {
	local i
	DEV=$T/meta-$1.img
	truncate -s 2G "$DEV"
	"$BUILD/fusefs-mkfs" -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
		-Q "2,127.0.0.1,$((PORT + 2))" "$DEV" >/dev/null || return 1
	for i in 0 1 2; do
		start "m$i" "metadev_path=$DEV,quorum_slot_nr=$i,quorum_heartbeat_timeout_ms=2000${2:-}" ||
			return 1
	done
	start c "metadev_path=$DEV" "$BUILD" || return 1
	wait_serving
}

teardown() {
	local n
	for n in m0 m1 m2 c c2; do
		is_mounted "$T/$n" && fusermount3 -u "$T/$n" 2>/dev/null
	done
	for n in m0 m1 m2 c c2; do
		[ -n "${PID[$n]:-}" ] || continue
		gone "${PID[$n]}" 150 || kill -9 "${PID[$n]}" 2>/dev/null
		is_mounted "$T/$n" && fusermount3 -u -z "$T/$n" 2>/dev/null
		unset "PID[$n]"
	done
	PORT=$((PORT + 3))
}

sanitizer_reports() {
	grep -l "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$T"/*.log 2>/dev/null
}

# ---------------------------------------------------------------------------
echo "test-fs: POSIX behaviour through the mounts"
cluster posix || bad "the cluster did not come up"
L=$(leader)
check "a leader serves" test -n "$L"
F=$(((${L:-0} + 1) % 3))
check "fusefs-posix through a member and the client" \
	"$BUILD/fusefs-posix" "$T/m$F" "$T/c" >"$T/posix1.out" 2>&1
grep FAIL "$T/posix1.out"
check "fusefs-posix through the client and the leader's mount" \
	"$BUILD/fusefs-posix" "$T/c" "$T/m${L:-0}" >"$T/posix2.out" 2>&1
grep FAIL "$T/posix2.out"
tail -1 "$T/posix1.out"
# lookup counts: every entry the kernel was given is forgotten again
mkdir "$T/c/lk" && for ((i = 0; i < 300; i++)); do : >"$T/c/lk/f$i"; done
ls -l "$T/c/lk" >/dev/null
nodes_before=$(xattr c counters | awk '$1 == "kernel_nodes" {print $2}')
sync
echo 2 >/proc/sys/vm/drop_caches
sleep 0.5
nodes_after=$(xattr c counters | awk '$1 == "kernel_nodes" {print $2}')
check "the kernel forgets what it looked up: $nodes_before nodes held, $nodes_after after dropping caches" \
	test "${nodes_before:-0}" -ge 300 -a "${nodes_after:-999}" -lt 10
check "no lookup count ever went below zero" \
	test "$(cat "$T"/*.log | grep -c "out of balance")" = 0

echo "test-fs: kernel caches on, and coherent"
mkdir -p "$T/c/coh" "$T/c/coh2"
check "1000 random operations on one mount, each checked at once on two others (fusefs-coherence)" \
	"$BUILD/fusefs-coherence" -n 1000 -s "$RANDOM" "$T/m$F/coh" "$T/c/coh" "$T/m${L:-0}/coh" \
	>"$T/coh.out" 2>&1
tail -1 "$T/coh.out"
check "1000 more between two mounts (fusefs-coherence)" \
	"$BUILD/fusefs-coherence" -n 1000 -s "$RANDOM" "$T/c/coh2" "$T/m$F/coh2" >"$T/coh2.out" 2>&1
tail -1 "$T/coh2.out"
# file data: kept across opens while nobody changes it, dropped when anybody did
reads() { xattr "$1" counters | awk '$1 == "lat" && $2 == "client_total" && $3 == "read" {print $5}'; }
printf aaaa >"$T/c/coh/same"
cat "$T/m$F/coh/same" >/dev/null
r0=$(reads "m$F")
check "a file read again through the same mount comes from its page cache" \
	test "$(cat "$T/m$F/coh/same")" = aaaa -a "$(reads "m$F")" = "$r0"
mt=$(stat -c %y "$T/c/coh/same")
printf bbbb >"$T/c/coh/same" && touch -d "$mt" "$T/c/coh/same"
check "rewritten on another mount, same size and mtime: the next open reads the new data" \
	test "$(cat "$T/m$F/coh/same")" = bbbb
# a mount stopped while it holds cached attributes and entries delays a writer
# by at most its grant, and after SIGCONT trusts nothing stale
: >"$T/c/coh/stopped"
: >"$T/c/coh/doomed"
stat "$T/m$F/coh/stopped" "$T/m$F/coh/doomed" >/dev/null
cat "$T/m$F/coh/stopped" >/dev/null
stat "$T/m$F/coh/newborn" >/dev/null 2>&1 # (a negative entry)
expired0=$(xattr "m${L:-0}" counters | awk '$1 == "server_inval_waits_expired" {print $2}')
kill -STOP "${PID[m$F]}"
t0=$(now_ms)
chmod 600 "$T/c/coh/stopped"
dt=$(($(now_ms) - t0))
echo changed >"$T/c/coh/stopped"
rm "$T/c/coh/doomed"
: >"$T/c/coh/newborn"
kill -CONT "${PID[m$F]}"
expired1=$(xattr "m${L:-0}" counters | awk '$1 == "server_inval_waits_expired" {print $2}')
check "a chmod waited $dt ms for a stopped mount that cached the file (its grant: 200 ms)" \
	test "$dt" -lt 1000 -a "${expired1:-0}" -gt "${expired0:-0}"
check "after SIGCONT the stopped mount sees the new mode" \
	test "$(stat -c %a "$T/m$F/coh/stopped")" = 600
check "and the new data" test "$(cat "$T/m$F/coh/stopped")" = changed
check "and not the removed name" not test -e "$T/m$F/coh/doomed"
check "and the name it had seen missing" test -e "$T/m$F/coh/newborn"

echo "test-fs: a real tree, cp -a, git"
t0=$(now_ms)
if (tar --format=posix -C "$(dirname "$TREE")" -cf - "$(basename "$TREE")" | tar -C "$T/c" -xpf -) 2>"$T/tar.err"; then
	ok "tar x of $TREE ($(du -sh "$TREE" 2>/dev/null | cut -f1), $(find "$TREE" | wc -l) entries) through the client in $(($(now_ms) - t0)) ms"
else
	bad "tar x of $TREE: $(head -3 "$T/tar.err")"
fi
for n in m0 m1 m2; do
	t0=$(now_ms)
	diff -r --no-dereference "$TREE" "$T/$n/$(basename "$TREE")" >"$T/diff.out" 2>&1
	st=$? # (taken first: a command substitution in check's words sets $? too)
	check "diff -r through $n: identical ($(($(now_ms) - t0)) ms)" test "$st" = 0
	head -5 "$T/diff.out"
done
# modes, owners and times (to the second; tar keeps what it stored) of every entry
(cd "$(dirname "$TREE")" && find "$(basename "$TREE")" -printf '%p %y %m %U %G %T@ %l\n' | sort) >"$T/meta.want"
(cd "$T/m1" && find "$(basename "$TREE")" -printf '%p %y %m %U %G %T@ %l\n' | sort) >"$T/meta.got"
check "modes, owners, mtimes and symlink targets match through m1" cmp -s "$T/meta.want" "$T/meta.got"
diff "$T/meta.want" "$T/meta.got" | head -6
check "cp -a through the client" cp -a "$(realpath "$(dirname "$0")/..")/server" "$T/c/cpa"
check "cp -a preserved everything (diff through m2)" \
	diff -r "$(realpath "$(dirname "$0")/..")/server" "$T/m2/cpa"
(
	cd "$T/c/cpa" && git init -q && git add . &&
		git -c user.email=t@t -c user.name=t commit -qm "first" &&
		echo change >>fs.c && git -c user.email=t@t -c user.name=t commit -qam "second" &&
		git fsck --strict
) >"$T/git.out" 2>&1
check "git init, add, commit, commit, fsck through the client" test $? = 0
check "git log through m0 sees both commits" \
	test "$(git -C "$T/m0/cpa" log --oneline 2>/dev/null | wc -l)" = 2
teardown

# ---------------------------------------------------------------------------
echo "test-fs: SIGKILL of the leader between a writer's operations"
cluster kill || bad "the cluster did not come up"
L=$(leader)
L=${L:-0}
: >"$T/acked"
(
	for ((i = 1; i <= 400; i++)); do
		if printf 'file %d %0200d\n' "$i" "$i" >"$T/c/w$i" 2>/dev/null; then
			echo "$i" >>"$T/acked"
		fi
		sleep 0.01
	done
) &
WRITER=$!
disown
sleep 1.5
kill -9 "${PID[m$L]}"
t0=$(now_ms)
wait_serving "$L" 300
st=$?
check "a new leader serves $(($(now_ms) - t0)) ms after SIGKILL" test "$st" = 0
for ((i = 0; i < 600; i++)); do gone "$WRITER" 1 && break; done
kill -9 "$WRITER" 2>/dev/null
n=$(wc -l <"$T/acked")
lost=0
while read -r i; do
	[ "$(cat "$T/c/w$i" 2>/dev/null)" = "$(printf 'file %d %0200d' "$i" "$i")" ] || lost=$((lost + 1))
done <"$T/acked"
check "all $n acknowledged writes are there and intact after the failover ($lost missing)" \
	test "$lost" = 0 -a "$n" -gt 50
fusermount3 -u -z "$T/m$L" 2>/dev/null
teardown

# ---------------------------------------------------------------------------
echo "test-fs: a stale server writes nothing"
cat >"$T/fence-nothing.sh" <<'EOF'
#!/bin/sh
# a fence agent that claims success and does nothing
exit 0
EOF
chmod +x "$T/fence-nothing.sh"
# (a long grace: the new leader's purge after it, a write of its own, is not in the window)
cluster stale ",fence_cmd=$T/fence-nothing.sh,grace_ms=120000" || bad "the cluster did not come up"
L=$(leader)
L=${L:-0}
store_sum() { # the store regions, from the store header block on
	dd if="$DEV" bs=4096 skip=32 count=$(($(stat -c %s "$DEV") / 4096 - 32)) 2>/dev/null | md5sum
}
for ((i = 0; i < 20; i++)); do echo "before $i" >"$T/c/s$i"; done
kill -STOP "${PID[m$L]}"
t0=$(now_ms)
wait_serving "$L" 300
st=$?
check "another member serves $(($(now_ms) - t0)) ms after SIGSTOP of the leader" test "$st" = 0
for ((i = 0; i < 20; i++)); do echo "after $i" >"$T/c/s$i"; done
check "writes go through the new leader" test "$(cat "$T/c/s7")" = "after 7"
sleep 1
sum1=$(store_sum)
kill -CONT "${PID[m$L]}"
sleep 4
sum2=$(store_sum)
check "the old leader wrote nothing after waking" test "$sum1" = "$sum2"
check "the old leader no longer leads" test "$(xattr "m$L" quorum.is_leader)" = 0
check "the data is the new leader's" test "$(cat "$T/m$(((L + 1) % 3))/s7" 2>/dev/null)" = "after 7"
teardown

# ---------------------------------------------------------------------------
echo "test-fs: a hostile client (members from $ASAN_BUILD)"
MEMBER_BUILD=$ASAN_BUILD
cluster hostile || bad "the cluster did not come up"
L=$(leader)
L=${L:-0}
(
	for ((i = 0; i < 200; i++)); do
		echo "$i" >"$T/c/h$i" || exit 1
	done
) &
W=$!
"$BUILD/fusefs-hostile" "$DEV" 127.0.0.1 $((PORT + L)) 30 >"$T/hostile.out" 2>&1
st=$?
check "every hostile connection was closed by the server ($(tail -1 "$T/hostile.out"))" test "$st" = 0
timeout -k 5 100 "$BUILD/fusefs-hostile" "$DEV" 127.0.0.1 $((PORT + L)) --flood 8 40 >"$T/flood.out" 2>&1
st=$?
check "a greedy client: $(tail -1 "$T/flood.out")" test "$st" = 0
wait "$W"
check "the writer on the client went on meanwhile" test $? = 0
check "the leader still serves" test "$(leader)" = "$L"
check "all 200 files through m$(((L + 2) % 3))" test "$(ls "$T/m$(((L + 2) % 3))" | grep -c '^h')" = 200
closed=$(xattr "m$L" counters | awk '$1 == "server_conns_closed" {print $2}')
check "the leader closed each bad connection (server_conns_closed ${closed:-?})" test "${closed:-0}" -ge 200
c=$(grep -c "closing connection" "$T/m$L.log")
check "and said so in a bounded number of lines ($c: at most 20 each 10 s, then a count)" \
	eval '[ "$c" -ge 20 ] && [ "$c" -le 100 ]'

# a stranger holds 2,000 connections that never greet, dialled again as soon as they go
log0=$(stat -c %s "$T/m$L.log")
"$BUILD/fusefs-hostile" "$DEV" 127.0.0.1 $((PORT + L)) --idle 2000 12 127.0.0.2 >"$T/idle.out" 2>&1 &
I=$!
evicted() { xattr "m$L" counters | awk '$1 == "server_ungreeted_evicted" {print $2}'; }
for ((i = 0; i < 100; i++)); do
	[ "$(evicted)" -ge 1000 ] 2>/dev/null && break
	sleep 0.1
done
check "the leader evicts what does not greet ($(evicted) so far)" test "$(evicted)" -ge 1000
t0=$(now_ms)
start c2 "metadev_path=$DEV" "$BUILD"
st=$?
check "meanwhile a new mount connects ($(($(now_ms) - t0)) ms)" test "$st" = 0
check "and serves" eval 'echo idle >"$T/c2/idle1" && test "$(cat "$T/c2/idle1")" = idle'
check "and the mounts already there serve" eval 'echo idle >"$T/c/idle2" &&
	test "$(cat "$T/m$(((L + 1) % 3))/idle2")" = idle'
wait "$I"
st=$?
check "the stranger's connections: $(cat "$T/idle.out")" test "$st" = 0
grown=$(($(stat -c %s "$T/m$L.log") - log0))
check "the leader's log grew by $grown bytes meanwhile (at most 64 KiB)" test "$grown" -le 65536
check "the leader still serves" test "$(leader)" = "$L"
teardown

reports=$(sanitizer_reports)
check "no sanitizer reports in any log" test -z "$reports"
[ -n "$reports" ] && grep -h -A12 "ERROR: AddressSanitizer\|runtime error:" $reports | head -40

echo "test-fs: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
