#!/bin/bash
# test-unprivileged.sh - the request path's suite (client, service, store in
# one process: tests/unit_service.c) as a user who is not root and cannot
# open /dev/fuse, so nobody needs either to work on the request path.
#
# Run by make test.  As root it copies the unit binary to a temporary
# directory and runs the suite as nobody (setpriv); as anyone else it runs
# it as that user.  Usage: scripts/test-unprivileged.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")

if [ "$(id -u)" != 0 ]; then
	echo "test-unprivileged: the service suite as $(id -un)"
	CK_RUN_SUITE=service "$BUILD/fusefs-unit" || exit 1
	exit 0
fi
command -v setpriv >/dev/null || { echo "test-unprivileged: needs setpriv (util-linux)"; exit 1; }
T=$(mktemp -d /var/tmp/fusefs-unpriv.XXXXXX)
trap 'rm -rf "$T"' EXIT
install -m 755 "$BUILD/fusefs-unit" "$T/fusefs-unit"
chmod 1777 "$T"
run() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
check "nobody cannot open /dev/fuse (so the suite below does without it)" \
	not run sh -c 'exec 3<>/dev/fuse' 2>/dev/null
out=$(cd "$T" && FUSEFS_TEST_DIR="$T" CK_RUN_SUITE=service run "$T/fusefs-unit" 2>&1)
echo "$out" | tail -1
check "the service suite passes as nobody" grep -q "^100%: Checks: [0-9]*, Failures: 0, Errors: 0" \
	<<<"$out"
echo "test-unprivileged: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
