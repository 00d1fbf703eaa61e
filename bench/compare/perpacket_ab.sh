#!/usr/bin/env bash
# Per-packet cost of two builds side by side: svclb-bench-perpacket of build A
# and of build B, alternated (A B A B ...) for ROUNDS rounds, each run with
# --reps 1, so both see the same machine state; prints per row the median over
# rounds of the net ns (wrapper floor subtracted; raw ns for unwrapped rows),
# B/A, the per-round B/A (median, min-max: a range far across 1.00 means the
# machine's noise is larger than the difference), and each build's ratio to
# its own bare single-insert reference (ref.new_flow, same N and keys).
#
# usage: bench/compare/perpacket_ab.sh BIN_A BIN_B [ROUNDS=5] [SERVICES=10,10k] [ONLY=regex]
#   BIN_A/BIN_B: svclb-bench-perpacket binaries (e.g. a copy of the before
#   build's build/bin/svclb-bench-perpacket and this build's).
#   ONLY: rows to run (default: the new-flow rows, the CT-hit and reply rows,
#   the non-Service rows and the bare references).
# Environment: PP_ARGS (extra perpacket options, e.g. "--ct-entries 262144"),
# OUT (a directory to keep every run's JSON in; default a temporary one).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
A=$1 B=$2 ROUNDS=${3:-5} SERVICES=${4:-10,10k}
ONLY=${5:-'new_flow|ct_hit$|reply_rnat$|non_service_pass$'}
for bin in "$A" "$B"; do
  [[ -x $bin ]] || { echo "perpacket_ab.sh: $bin is not an executable perpacket binary" >&2; exit 2; }
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "perpacket_ab.sh: ROUNDS must be a positive number, not '$ROUNDS'" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(mktemp -d /tmp/perpacket_ab.XXXXXX)}
mkdir -p "$OUT"
read -r -a EXTRA <<<"${PP_ARGS:-}"
for ((r = 0; r < ROUNDS; r++)); do
  for side in A B; do
    bin=$A
    [[ $side == B ]] && bin=$B
    echo "round $((r + 1))/$ROUNDS: $side ($bin)" >&2
    timeout 1800 "$bin" --services "$SERVICES" --reps 1 --only "$ONLY" "${EXTRA[@]}" \
      --json "$OUT/$side.$r.json" >"$OUT/$side.$r.txt"
  done
done
python3 "$HERE/perpacket_ab.py" "$OUT" "$A" "$B"
echo "runs kept in $OUT" >&2
