#!/bin/bash
# test-cli.sh - the command-line tools end to end: fusefs-mkfs refuses each
# bad input with its own message and a non-zero exit, fusefs-print shows a
# new filesystem's slots, and names a corrupted quorum block and the check
# that failed.  Usage: scripts/test-cli.sh [BUILD_DIR]
set -u
BUILD=${1:-build}
MKFS=$BUILD/fusefs-mkfs
PRINT=$BUILD/fusefs-print
T=$(mktemp -d "${TMPDIR:-/tmp}/fusefs-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_fail "what" "message substring" args...
expect_fail() {
	local what=$1 msg=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		bad "$what: exit 0, expected failure"
	elif ! grep -qF -- "$msg" <<<"$out"; then
		bad "$what: message '$out' lacks '$msg'"
	elif [ "$(wc -l <<<"$out")" -ne 1 ]; then
		bad "$what: expected one line, got: $out"
	else
		ok
	fi
}

DEV=$T/dev.img
truncate -s 64M "$DEV"
if ! "$MKFS" -Q 0,127.0.0.1,7000 -Q 1,127.0.0.1,7001 -Q 2,127.0.0.1,7002 "$DEV" >"$T/mkfs.out"; then
	bad "mkfs of a 64 MiB file failed: $(cat "$T/mkfs.out")"
fi
out=$("$PRINT" "$DEV")
rc=$?
[ $rc -eq 0 ] && ok || bad "print of a fresh fs exited $rc"
for s in "slot 0   127.0.0.1:7000" "slot 1   127.0.0.1:7001" "slot 2   127.0.0.1:7002" \
	"3 slots" "quorum block of slot 2 (blkno 19)"; do
	grep -qF "$s" <<<"$out" && ok || bad "print lacks '$s'"
done

expect_fail "slot out of range" "slot number 15 is out of range 0..14" "$MKFS" -Q 15,127.0.0.1,7000 --force "$DEV"
expect_fail "negative slot" "out of range 0..14" "$MKFS" -Q -1,127.0.0.1,7000 --force "$DEV"
expect_fail "slot twice" "slot 1 is given twice" "$MKFS" -Q 1,127.0.0.1,7000 -Q 1,127.0.0.1,7001 --force "$DEV"
expect_fail "same address" "slots 0 and 1 have the same address 127.0.0.1:7000" "$MKFS" -Q 0,127.0.0.1,7000 -Q 1,127.0.0.1,7000 --force "$DEV"
expect_fail "multicast" "224.0.0.5 is not unicast: it is multicast" "$MKFS" -Q 0,224.0.0.5,7000 --force "$DEV"
expect_fail "broadcast" "is not unicast: it is the broadcast address" "$MKFS" -Q 0,255.255.255.255,7000 --force "$DEV"
expect_fail "zero address" "0.0.0.0 is not unicast" "$MKFS" -Q 0,0.0.0.0,7000 --force "$DEV"
expect_fail "ipv6 multicast" "ff02::1 is not unicast: it is multicast" "$MKFS" -Q 0,ff02::1,7000 --force "$DEV"
expect_fail "ipv6 unspecified" ":: is not unicast: it is unspecified" "$MKFS" -Q 0,::,7000 --force "$DEV"
expect_fail "port 0" "port 0 is not usable" "$MKFS" -Q 0,127.0.0.1,0 --force "$DEV"
expect_fail "port 65535" "port 65535 is not usable" "$MKFS" -Q 0,127.0.0.1,65535 --force "$DEV"
expect_fail "no slot" "at least one quorum slot is required" "$MKFS" --force "$DEV"
truncate -s 1M "$T/small.img"
expect_fail "small device" "the layout needs at least" "$MKFS" -Q 0,127.0.0.1,7000 "$T/small.img"
expect_fail "existing fs" "already holds a fusefs filesystem" "$MKFS" -Q 0,127.0.0.1,7000 "$DEV"
expect_fail "missing device" "open failed: No such file or directory" "$MKFS" -Q 0,127.0.0.1,7000 "$T/nope.img"

# the refusals above left the filesystem alone
"$PRINT" "$DEV" >/dev/null && ok || bad "refused mkfs runs damaged the filesystem"

# flip one byte inside slot 1's quorum block (blkno 18)
off=$((18 * 4096 + 100))
orig=$(od -An -tu1 -j $off -N1 "$DEV" | tr -d ' ')
printf "$(printf '\\%03o' $(((orig ^ 1) & 255)))" | dd of="$DEV" bs=1 seek=$off conv=notrunc status=none
out=$("$PRINT" "$DEV" 2>&1)
rc=$?
[ $rc -ne 0 ] && ok || bad "print of a corrupted block exited 0"
grep -q "quorum block of slot 1 (blkno 18): BAD: .*crc check failed" <<<"$out" && ok ||
	bad "print did not name slot 1's block and the crc check: $out"
grep -qF "quorum block of slot 2 (blkno 19): write_nr" <<<"$out" && ok ||
	bad "print stopped at the bad block"

"$MKFS" -Q 0,::1,7000 --force --no-auth "$DEV" >/dev/null && "$PRINT" "$DEV" | grep -qF "slot 0   [::1]:7000" && ok ||
	bad "mkfs --force with an IPv6 slot"

# a device of (almost) 16 TiB, sparse: made, and its store's size is SQLite's 4 TiB limit, less
# the 1 GiB reserve, not the region's 16 TiB (a filesystem that cannot hold a file this size skips)
if truncate -s 16383G "$T/huge.img" 2>/dev/null; then
	if "$MKFS" -Q 0,127.0.0.1,7000 "$T/huge.img" >/dev/null; then
		out=$("$PRINT" "$T/huge.img" 2>&1)
		grep -qE "^  total blocks +4294705152 " <<<"$out" && ok || bad "print of the 16 TiB device: $out"
		# (2^30 - 1 pages of 4 KiB, less 2^18 blocks reserved)
		grep -qF "of $(((1 << 30) - 1 - (1 << 18))) blocks of 4096 bytes" <<<"$out" && ok ||
			bad "the 16 TiB device's store is not capped at SQLite's limit: $(grep '^store:' <<<"$out")"
	else
		bad "mkfs of a 16 TiB sparse file failed"
	fi
	rm -f "$T/huge.img"
else
	echo "test-cli: this filesystem cannot hold a 16 TiB sparse file; not making one"
fi

# make install: the programs, the man pages, the service template and the fstab example
if make -s -C "$(dirname "$0")/.." install BUILD="$(realpath "$BUILD")" DESTDIR="$T/inst" PREFIX=/usr \
	>"$T/install.out" 2>&1; then
	unit=$T/inst/usr/lib/systemd/system/fusefs-member@.service
	[ -x "$T/inst/usr/sbin/fusefs-mount" ] && [ -f "$T/inst/usr/share/man/man8/fusefs-mount.8" ] &&
		[ -f "$T/inst/usr/share/doc/fusefs/fstab.example" ] && ok ||
		bad "make install left out a program, a man page or the fstab example"
	grep -qx "ExecStart=/usr/sbin/fusefs-mount -f -o metadev_path=\${DEVICE},\${OPTIONS} \${MOUNTPOINT}" \
		"$unit" 2>/dev/null && ok || bad "the service template does not run the installed fusefs-mount"
	if command -v systemd-analyze >/dev/null && [ -d /run/systemd/system ]; then
		out=$(systemd-analyze verify "$unit" 2>&1 | grep -v "fusefs-mount.*No such file\|not executable")
		[ -z "$out" ] && ok || bad "systemd-analyze verify: $out"
	fi
else
	bad "make install failed: $(tail -3 "$T/install.out")"
fi

echo "test-cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
