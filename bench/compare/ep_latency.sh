#!/usr/bin/env bash
# Apply -> map latency of one endpoint change, two builds side by side
# (issue 12's budget: one endpoint change <= 5 ms). For each build: svclbd
# in a network namespace of its own (no interfaces, --cgroup none, a private
# bpffs dir and state dir) holding N Services x E endpoints
# (bench/compare/gen.py, as run.sh loads them). Then REPS rounds, the builds
# alternating (the order flips every round); each round, for each build,
# adds an endpoint (10.251.0.99) to the last Service's Endpoints and removes
# it again, each step one `svcctl apply -f` of that one object run under
# svclb-mappoll (as run.sh measures it):
#   map_s      from the fork of svcctl until the Service's master counts a
#              slot naming 10.251.0.99:5353 (or, removing, none does);
#   command_s  the svcctl process's wall time (exec, connect, send, the
#              daemon's parse, plan, map writes, persist, reply, exit);
#   sync_us    the daemon's own map writes for that change (svcctl status:
#              sync.lastDurationUs, read after the step).
#
#   bench/compare/ep_latency.sh BIN_A BIN_B [N] [E] [REPS]
# BIN_*: directories holding svclbd, svcctl and svclb-mappoll. Prints one
# line per step and the medians. Needs root. Removes its namespaces, pins
# and processes on exit; every command is bounded by a timeout.
set -euo pipefail
A=${1:?usage: ep_latency.sh BIN_A BIN_B [N] [E] [REPS]}
B=${2:?usage: ep_latency.sh BIN_A BIN_B [N] [E] [REPS]}
N=${3:-10000}
E=${4:-10}
REPS=${5:-5}
[ "$(id -u)" = 0 ] || { echo "ep_latency: needs root" >&2; exit 77; }
for bin in "$A" "$B"; do
    for t in svclbd svcctl svclb-mappoll; do
        [ -x "$bin/$t" ] || { echo "ep_latency: $bin/$t missing (build first)" >&2; exit 1; }
    done
done
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/daemons.sh"
daemons_init epl$$

mkdir -p "$TMP/gen"
python3 "$HERE/gen.py" "$N" "$E" "$TMP/gen" >/dev/null
LAST_VIP=$(python3 -c "import ipaddress; print(ipaddress.ip_address('10.96.0.1') + $N - 1)")
# The last Service's Endpoints, with (add) and without (remove) 10.251.0.99.
python3 - "$TMP/gen/svc.yaml" "$TMP/add.yaml" "$TMP/remove.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
eps = [d for d in docs if "kind: Endpoints" in d][-1]
if not eps.startswith("---\n"):
    eps = "---\n" + eps
open(sys.argv[2], "w").write(eps.replace("- ip: ", "- ip: 10.251.0.99\n  - ip: ", 1))
open(sys.argv[3], "w").write(eps)
PY

for s in a b; do
    bin=$A; [ $s = b ] && bin=$B
    daemon_start $s "$bin"
    timeout 120 "$bin/svcctl" --socket "$TMP/$s.sock" apply -f "$TMP/gen/svc.yaml" >/dev/null
done

declare -A map cmd sync
step() {  # name bindir add|remove
    local s=$1 bin=$2 st=$3 gone="" m u
    [ "$st" = remove ] && gone=--gone
    m=$(timeout 60 "$bin/svclb-mappoll" --bpffs "/sys/fs/bpf/$P-$s" --vip "$LAST_VIP" --vport 53 \
        --proto udp --addr 10.251.0.99 --port 5353 $gone --timeout 30 \
        -- "$bin/svcctl" --socket "$TMP/$s.sock" apply -f "$TMP/$st.yaml") ||
        { echo "mappoll failed ($s $st): $m"; tail "$TMP/$s.log"; exit 1; }
    u=$(timeout 30 "$bin/svcctl" --socket "$TMP/$s.sock" status -o json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["sync"]["lastDurationUs"])')
    python3 - "$m" "$u" "$s" "$st" "$r" >"$TMP/row" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
assert m["command_ok"], "svcctl apply failed"
print(f'{m["map_s"] * 1000:.3f} {m["command_s"] * 1000:.3f} {sys.argv[2]}')
PY
    read -r ms cs us <"$TMP/row"
    map[$s]+="$ms "; cmd[$s]+="$cs "; sync[$s]+="$us "
    printf 'round %d %s %-6s: map %s ms, svcctl wall %s ms, daemon map sync %s us\n' "$r" "$s" "$st" "$ms" "$cs" "$us"
}
for ((r = 0; r < REPS; r++)); do
    order="a b"; ((r % 2)) && order="b a"
    for s in $order; do
        bin=$A; [ $s = b ] && bin=$B
        step "$s" "$bin" add
        step "$s" "$bin" remove
    done
done
for s in a b; do
    printf 'median %s (%s), %d steps: map %.3f ms, svcctl wall %.3f ms, daemon map sync %s us\n' \
        "$s" "$([ $s = a ] && echo "$A" || echo "$B")" $((2 * REPS)) \
        "$(echo "${map[$s]}" | med)" "$(echo "${cmd[$s]}" | med)" "$(echo "${sync[$s]}" | med)"
done
