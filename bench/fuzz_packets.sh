#!/usr/bin/env bash
# The long packet-fuzz run (issue 6): random and mutated frames through both
# packet programs (tests/fuzz/packet_fuzz.cpp; CI runs 200k of them as
# fuzz.packets_200k). Runs in chunks, each a fresh dataplane with its own
# seed (SEED, SEED+1, ...). A failing chunk records its last window (seed,
# CT tick, CPU, program order, frames, CT state) to
# $FUZZ_ARTIFACTS/chunk-I-seed-S.replay, reproduced with
#   packet_fuzz --replay <that file>
# (the seed alone does not: the kernel's random choices and LRU evictions
# differ from run to run).
#
#   bench/fuzz_packets.sh [--packets 10000000] [--chunk 1000000] [--seed S]
# SVCLB_BIN: where packet_fuzz is (default build/bin). Needs root. Exit 1 on
# any violation. Prints frames/s and test_run calls/s per chunk and overall.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SVCLB_BIN=${SVCLB_BIN:-$REPO/build/bin}
PACKETS=10000000
CHUNK=1000000
SEED=$(date +%s)
while (($#)); do
    case $1 in
        --packets) PACKETS=$2; shift 2 ;;
        --chunk) CHUNK=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        *) echo "usage: $0 [--packets N] [--chunk N] [--seed S]" >&2; exit 2 ;;
    esac
done
FUZZ=$SVCLB_BIN/packet_fuzz
[[ -x $FUZZ ]] || { echo "no $FUZZ (build the packet_fuzz target first)" >&2; exit 2; }
((EUID == 0)) || { echo "needs root (BPF_PROG_TEST_RUN)" >&2; exit 2; }

LOG=$(mktemp /tmp/svclb-fuzz-packets.XXXXXX)
trap 'rm -f "$LOG"' EXIT
done_frames=0 i=0 failed=0 t0=$SECONDS
echo "packet fuzz: $PACKETS frames in chunks of $CHUNK, seeds from $SEED"
while ((done_frames < PACKETS)); do
    n=$((PACKETS - done_frames < CHUNK ? PACKETS - done_frames : CHUNK))
    seed=$((SEED + i))
    # ~10 us per frame at worst; a chunk that takes longer than that is hung.
    art=${FUZZ_ARTIFACTS:-/tmp/svclb-fuzz-artifacts}
    mkdir -p "$art"
    if ! timeout $((n / 50000 + 120)) "$FUZZ" --packets "$n" --seed "$seed" --quiet \
        --artifacts "$art" --record "$art/chunk-$i-seed-$seed.replay" >"$LOG" 2>&1; then
        echo "chunk $i (seed $seed): FAILED"; cat "$LOG"; failed=1; break
    fi
    echo "chunk $i (seed $seed): $(grep -o '[0-9]* frames/s end to end' "$LOG"), $(grep -o '[0-9]* test_run calls/s' "$LOG")"
    grep 'conntrack:' "$LOG" || true
    done_frames=$((done_frames + n)); i=$((i + 1))
done
secs=$((SECONDS - t0))
echo "packet fuzz: $done_frames frames in ${secs}s ($((done_frames / (secs > 0 ? secs : 1))) frames/s, each through tc and XDP)"
((failed == 0)) && echo "packet fuzz: OK" || { echo "packet fuzz: FAILED"; exit 1; }
