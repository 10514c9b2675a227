#!/bin/bash
# test-fileops.sh - the file operations modern programs use, on fusefs and
# on /var/tmp (the local filesystem) side by side, byte for byte:
# SEEK_DATA/SEEK_HOLE over a sparse file, PUNCH_HOLE, ZERO_RANGE,
# copy_file_range (done by the server, 1 MiB a call), O_DIRECT, and
# O_TMPFILE answered cleanly (libfuse 3.14 cannot pass it through).  Two
# quorum members and two client mounts.
#
# Needs root and /dev/fuse (says so and skips without).  Cleans up on any
# exit.  Usage: scripts/test-fileops.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
FO=$BUILD/fusefs-fileops

skip() {
	echo "SKIP: test-fileops: $*"
	exit 0
}
[ "$(id -u)" = 0 ] || skip "needs root to mount FUSE filesystems"
[ -c /dev/fuse ] || skip "needs /dev/fuse (modprobe fuse)"

T=$(mktemp -d /var/tmp/fusefs-fileops.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
declare -A PID
cleanup() {
	kill_mounts
	[ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DEV=$T/meta.img
mkfs3 "$DEV" 256M || exit 1
for i in 0 1; do
	mount_bg "m$i" "metadev_path=$DEV,quorum_slot_nr=$i" "$BUILD/fusefs-mount" "$T/m$i.log" || exit 1
done
for n in c c2; do mount_bg "$n" "metadev_path=$DEV" "$BUILD/fusefs-mount" "$T/$n.log" || exit 1; done
mkdir -p "$T/local"
head -c 65536 /dev/urandom >"$T/pat"

# same CMD...: CMD with @ as $T/local and as $T/c prints the same, and both succeed
same() {
	local a b
	a=$("${@//@/$T/local}" 2>&1) || { echo "    local: $a"; return 1; }
	b=$("${@//@/$T/c}" 2>&1) || { echo "    fusefs: $b"; return 1; }
	[ "$a" = "$b" ] || { printf '    local:  %s\n    fusefs: %s\n' "$a" "$b"; return 1; }
}
# alike NAME: the file reads the same on /var/tmp, on c and on c2
alike() { cmp -s "$T/local/$1" "$T/c/$1" && cmp -s "$T/local/$1" "$T/c2/$1"; }
sparse() {
	local at
	for at in 0 16 48; do
		dd if="$T/pat" of="$1/f" bs=64K seek=$at conv=notrunc status=none || return 1
	done
	truncate -s 4M "$1/f"
}

echo "test-fileops: a sparse file"
check "64 KiB at 0, 1 MiB and 3 MiB of a 4 MiB file, on both" same sparse @
check "reads the same (and through the other mount)" alike f
check "SEEK_DATA/SEEK_HOLE find the same data ($("$FO" map "$T/c/f" | tr '\n' ' '))" \
	same "$FO" map @/f
check "a hole punched in the first 64 KiB (16-48 KiB)" same "$FO" punch @/f 16384 32768
check "reads the same" alike f
check "and SEEK_DATA/SEEK_HOLE see the hole" same "$FO" map @/f
check "a range zeroed, keeping the size (1 MiB + 20000, 30000 bytes)" \
	same "$FO" zero @/f $((1048576 + 20000)) 30000 keep
check "a range zeroed past the end, growing the file" same "$FO" zero @/f $((4194304 - 100)) 5000
check "reads the same ($(stat -c %s "$T/c/f") bytes)" alike f

echo "test-fileops: copy_file_range"
out=$("$FO" copy "$T/c/f" "$T/c/g")
check "fusefs copies all $((4194304 - 100 + 5000)) bytes, the server 1 MiB a call ($out)" \
	test "$out" = "$((4194304 - 100 + 5000)) 5"
"$FO" copy "$T/local/f" "$T/local/g" >/dev/null
check "the copy reads the same as the original and as on /var/tmp" \
	eval 'cmp -s "$T/c/f" "$T/c/g" && alike g'

echo "test-fileops: O_DIRECT"
check "1 MiB written and read back with O_DIRECT" same "$FO" direct @/d
check "and it reads the same through the other mount" alike d

echo "test-fileops: O_TMPFILE"
# the kernel sends O_TMPFILE to a FUSE filesystem only with a tmpfile
# handler, which libfuse 3.14 does not have: the program is told
# EOPNOTSUPP (glibc's tmpfile() and others then fall back to a named file)
out=$("$FO" tmpfile "$T/c" 2>&1)
check "O_TMPFILE is answered cleanly: '$out' (ok, or unsupported)" \
	eval 'test "$out" = ok || test "$out" = unsupported'
check "and the mount goes on: a file written and read back" \
	eval 'echo after >"$T/c/after" && test "$(cat "$T/c2/after")" = after'

echo "test-fileops: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
