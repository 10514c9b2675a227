#!/bin/bash
# check-layers.sh - the include rules, checked on every `make test`:
#   1. dependencies point one way: fuse -> server -> quorum -> blockdev -> common;
#      no file includes a header of a directory above its own;
#   2. the pure files (named below, one by one) include, directly or through
#      our own headers, no I/O, clock, thread, socket, ring, FUSE or OpenSSL
#      header, and call no clock or rand();
#   3. the filesystem logic and the store (server/fs*, server/store*) include
#      no FUSE or socket header;
#   4. no product function is longer than 70 lines unless the comment above
#      it says why ("longer than 70 lines because ...").
# It lists what it checked, and fails when a named file is missing, so a
# rename cannot turn it green by accident.
set -u
cd "$(dirname "$0")/.." || exit 1

rank() {
	case "$1" in
	common) echo 0 ;; blockdev) echo 1 ;; quorum) echo 2 ;; server) echo 3 ;; fuse) echo 4 ;;
	*) echo -1 ;;
	esac
}

PURE="quorum/election.c quorum/election.h quorum/fence_select.c quorum/fence.h quorum/msg.h"
[ -f quorum/glue.c ] && PURE="$PURE quorum/glue.c quorum/glue.h"
PURE="$PURE fuse/holds.c fuse/holds.h fuse/calls.c fuse/calls.h"
FSLOGIC=$(ls server/fs*.[ch] server/store*.[ch] 2>/dev/null)

fail=0
checked=0
for f in common/*.[ch] blockdev/*.[ch] quorum/*.[ch] server/*.[ch] fuse/*.[ch]; do
	dir=${f%%/*}
	r=$(rank "$dir")
	while IFS= read -r inc; do
		idir=${inc%%/*}
		ir=$(rank "$idir")
		if [ "$ir" -lt 0 ]; then
			echo "check-layers: $f includes \"$inc\" from outside the layers"
			fail=1
		elif [ "$ir" -gt "$r" ]; then
			echo "check-layers: $f ($dir) includes \"$inc\" from $idir, which is above it"
			fail=1
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	checked=$((checked + 1))
done
echo "check-layers: $checked files in common blockdev quorum server fuse depend only downward"

# Our headers a file reaches, itself included.
closure() {
	local todo=("$1") seen=" "
	while [ ${#todo[@]} -gt 0 ]; do
		local f=${todo[0]}
		todo=("${todo[@]:1}")
		case "$seen" in *" $f "*) continue ;; esac
		seen="$seen$f "
		for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
			[ -f "$inc" ] && todo+=("$inc")
		done
	done
	echo "$seen"
}

BANNED='#include <(time|sys/time|sys/socket|netinet/[a-z_]+|arpa/inet|liburing|fuse[a-z_]*|openssl/[a-z_]+|unistd|pthread|poll|fcntl|sys/eventfd|sys/stat|stdio)\.h>'
for f in $PURE; do
	if [ ! -f "$f" ]; then
		echo "check-layers: pure file $f is missing (renamed? update scripts/check-layers.sh)"
		fail=1
		continue
	fi
	for g in $(closure "$f"); do
		if grep -nE "$BANNED" "$g" >/dev/null; then
			echo "check-layers: $f must stay pure, but reaches $(grep -nE "$BANNED" "$g" | head -1) in $g"
			fail=1
		fi
	done
	if grep -nE '[^_a-z]rand\(|clock_gettime|getpid|mono_now\(|wall_now\(' "$f" >/dev/null; then
		echo "check-layers: $f must not read clocks or randomness: $(grep -nE '[^_a-z]rand\(|clock_gettime|getpid|mono_now\(|wall_now\(' "$f" | head -1)"
		fail=1
	fi
done
echo "check-layers: pure (no I/O, clocks, threads, OpenSSL): $PURE"

for f in $FSLOGIC; do
	for g in $(closure "$f"); do
		if grep -nE '#include <(fuse[a-z_]*|sys/socket|netinet/[a-z_]+)\.h>' "$g" >/dev/null; then
			echo "check-layers: $f must not reach FUSE or socket headers ($g)"
			fail=1
		fi
	done
done
[ -n "$FSLOGIC" ] && echo "check-layers: no FUSE or sockets in:" $FSLOGIC

# A function's body runs from a "{" to a "}" in column 0; the comment that
# ends just above its signature may say why it is long.
long=$(awk -v LIM=70 '
	FNR == 1 { comment = ""; in_c = 0 }
	/^\/\*/ { in_c = 1; comment = "" }
	in_c { comment = comment " " $0 }
	/\*\// { in_c = 0; last_c = FNR }
	/^[a-zA-Z].*\(/ && !in_c { sig = $0; sig_line = FNR; why = (last_c >= FNR - 3) ? comment : "" }
	/^\{/ { start = FNR }
	/^\}/ && start { if (FNR - start > LIM && why !~ /longer than 70 lines because/)
			      printf "%s:%d %s (%d lines)\n", FILENAME, sig_line, sig, FNR - start; start = 0 }
' common/*.c blockdev/*.c quorum/*.c server/*.c fuse/*.c)
if [ -n "$long" ]; then
	echo "check-layers: functions over 70 lines without a comment saying why:"
	echo "$long"
	fail=1
fi
echo "check-layers: no function in common blockdev quorum server fuse is over 70 lines without a reason"
exit $fail
