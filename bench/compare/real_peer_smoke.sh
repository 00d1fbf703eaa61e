#!/usr/bin/env bash
# ctest bench.real_peer_smoke: bench/compare/run.sh with the real kube-proxy
# (nftables and iptables) and svclbd --kubeconfig beside it, tiny: 3
# Services x 10 endpoints, one round. Checks that every dataplane carried
# traffic to the tested Service (forwarded UDP; TCP connections: none
# failed through svclb, at most 0.1 % through the kernel peers), that each
# real-peer dataplane completed the sync and the endpoint changes, that the
# socket-path rows say which path they took, and that the table writer
# reads the result. No timing assertions. Skips (77)
# without root or without Go (no control plane, no kube-proxy).
#   real_peer_smoke.sh BUILD_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$1
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
rc=0
bash "$HERE/../k8s/build-tools.sh" >/dev/null || rc=$?
((rc != 77)) || { echo "SKIP: no Go toolchain, so no kube-apiserver or kube-proxy can be built"; exit 77; }
((rc == 0)) || { echo "bench/k8s/build-tools.sh failed (rc $rc)" >&2; exit 1; }
out=$(mktemp -d /tmp/svclb-real-peer-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
bash "$HERE/run.sh" --sizes 3 --reps 1 --quick --build "$BUILD" --out "$out/r.json" 2>"$out/log" ||
    { tail -40 "$out/log" >&2; echo "run.sh failed" >&2; exit 1; }
PY=$(command -v /usr/bin/python3 || command -v python3)
"$PY" - "$out/r.json" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
real = ("kp-nft", "kp-ipt", "svclb-k8s")
for c in ("routing", "svclb") + real:
    u = [r for r in rows if r["kind"] == "udp" and r["cfg"] == c]
    t = [r for r in rows if r["kind"] == "tcp" and r["cfg"] == c]
    assert len(u) == 1 and len(t) == 1, f"{c}: {len(u)} udp / {len(t)} tcp rows"
    for k in ("established", "new_flow"):
        assert u[0][k]["fwd_pps"] > 0, f"{c}: no UDP {k} packet forwarded"
    for k in ("rate", "latency"):
        m = t[0][k]
        assert m["cps"] > 0, f"{c}: TCP {k}: {m}"
        # svclb's rows carry no failed connect; the kernel peers' rows may
        # (CI saw one lost SYN in ~90,000 through kube-proxy's nftables
        # DNAT): they are measured, not under test, and the table reports
        # the count. A harness fault fails every connect, far past 0.1 %.
        allowed = 0 if c.startswith("svclb") else max(1, m.get("connections", 0) // 1000)
        assert m["errors"] <= allowed, f"{c}: TCP {k}: {m} (allowed errors: {allowed})"
for c in real:
    s = [r for r in rows if r["kind"] == "k8s_sync" and r["cfg"] == c]
    assert len(s) == 1 and s[0]["create"]["services"] == 3, f"{c}: sync rows {s}"
    ch = [r for r in rows if r["kind"] == "k8s_change" and r["cfg"] == c]
    assert sorted(r["step"] for r in ch) == ["add", "remove"], f"{c}: change rows {ch}"
    assert all(r["ms"] is not None and r["ms"] >= 0 for r in ch), f"{c}: a change was not seen: {ch}"
for c in ("svclb", "svclb-k8s"):
    s = [r for r in rows if r["kind"] == "tcp_sock" and r["cfg"] == c]
    assert len(s) == 1 and s[0]["path"] in ("socket", "tc") and s[0]["flows"] > 0, f"{c}: socket row {s}"
    assert s[0]["rate"]["errors"] == 0, f"{c}: socket row errors {s[0]['rate']}"
print("real peer smoke: every dataplane carried traffic; syncs and changes seen")
PYEOF
"$PY" "$HERE/real_peer_table.py" "$out/r.json" >"$out/table.md"
grep -q '^| kp-nft |' "$out/table.md" && grep -q '^| 3 | svclb-k8s |' "$out/table.md" ||
    { cat "$out/table.md"; echo "the table lacks the real peer's rows" >&2; exit 1; }
echo "real peer smoke: ok"
