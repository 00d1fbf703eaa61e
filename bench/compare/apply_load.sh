#!/usr/bin/env bash
# Control-path load time, two builds side by side (issue 12's budget: 10,000
# Services <= 0.5 s, one endpoint change <= 5 ms). For each build: svclbd in
# a network namespace of its own (no interfaces, --cgroup none, a private
# bpffs dir and state dir), then REPS rounds, alternating the builds: delete
# what is loaded (not timed), `svcctl apply -f` of N Services x E endpoints
# (bench/compare/gen.py) timed, then one Endpoints change timed (the
# wall time of `svcctl apply` of a one-object file).
#
#   bench/compare/apply_load.sh BIN_A BIN_B [N] [E] [REPS]
# BIN_*: directories holding svclbd and svcctl. Prints one line per round and
# the medians. Needs root. Removes its namespaces, pins and processes on exit.
set -euo pipefail
A=${1:?usage: apply_load.sh BIN_A BIN_B [N] [E] [REPS]}
B=${2:?usage: apply_load.sh BIN_A BIN_B [N] [E] [REPS]}
N=${3:-10000}
E=${4:-2}
REPS=${5:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/daemons.sh"
daemons_init alb$$

mkdir -p "$TMP/gen"
python3 "$HERE/gen.py" "$N" "$E" "$TMP/gen" >/dev/null
python3 - "$TMP/gen/svc.yaml" "$TMP/one.yaml" <<'PY'
import sys
# The last object of the generated file is an Endpoints of the last Service:
# the one-object change is that Endpoints with one more address.
docs = open(sys.argv[1]).read().split("\n---\n")
eps = [d for d in docs if "kind: Endpoints" in d][-1]
open(sys.argv[2], "w").write(eps.replace("- ip: ", "- ip: 10.255.255.254\n  - ip: ", 1))
PY

daemon_start a "$A"
daemon_start b "$B"
now() { date +%s.%N; }
declare -A load change
for ((r = 0; r < REPS; r++)); do
    for s in a b; do
        bin=$A; [ $s = b ] && bin=$B
        ctl() { timeout 120 "$bin/svcctl" --socket "$TMP/$s.sock" "$@"; }
        ctl delete -f "$TMP/gen/svc.yaml" >/dev/null 2>&1 || true
        t0=$(now); ctl apply -f "$TMP/gen/svc.yaml" >/dev/null; t1=$(now)
        ctl apply -f "$TMP/one.yaml" >/dev/null; t2=$(now)
        l=$(echo "$t1 - $t0" | bc); c=$(echo "($t2 - $t1) * 1000" | bc)
        load[$s]+="$l "; change[$s]+="$c "
        printf 'round %d %s: apply %s services x %s endpoints %.3f s, one Endpoints change %.2f ms (svcctl wall)\n' \
            "$r" "$s" "$N" "$E" "$l" "$c"
    done
done
for s in a b; do
    printf 'median %s (%s): apply %.3f s, change %.2f ms\n' "$s" "$([ $s = a ] && echo "$A" || echo "$B")" \
        "$(echo "${load[$s]}" | med)" "$(echo "${change[$s]}" | med)"
done
