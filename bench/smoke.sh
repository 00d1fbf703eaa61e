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
    "xdp.non_service_udp_pass", "tc.non_service_udp_pass",
    "tc.no_endpoint_reject", "xdp.no_endpoint_reject_udp", "ref.xdp_pass", "ref.xdp_tx", "ref.ct_hit", "ref.ct_hit_pingpong",
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

# The report writer on this run plus a synthetic side-by-side result with
# known ratios (the compare itself takes too long for CI).
"$PY" - "$out/cmp.json" <<'PYEOF'
import json, sys
rows = []
pps = {"gen": 1000e3, "routing": 500e3, "xdppass": 400e3, "svclb": 450e3, "iptables": 20e3, "nftables": 200e3}
for n in (10, 10000):
    for rep in range(3):
        for c, v in pps.items():
            rows.append({"kind": "udp", "n": n, "rep": rep, "cfg": c,
                         "established": {"fwd_pps": v}, "new_flow": {"fwd_pps": v * (1 + rep / 100)}})
            if c != "gen":
                rows.append({"kind": "tcp", "n": n, "rep": rep, "cfg": c,
                             "rate": {"cps": 30000 if c != "svclb" else 27000},
                             "latency": {"cps": 1, "connect_us_p50": 35.0}})
        rows.append({"kind": "ep_change", "n": n, "rep": rep, "step": "add",
                     "r": {"map_s": 0.004 + rep / 1000, "command_s": 0.003}})
    rows.append({"kind": "load", "n": n, "svclb_s": 0.4, "iptables_s": 1.0, "nftables_s": 12.0, "nft_ok": 1})
json.dump({"kernel": "k", "reps": 3, "quick": True, "endpoints": 10, "ct_flows": 262144, "rows": rows},
          open(sys.argv[1], "w"))
PYEOF
"$PY" "$(dirname "$0")/report.py" --perpacket "$out/r.json" --compare "$out/cmp.json" --mode quick \
    --out "$out/rep" >/dev/null
"$PY" - "$out/rep.md" "$out/rep.json" <<'PYEOF'
import json, sys
md = open(sys.argv[1]).read()
t = {x["target"]: x for x in json.load(open(sys.argv[2]))["summary"]["targets"]}
def near(name, median, met):
    x = t[name]
    assert abs(x["value"]["median"] - median) < 1e-6 and x["met"] == met, f"{name}: {x}"
near("UDP new-flow pps svclb / routing, 10000 services", 0.9, True)
near("UDP new-flow pps svclb / nftables, 10000 services", 2.25, True)
near("UDP new-flow pps svclb / iptables, 10000 services", 22.5, True)
near("TCP conn/s svclb / routing, 10000 services", 0.9, True)
near("load 10000 services x 10 endpoints (svcctl apply), s", 0.4, True)
near("one endpoint change -> in the map, 10000 services installed, ms", 5.0, True)
for s in ("## Targets", "XDP CT hit / bare CT-hit reference, N=1", "### 10000 services", "262144 flows"):
    assert s in md, f"report lacks {s!r}"
print("bench.smoke: report written, targets computed per round")
PYEOF
