#!/usr/bin/env bash
# svclb benchmark report: per-packet cost (svclb-bench-perpacket) and the
# side-by-side node comparison (compare/run.sh), written to
# bench/results/<date>-<host>.{md,json} with PNG charts (gnuplot).
#
#   bench/run.sh [--quick|--full] [--build DIR] [--skip-compare] [--no-kp-ipt] [--build-only]
#     --quick  1 and 1k services per-packet (repeat 1e5, 5 reps); compare
#              with 10 and 1,000 services, 3 rounds
#     --full   1, 1k, 100k, 1M services (repeat 1e6, 5 reps); compare with
#              10, 1,000 and 10,000 services, 5 rounds  (default)
#     --no-kp-ipt   the compare without the real kube-proxy's iptables mode
#              (its syncs at 10,000 Services take many minutes)
#     --build-only  build (below) and stop
# Builds what it runs first (scripts/build.sh into DIR: dependencies from
# Debian's packages, then an incremental cmake build).
# Needs root. The machine may be shared: every figure is min/median/max over
# >= 5 (quick compare: 3) rounds, and ratios are taken within one run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$REPO/build}
MODE=full
COMPARE=1
BUILD_ONLY=0
NO_KP_IPT=0
while [ $# -gt 0 ]; do
    case $1 in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --build) BUILD=$2; shift ;;
        --skip-compare) COMPARE=0 ;;
        --no-kp-ipt) NO_KP_IPT=1 ;;
        --build-only) BUILD_ONLY=1 ;;
        *) sed -n '2,18p' "$0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root" >&2; exit 1; }
echo "== build ($BUILD)" >&2
BUILD_DIR=$BUILD BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} bash "$REPO/scripts/build.sh"
[ $BUILD_ONLY = 0 ] || exit 0
PY=$(command -v /usr/bin/python3 || command -v python3)
STAMP=$(date +%Y-%m-%d)-$(hostname -s)
OUTDIR=$HERE/results
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/svclb-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# report.py's side-by-side figures are those of the hand-written
# iptables/nftables rulesets (compare/run.sh --handwritten); the real
# kube-proxy's configs run beside them when Go is there and land in the JSON
# (bench/compare/real_peer_table.py writes their table).
if [ $NO_KP_IPT = 1 ]; then CMPX=(--no-kp-ipt); else CMPX=(); fi
if [ $MODE = quick ]; then
    PP=(--services 1,1000 --repeat 100000 --new-flow-repeat 20000 --reps 5 --ct-entries 262144)
    CMP=(--quick --handwritten)
else
    PP=(--services 1,1000,100000,1000000 --repeat 1000000 --new-flow-repeat 200000 --reps 5 --ct-entries 4194304)
    CMP=(--handwritten)
fi

echo "== per-packet ($MODE)" >&2
timeout 3600 "$BUILD/bin/svclb-bench-perpacket" "${PP[@]}" --json "$WORK/perpacket.json" | tee "$WORK/perpacket.txt"
if ((COMPARE)); then
    echo "== side by side ($MODE)" >&2
    timeout 5400 "$HERE/compare/run.sh" "${CMP[@]}" ${CMPX[@]+"${CMPX[@]}"} --build "$BUILD" --out "$WORK/compare.json" \
        || echo "compare/run.sh failed; the report has the per-packet part only" >&2
fi

"$PY" "$HERE/report.py" --perpacket "$WORK/perpacket.json" \
    ${COMPARE:+--compare "$WORK/compare.json"} --mode "$MODE" --out "$OUTDIR/$STAMP"
echo "wrote $OUTDIR/$STAMP.md, .json and PNG charts" >&2
