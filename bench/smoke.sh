#!/usr/bin/env bash
# ctest bench.smoke: runs the per-packet tool on 1 and 1k services with a
# small repeat and checks the report has every field (not timings).
set -euo pipefail
tool=$1
[ "$(id -u)" = 0 ] || { echo "bench.smoke: needs root; skipped"; exit 77; }
out=$(mktemp -d /tmp/svclb-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
rc=0
"$tool" --services 1,1000 --repeat 2000 --new-flow-repeat 2000 --reps 1 --ct-entries 65536 \
    --json "$out/r.json" >"$out/table.txt" 2>"$out/log.txt" || rc=$?
cat "$out/table.txt"
if [ "$rc" != 0 ]; then cat "$out/log.txt" >&2; echo "bench.smoke: tool exited $rc" >&2; exit 1; fi
PY=$(command -v /usr/bin/python3 || command -v python3)
"$PY" - "$out/r.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("kernel", "cpu", "config", "results", "load", "not_implemented"):
    assert k in r, f"missing top-level field {k}"
need = {
    "xdp.clusterip_new_flow", "xdp.clusterip_ct_hit", "xdp.clusterip_ct_hit_pingpong",
    "xdp.reply_rnat", "xdp.non_service_pass", "xdp.no_endpoint_reject",
    "xdp.affinity_new_flow", "xdp.maglev_new_flow", "tc.affinity_new_flow", "tc.maglev_new_flow",
    "tc.clusterip_new_flow", "tc.clusterip_ct_hit", "tc.reply_rnat", "tc.non_service_pass",
    "tc.no_endpoint_reject", "ref.xdp_pass", "ref.xdp_tx", "ref.ct_hit", "ref.ct_hit_pingpong",
    "ref.new_flow", "ref.tc_ok",
}
for n in (1, 1000):
    rows = [x for x in r["results"] if x["n"] == n]
    ids = {x["id"] for x in rows}
    missing = need - ids
    assert not missing, f"N={n}: missing rows {sorted(missing)}"
    for x in rows:
        assert x["path_ok"], f"N={n} {x['id']} {x['keys']}: {x.get('error')}"
        for f in ("min", "median", "max", "samples"):
            assert f in x["ns"], f"N={n} {x['id']}: missing ns.{f}"
        if x["method"] == "wrap" and not x["id"].startswith("floor."):
            assert "net_ns" in x, f"N={n} {x['id']}: missing net_ns"
    if n == 1000:
        assert any(x["keys"] == "spread" for x in rows), "N=1000: no spread rows"
print("bench.smoke: report fields present, every row on its path")
PYEOF
