#!/bin/bash
# bench-fs.sh - the filesystem benchmark table (make bench): the same
# workload (fusefs-fsbench) through the leader's own mount, through a plain
# client mount, and through libfuse's passthrough_ll example over a local
# directory as the reference, with the ratio to it on every row.  Also the
# average number of requests a commit carries and a member's peak resident
# set.  Needs root and /dev/fuse.
#
# Usage: scripts/bench-fs.sh [BUILD_DIR]
set -u

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "${1:-build}")
EXAMPLES=/usr/share/doc/libfuse3-dev/examples

[ "$(id -u)" = 0 ] || { echo "bench-fs: needs root (FUSE mounts, dropping caches); skipped"; exit 0; }
[ -c /dev/fuse ] || { echo "bench-fs: needs /dev/fuse; skipped"; exit 0; }

T=$(mktemp -d /var/tmp/fusefs-bench.XXXXXX)
PORT=$((30000 + RANDOM % 10000))
PIDS=()
cleanup() {
	local m p
	for m in "$T"/*/; do
		is_mounted "$m" && fusermount3 -u -z "$m" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
		gone "$p" 50 || kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the reference: passthrough_ll, built from the examples libfuse3-dev installs
PLL=$BUILD/passthrough_ll
if [ ! -x "$PLL" ]; then
	cc -O2 -Wall -o "$PLL" "$EXAMPLES/passthrough_ll.c" $(pkg-config fuse3 --cflags --libs) ||
		{ echo "bench-fs: cannot build passthrough_ll from $EXAMPLES"; exit 1; }
fi

wait_mount() {
	local i
	for ((i = 0; i < 150; i++)); do is_mounted "$1" && return 0; sleep 0.1; done
	return 1
}

# A real tree: /usr/include unpacked through $1, then compared through $2
# (tar --compare and diff -r); its time in ms, or "-" when a step failed.
tar -C / -cf "$T/include.tar" usr/include 2>/dev/null
untar_ms() {
	local t0
	mkdir -p "$1/u"
	t0=$(now_ms)
	tar -C "$1/u" -xf "$T/include.tar" && tar -C "$2/u" --compare -f "$T/include.tar" >/dev/null &&
		diff -r --no-dereference /usr/include "$2/u/usr/include" >/dev/null && echo $(($(now_ms) - t0)) && return 0
	echo -
}

mkdir -p "$T/src" "$T/pll"
"$PLL" -f -o source="$T/src" "$T/pll" >"$T/pll.log" 2>&1 &
PIDS+=($!)
wait_mount "$T/pll" || { echo "bench-fs: passthrough_ll did not mount"; cat "$T/pll.log"; exit 1; }
echo "bench-fs: passthrough_ll over $T/src"
"$BUILD/fusefs-fsbench" "$T/pll" "$T/pll" >"$T/ref.out" || exit 1
UNTAR_PLL=$(untar_ms "$T/pll" "$T/pll")
fusermount3 -u "$T/pll"

# the other reference: sshfs over 127.0.0.1, against an sshd of our own (its
# own keys and port, in $T; nothing of the host's ssh set-up is touched)
SSHFS_OK=0
if "$(dirname "$0")/install-deps.sh" --with-bench >/dev/null 2>&1 && command -v sshfs >/dev/null; then
	S=$T/sshd
	SPORT=$((PORT + 100))
	mkdir -p "$S" "$T/sshsrc" "$T/ssh" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$S/host" && ssh-keygen -q -t ed25519 -N '' -f "$S/user"
	cp "$S/user.pub" "$S/authorized_keys"
	cat >"$S/config" <<CFG
Port $SPORT
ListenAddress 127.0.0.1
HostKey $S/host
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $S/pid
Subsystem sftp internal-sftp
CFG
	/usr/sbin/sshd -D -e -f "$S/config" >"$T/sshd.log" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		sshfs -p "$SPORT" -o "IdentityFile=$S/user,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null" \
			"root@127.0.0.1:$T/sshsrc" "$T/ssh" 2>/dev/null && break
		sleep 0.1
	done
	if is_mounted "$T/ssh"; then
		echo "bench-fs: sshfs $(sshfs --version 2>&1 | awk '/SSHFS version/ {print $3}') over 127.0.0.1 (defaults)"
		"$BUILD/fusefs-fsbench" "$T/ssh" "$T/ssh" >"$T/sshfs.out" && SSHFS_OK=1
		fusermount3 -u "$T/ssh"
	fi
fi
[ "$SSHFS_OK" = 1 ] || echo "bench-fs: sshfs could not be set up (see $T/sshd.log); its column is empty"

DEV=$T/meta.img
truncate -s 4G "$DEV"
"$BUILD/fusefs-mkfs" -Q "0,127.0.0.1,$PORT" -Q "1,127.0.0.1,$((PORT + 1))" \
	-Q "2,127.0.0.1,$((PORT + 2))" "$DEV" >/dev/null || exit 1
declare -A MPID
for i in 0 1 2; do
	mkdir -p "$T/m$i"
	"$BUILD/fusefs-mount" -f -o "metadev_path=$DEV,quorum_slot_nr=$i" \
		"$T/m$i" >"$T/m$i.log" 2>&1 &
	MPID[m$i]=$!
	PIDS+=($!)
	wait_mount "$T/m$i" || { echo "bench-fs: m$i did not mount"; exit 1; }
done
mkdir -p "$T/c"
"$BUILD/fusefs-mount" -f -o "metadev_path=$DEV" "$T/c" >"$T/c.log" 2>&1 &
PIDS+=($!)
wait_mount "$T/c" || { echo "bench-fs: the client did not mount"; cat "$T/c.log"; exit 1; }
L=
for i in 0 1 2; do
	[ "$(getfattr --only-values -n user.fusefs.quorum.is_leader "$T/m$i" 2>/dev/null)" = 1 ] && L=$i
done
[ -n "$L" ] || { echo "bench-fs: no leader"; exit 1; }
ctr() { getfattr --only-values -n user.fusefs.counters "$T/m$L" 2>/dev/null | awk -v k="$1" '$1 == k {print $2}'; }

echo "bench-fs: the leader's mount (slot $L)"
mkdir "$T/m$L/b1"
c0=$(ctr server_commits)
r0=$(ctr server_committed_requests)
"$BUILD/fusefs-fsbench" "$T/m$L/b1" "$T/c/b1" >"$T/leader.out" || exit 1
echo "bench-fs: a plain client's mount"
mkdir "$T/c/b2"
"$BUILD/fusefs-fsbench" "$T/c/b2" "$T/m$(((L + 1) % 3))/b2" >"$T/client.out" || exit 1
echo "bench-fs: /usr/include unpacked through the client, compared through another member"
UNTAR_FS=$(untar_ms "$T/c" "$T/m$(((L + 1) % 3))")
c1=$(ctr server_commits)
r1=$(ctr server_committed_requests)
bmax=$(ctr server_batch_requests_max)

# The issue's targets: each row's ratio (the client's figure over a reference's)
# and the least it must reach; "met" or "MISSED" beside it.
target() {
	case $1 in
	stats_warm | lookups_neg_warm) echo "pll 0.9" ;;
	stats_cold | seq_read) echo "pll 0.5" ;;
	readdir_entries) echo "pll 1" ;;
	file_reads_4k | file_reads_4k_warm) echo "pll 0.7" ;;
	seq_write_fsync) echo "pll 0.9" ;;
	creates | mkdirs | renames | file_writes_4k | write_fsync_4k) echo "sshfs 1.5" ;;
	unlinks | rmdirs) echo "sshfs 1" ;;
	*) echo "- -" ;;
	esac
}
# met when a >= b (or, with a third word "most", a <= b)
verdict() {
	awk -v a="$1" -v b="$2" -v most="${3:-}" \
		'BEGIN {print (a == "-" ? "-" : ((most ? a + 0 <= b + 0 : a + 0 >= b + 0) ? "met" : "MISSED"))}'
}
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN {if (b > 0 && a != "") printf "%.2f", a / b; else print "-"}'; }

printf '\n%-20s %11s %11s %14s %11s %7s %7s %14s\n' "operation" "leader" "client" "passthrough_ll" "sshfs" \
	"c/pll" "c/sshfs" "target"
while read -r name ref unit; do
	l=$(awk -v k="$name" '$1 == k {print $2}' "$T/leader.out")
	c=$(awk -v k="$name" '$1 == k {print $2}' "$T/client.out")
	h=$(awk -v k="$name" '$1 == k {print $2}' "$T/sshfs.out" 2>/dev/null)
	read -r tref tmin <<<"$(target "$name")"
	rp=$(ratio "$c" "$ref")
	rs=$(ratio "$c" "$h")
	case $tref in
	pll) tv="$tmin x pll $(verdict "$rp" "$tmin")" ;;
	sshfs) tv="$tmin x sshfs $(verdict "$rs" "$tmin")" ;;
	*) tv= ;;
	esac
	printf '%-20s %11s %11s %14s %11s %7s %7s %-4s %s\n' "$name" "$l" "$c" "$ref" "${h:--}" "$rp" "$rs" \
		"$unit" "$tv"
done <"$T/ref.out"
echo
echo "requests per commit (both runs): $(awk -v r=$((r1 - r0)) -v c=$((c1 - c0)) 'BEGIN {printf "%.2f", (c > 0 ? r / c : 0)}') on average, $bmax in the largest batch"
for n in leader client; do
	s16=$(awk '$1 == "creates_16_threads" {print $2}' "$T/$n.out")
	s1=$(awk '$1 == "creates_1_thread" {print $2}' "$T/$n.out")
	x=$(ratio "$s16" "$s1")
	echo "$n: 16 concurrent creators on two mounts / 1 creator = $x (target 5: $(verdict "$x" 5))"
done
x=$(ratio "$UNTAR_PLL" "$UNTAR_FS")
echo "tar -x of /usr/include, then tar --compare and diff -r through another mount:" \
	"fusefs ${UNTAR_FS} ms, passthrough_ll ${UNTAR_PLL} ms; pll/fusefs = $x" \
	"(target: within 1.5x, pll/fusefs >= 0.67: $(verdict "$x" 0.67))"
for n in m0 m1 m2; do
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/${MPID[$n]}/status")
	echo "$n's peak resident set: $((hwm / 1024)) MiB$([ "$n" = "m$L" ] && echo " (the leader)")" \
		"(target under 64 MiB: $([ $((hwm / 1024)) -lt 64 ] && echo met || echo MISSED))"
done

# Where the time goes, per op: the client mount's stages and the leader's
# (fusefs-mount's counters xattr, "lat STAGE OP n N p50_us X p99_us Y").
echo
echo "stages, p50/p99 in us (client: the plain client's mount; server: the leader, both runs)"
printf '%-12s %9s' op calls
for st in client_total client_send client_wait client_wake server_total server_queue server_apply server_commit; do
	printf ' %14s' "$st"
done
echo
{
	getfattr --only-values -n user.fusefs.counters "$T/c" 2>/dev/null
	getfattr --only-values -n user.fusefs.counters "$T/m$L" 2>/dev/null
} | awk '
	$1 == "lat" && NF == 9 { key = $3 SUBSEP $2; v[key] = sprintf("%.0f/%.0f", $7, $9); n[$3] += 0; if ($2 == "client_total") n[$3] = $5; ops[$3] = 1 }
	END {
		split("client_total client_send client_wait client_wake server_total server_queue server_apply server_commit", st, " ")
		for (op in ops) {
			printf "%-12s %9s", op, n[op]
			for (i = 1; i <= 8; i++) printf " %14s", ((op SUBSEP st[i]) in v) ? v[op SUBSEP st[i]] : "-"
			printf "\n"
		}
	}' | sort -k2 -nr
getfattr --only-values -n user.fusefs.counters "$T/m$L" 2>/dev/null | awk '$1 == "lat" && NF == 8 { printf "%s: p50 %s us, p99 %s us over %s commits\n", $2, $6, $8, $4 }'

# A one-operation commit beside the device's own durable 4 KiB write, measured now, on this machine
dw=$("$BUILD/fusefs-bench" 2>/dev/null | awk '/durable 4 KiB write .* p50/ {print $(NF-1)}')
cm=$(getfattr --only-values -n user.fusefs.counters "$T/m$L" 2>/dev/null |
	awk '$1 == "lat" && $2 == "server_commit" && $3 == "mkdir" {print $7}')
x=$(ratio "${cm:-}" "${dw:-}")
echo "a one-mkdir commit at the server: p50 ${cm:-?} us; a durable 4 KiB write on $(dirname "$T"):" \
	"p50 ${dw:-?} us; ratio $x (target at most 1.3: $(verdict "$x" 1.3 most))"
