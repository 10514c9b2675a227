#!/bin/bash
# test-sim.sh - the deterministic simulator as part of make test:
#   1. thousands of seeds across 1, 2, 3, 5 and 15 members, every fault on;
#   2. the same seed replays the same run (byte-identical trace);
#   3. each deliberately broken protocol (and each device-fault fix undone)
#      is caught by an invariant;
#   4. the election and failover figures;
#   5. the whole system (fusefs-wsim: store, executor, term gate and
#      resending clients): WSIM_SEEDS seeds (20,000) hold every check, a
#      seed replays identically, and each planted bug is caught.
# Usage: scripts/test-sim.sh [BUILD_DIR]   (SIM_QUICK=1: fewer seeds, for ASan)
set -u
BUILD=${1:-build}
SIM=$BUILD/fusefs-sim
SEEDS=${SIM_SEEDS:-10000}
BREAK_SEEDS=10000
FIG_SEEDS=300
WSIM=$BUILD/fusefs-wsim
WSIM_SEEDS=${WSIM_SEEDS:-20000}
if [ "${SIM_QUICK:-0}" = 1 ]; then
	SEEDS=1000
	FIG_SEEDS=50
	WSIM_SEEDS=500
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/fusefs-sim.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

echo "test-sim: $SEEDS seeds, 1/2/3/5/15 members, all faults"
if ! "$SIM" --seeds "$SEEDS" --members 1,2,3,5,15 --stats; then
	echo "FAIL: the simulator found a violation (replay command above)"
	fail=1
fi

"$SIM" --seed 4242 --members 5 --trace >"$T/a" 2>&1
"$SIM" --seed 4242 --members 5 --trace >"$T/b" 2>&1
if [ "$(wc -l <"$T/a")" -lt 50 ] || ! cmp -s "$T/a" "$T/b"; then
	echo "FAIL: seed 4242 did not replay identically"
	fail=1
else
	echo "test-sim: seed 4242 replays identically ($(wc -l <"$T/a") trace lines)"
fi

# seeds that once found bugs outside the range above (docs/quorum.md)
for sm in 10003418:5 10067222:3; do
	if ! "$SIM" --seed "${sm%%:*}" --members "${sm##*:}" --quiet; then
		echo "FAIL: seed ${sm%%:*} (${sm##*:} members) found a violation again"
		fail=1
	fi
done
echo "test-sim: the seeds that found bugs before pass"

for mode in no-vote-persist no-prevote no-lease no-restart-promise no-device-retry \
	no-slow-device no-check no-unreadable-fence no-mount-repair any-tag; do
	if out=$("$SIM" --seeds "$BREAK_SEEDS" --members 1,2,3,5,15 --break "$mode" --expect-violation); then
		echo "test-sim: --break $mode: $out"
	else
		echo "FAIL: --break $mode was not caught: $out"
		fail=1
	fi
done

"$SIM" --figures --seeds "$FIG_SEEDS" --members 3,5,15 --hb-timeout 1000 || fail=1

echo "test-sim: the whole system, $WSIM_SEEDS seeds"
if ! "$WSIM" --seeds "$WSIM_SEEDS"; then
	echo "FAIL: the whole-system simulator found a violation (replay command above)"
	fail=1
fi
"$WSIM" --seed 77 --trace >"$T/a" 2>&1
"$WSIM" --seed 77 --trace >"$T/b" 2>&1
if [ "$(wc -l <"$T/a")" -lt 50 ] || ! cmp -s <(grep -v seeds/min "$T/a") <(grep -v seeds/min "$T/b"); then
	echo "FAIL: whole-system seed 77 did not replay identically"
	fail=1
else
	echo "test-sim: whole-system seed 77 replays identically ($(wc -l <"$T/a") trace lines)"
fi
for mode in no-term-gate no-reply-cache reply-before-commit purge-open-orphans no-resend; do
	if out=$("$WSIM" --seeds 5000 --break "$mode" --quiet); then
		echo "test-sim: whole system --break $mode: $(tail -1 <<<"$out")"
	else
		echo "FAIL: whole system --break $mode was not caught: $out"
		fail=1
	fi
done
exit $fail
