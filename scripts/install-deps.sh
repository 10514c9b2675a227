#!/bin/sh
# install-deps.sh - install the Debian packages fusefs needs to build and
# test, when any are missing.  Run by every make target that compiles, so a
# fresh Debian machine needs nothing typed by hand.  Quiet when all present.
set -eu

PKGS="gcc make pkg-config libfuse3-dev fuse3 liburing-dev libssl-dev check \
libsqlite3-dev attr iproute2 nftables procps util-linux git tar diffutils"
[ "${1:-}" = "--with-valgrind" ] && PKGS="$PKGS valgrind"
# make bench's reference: sshfs over 127.0.0.1, against a private sshd
[ "${1:-}" = "--with-bench" ] && PKGS="$PKGS sshfs openssh-server openssh-client"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: not root and no sudo; please install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
	$SUDO apt-get update
	$SUDO apt-get install -y --no-install-recommends $missing
fi
