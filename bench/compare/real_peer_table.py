#!/usr/bin/env python3
"""Markdown tables of a bench/compare/run.sh result (the real-peer configs
beside the floors): per N, every config's medians over the rounds and the
ratios of those medians to `routing` and to `kp-nft`; then the control path
(first create -> complete, one endpoint change) per config.

usage: real_peer_table.py COMPARE.json   (markdown on stdout)
"""
import json
import statistics
import sys

d = json.load(open(sys.argv[1]))
rows = d["rows"]
ORDER = ["gen", "routing", "xdppass", "svclb", "svclb-k8s", "kp-nft", "kp-ipt", "iptables", "nftables"]


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, nd=0):
    if x is None:
        return "—"
    return f"{x:,.{nd}f}"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}x"


sizes = sorted({r["n"] for r in rows if "n" in r})
cfgs = [c for c in ORDER if any(r.get("cfg") == c for r in rows)]
print(f"kernel {d.get('kernel')}, {d.get('reps')} rounds per N, generator {d.get('gen_mode')}, "
      f"{d.get('endpoints')} endpoints per Service; medians over the rounds; "
      "ratios are ratios of medians (x routing / x kp-nft)\n")
for n in sizes:
    fig = {}
    for c in cfgs:
        u = [r for r in rows if r["kind"] == "udp" and r["n"] == n and r["cfg"] == c]
        t = [r for r in rows if r["kind"] == "tcp" and r["n"] == n and r["cfg"] == c]
        s = [r for r in rows if r["kind"] == "tcp_sock" and r["n"] == n and r["cfg"] == c]
        fig[c] = {
            "est": med([r["established"]["fwd_pps"] for r in u]),
            "new": med([r["new_flow"]["fwd_pps"] for r in u]),
            "cps": med([r["rate"]["cps"] for r in t]),
            "lat": med([r["latency"]["connect_us_p50"] for r in t if r["latency"]["cps"] > 0]),
            "errors": sum(r["rate"]["errors"] + r["latency"]["errors"] for r in t),
        }
        if s:
            fig[c + " (in its cgroup)"] = {
                "est": None, "new": None,
                "cps": med([r["rate"]["cps"] for r in s]),
                "lat": med([r["latency"]["connect_us_p50"] for r in s if r["latency"]["cps"] > 0]),
                "errors": sum(r["rate"]["errors"] + r["latency"]["errors"] for r in s),
                "path": "/".join(sorted({r["path"] for r in s})),
            }
    ro, kp = fig.get("routing", {}), fig.get("kp-nft", {})
    print(f"### N = {n:,} Services x {d.get('endpoints')} endpoints\n")
    print("| config | UDP established pps | x routing | x kp-nft | UDP new-flow pps | x routing | x kp-nft "
          "| TCP conn/s | x routing | x kp-nft | first-packet connect p50 (µs) | TCP errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c, f in fig.items():
        name = c + (f" — {f['path']} path" if "path" in f else "")
        cells = [name]
        for k in ("est", "new", "cps"):
            cells += [fmt(f[k]), ratio(f[k], ro.get(k)), ratio(f[k], kp.get(k))]
        cells += [fmt(f["lat"], 1), str(f["errors"])]
        print("| " + " | ".join(cells) + " |")
    print()

sync = [r for r in rows if r["kind"] == "k8s_sync"]
chg = [r for r in rows if r["kind"] == "k8s_change"]
if sync or chg:
    print("### Control path (real peer)\n")
    print("| N | config | create N Services + slices, wall (s) | first create -> complete (ms) "
          "| last create -> complete (ms) | one endpoint change, kubectl -> dataplane: median / max (ms, n) "
          "| x kp-nft (first create -> complete / change) |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        base = {}
        for c in ("kp-nft", "svclb-k8s", "kp-ipt"):
            s = [r for r in sync if r["n"] == n and r["cfg"] == c]
            ch = [r["ms"] for r in chg if r["n"] == n and r["cfg"] == c and r["ms"] is not None and r["ms"] >= 0]
            if not s and not ch:
                continue
            fc = med([r["first_create_to_complete_ms"] for r in s])
            lc = med([r["last_create_to_complete_ms"] for r in s])
            wall = med([r["create"]["wall_s"] for r in s])
            cm = med(ch)
            if c == "kp-nft":
                base = {"fc": fc, "cm": cm}
            rr = "—" if c == "kp-nft" else (
                f"{ratio(fc, base.get('fc'))} / {ratio(cm, base.get('cm'))}")
            print(f"| {n:,} | {c} | {fmt(wall, 1)} | {fmt(fc)} | {fmt(lc)} | "
                  f"{fmt(cm, 1)} / {fmt(max(ch) if ch else None, 1)} ({len(ch)}) | {rr} |")
    print()
load = [r for r in rows if r["kind"] == "load"]
if load:
    print("svclb (svcctl apply of the same N Services as a manifest), load time median (s): " +
          ", ".join(f"N={n:,}: {fmt(med([r['svclb_s'] for r in load if r['n'] == n]), 3)}" for n in sizes))
