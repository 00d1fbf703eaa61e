#!/usr/bin/env python3
"""Turns svclb-bench-perpacket's JSON and compare/run.sh's JSON into
bench/results/<stamp>.md/.json and PNG charts (gnuplot, Debian gnuplot-nox).

Ratios are taken per round (samples of the same round were measured side by
side) and summarised as min/median/max."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--perpacket", required=True)
ap.add_argument("--compare")
ap.add_argument("--mode", default="full")
ap.add_argument("--out", required=True, help="path prefix: writes PREFIX.md, PREFIX.json, PREFIX-*.png")
a = ap.parse_args()

pp = json.load(open(a.perpacket))
cmp = None
if a.compare and os.path.exists(a.compare):
    try:
        cmp = json.load(open(a.compare))
    except ValueError:
        cmp = None


def mmm(v):
    v = [x for x in v if x is not None]
    if not v:
        return None
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}


def fmt(s, unit="", digits=0):
    if not s:
        return "–"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def row(n, rid, keys="hot", method=None):
    for r in pp["results"]:
        if r["n"] == n and r["id"] == rid and r["keys"] == keys and (method is None or r["method"] == method):
            return r
    return None


def ratios(x, y, field="ns"):
    if not x or not y or field not in x or field not in y:
        return None
    xs, ys = x[field]["samples"], y[field]["samples"]
    return mmm([p / q for p, q in zip(xs, ys) if q > 0])


ns = sorted({r["n"] for r in pp["results"]})
n1, nmax = ns[0], ns[-1]
summary = {"targets": []}
T = summary["targets"]


def target(name, value, goal, ok):
    T.append({"target": name, "value": value, "goal": goal, "met": ok})


# CT hit vs bare CT hit (no-wrapper ping-pong: the unmodified program)
for n in ns:
    s, r = row(n, "xdp.clusterip_ct_hit_pingpong"), row(n, "ref.ct_hit_pingpong")
    q = ratios(s, r)
    if q:
        target(f"XDP CT hit / bare CT-hit reference, N={n}", q, "<= 1.2x", q["median"] <= 1.2)
    if s:
        target(f"XDP CT hit absolute, N={n} (ns)", s["ns"], "< 70 ns", s["ns"]["median"] < 70)
# New flow vs bare new flow (net of the wrapper)
for n in ns:
    s, r1, r2 = row(n, "xdp.clusterip_new_flow"), row(n, "ref.new_flow"), row(n, "ref.new_flow2")
    q1, q2 = ratios(s, r1, "net_ns"), ratios(s, r2, "net_ns")
    if q1:
        target(f"XDP new flow / bare new flow (1 LRU insert), N={n}", q1, "<= 1.2x", q1["median"] <= 1.2)
    if q2:
        target(f"XDP new flow / bare new flow with reply entry (2 inserts), N={n}", q2, "(context)", q2["median"] <= 1.2)
# IPv6 beside IPv4 (issue 16): the same path's v6 row over its v4 row, per
# round (net of each row's own wrapper floor), and the bare v6 reference
# over the bare v4 one: what the longer keys and headers cost by themselves.
for n in ns:
    for v6id, v4id, label in (("tc6.clusterip_ct_hit", "tc.clusterip_ct_hit", "tc CT hit"),
                              ("tc6.reply_rnat", "tc.reply_rnat", "tc reply"),
                              ("tc6.clusterip_new_flow", "tc.clusterip_new_flow", "tc new flow"),
                              ("tc6.non_service_pass", "tc.non_service_pass", "tc non-Service"),
                              ("ref6.ct_hit", "ref.ct_hit", "bare CT hit reference"),
                              ("ref6.new_flow", "ref.new_flow", "bare new-flow reference")):
        q = ratios(row(n, v6id), row(n, v4id), "net_ns")
        if q:
            target(f"IPv6 / IPv4, {label}, N={n}", q, "(context)", True)
# Growth 1 -> max with a hot key
for rid, label in (("xdp.clusterip_ct_hit_pingpong", "XDP CT hit"), ("tc.clusterip_ct_hit_pingpong", "tc CT hit"),
                   ("xdp.clusterip_new_flow", "XDP new flow")):
    lo, hi = row(n1, rid), row(nmax, rid)
    if lo and hi and nmax != n1:
        g = hi["ns"]["median"] / lo["ns"]["median"] - 1
        target(f"{label}: growth N={n1} -> {nmax}, hot key", {"median": g * 100, "min": g * 100, "max": g * 100},
               "< 5 %", g < 0.05)
# Context for the growth rows: the bare references measured in the same
# runs. They do no per-service work, so their growth is the machine's (a
# 1M-service node has more memory in use: LRU inserts miss more).
for rid, label in (("ref.ct_hit_pingpong", "bare CT-hit reference"), ("ref.new_flow", "bare new-flow reference")):
    lo, hi = row(n1, rid), row(nmax, rid)
    if lo and hi and nmax != n1:
        g = hi["ns"]["median"] / lo["ns"]["median"] - 1
        target(f"({label}: growth N={n1} -> {nmax}, same runs)", {"median": g * 100, "min": g * 100, "max": g * 100},
               "(context)", g < 0.05)

# ---- compare ---------------------------------------------------------------
cmpsum = {}
if cmp:
    rows = cmp["rows"]
    sizes = sorted({r["n"] for r in rows})
    cfgs = ["gen", "routing", "xdppass", "svclb", "iptables", "nftables"]
    for n in sizes:
        d = {}
        udp = [r for r in rows if r["kind"] == "udp" and r["n"] == n]
        tcp = [r for r in rows if r["kind"] == "tcp" and r["n"] == n]
        gen = {r["rep"]: r for r in udp if r["cfg"] == "gen"}
        for c in cfgs:
            u = [r for r in udp if r["cfg"] == c]
            t = [r for r in tcp if r["cfg"] == c]
            e = {
                "udp_established_pps": mmm([r["established"]["fwd_pps"] for r in u]),
                "udp_new_flow_pps": mmm([r["new_flow"]["fwd_pps"] for r in u]),
            }
            if c != "gen":
                for kind in ("established", "new_flow"):
                    v = []
                    for r in u:
                        g = gen.get(r["rep"])
                        if g and r[kind]["fwd_pps"] > 0 and g[kind]["fwd_pps"] > 0:
                            v.append(1e9 / r[kind]["fwd_pps"] - 1e9 / g[kind]["fwd_pps"])
                    e[f"node_ns_per_pkt_{kind}"] = mmm(v)
                e["tcp_cps"] = mmm([r["rate"]["cps"] for r in t])
                e["first_packet_connect_us_p50"] = mmm([r["latency"]["connect_us_p50"] for r in t if r["latency"]["cps"] > 0])
            d[c] = e
        ld = [r for r in rows if r["kind"] == "load" and r["n"] == n]
        if ld:
            d["load_s"] = {k: mmm([r[k] for r in ld]) for k in ("svclb_s", "iptables_s", "nftables_s")}
            d["load_s"]["nft_ok"] = all(r.get("nft_ok", 1) for r in ld)
        ep = [r["r"].get("map_s") for r in rows if r["kind"] == "ep_change" and r["n"] == n and r["r"]]
        d["ep_change_map_s"] = mmm([x for x in ep if x is not None and x >= 0])
        cmd = [r["r"].get("command_s") for r in rows if r["kind"] == "ep_change" and r["n"] == n and r["r"]]
        d["ep_change_command_s"] = mmm([x for x in cmd if x is not None and x >= 0])
        cmpsum[n] = d

    # Targets at the largest size (the issue's: 10,000 services), ratios per
    # round (dataplanes measured side by side in the same round).
    nbig = max(sizes)

    def per_round(kind, field, a_cfg, b_cfg):
        by = {}
        for r in rows:
            if r["kind"] == kind and r["n"] == nbig and r["cfg"] in (a_cfg, b_cfg):
                by.setdefault(r["rep"], {})[r["cfg"]] = r
        q = []
        for rep in by.values():
            if a_cfg in rep and b_cfg in rep:
                a_v, b_v = field(rep[a_cfg]), field(rep[b_cfg])
                if a_v and b_v:
                    q.append(a_v / b_v)
        return mmm(q)

    nf = lambda r: r["new_flow"]["fwd_pps"]
    for other, goal in (("routing", 0.9), ("nftables", 2.0), ("iptables", 20.0)):
        q = per_round("udp", nf, "svclb", other)
        if q:
            target(f"UDP new-flow pps svclb / {other}, {nbig} services", q, f">= {goal:g}x", q["median"] >= goal)
    q = per_round("tcp", lambda r: r["rate"]["cps"], "svclb", "routing")
    if q:
        target(f"TCP conn/s svclb / routing, {nbig} services", q, ">= 0.9x", q["median"] >= 0.9)
    lds = [r["svclb_s"] for r in rows if r["kind"] == "load" and r["n"] == nbig]
    if lds:
        s = mmm(lds)
        target(f"load {nbig} services x 10 endpoints (svcctl apply), s", s, "<= 0.5 s", s["median"] <= 0.5)
    s = cmpsum[nbig].get("ep_change_map_s")
    if s:
        ms = {k: (v * 1000 if k != "n" else v) for k, v in s.items()}
        target(f"one endpoint change -> in the map, {nbig} services installed, ms", ms, "<= 5 ms",
               ms["median"] <= 5)

# ---- charts -----------------------------------------------------------------
charts = []
gp = shutil.which("gnuplot")
if gp:
    with tempfile.TemporaryDirectory() as td:
        series = [("xdp.clusterip_ct_hit_pingpong", "hot", "svclb XDP CT hit"),
                  ("tc.clusterip_ct_hit_pingpong", "hot", "svclb tc CT hit"),
                  ("xdp.clusterip_ct_hit", "spread", "svclb XDP CT hit, keys spread (wrap)"),
                  ("xdp.clusterip_new_flow", "hot", "svclb XDP new flow (wrap)"),
                  ("xdp.clusterip_new_flow", "spread", "svclb XDP new flow, spread (wrap)"),
                  ("ref.ct_hit_pingpong", "hot", "bare CT hit"),
                  ("ref.new_flow", "hot", "bare new flow (wrap)"),
                  ("ref.xdp_pass", "hot", "XDP_PASS")]
        plots = []
        for i, (rid, keys, title) in enumerate(series):
            f = os.path.join(td, f"s{i}.dat")
            with open(f, "w") as fh:
                for n in ns:
                    r = row(n, rid, keys)
                    if r:
                        fh.write(f"{n} {r['ns']['median']} {r['ns']['min']} {r['ns']['max']}\n")
            if os.path.getsize(f):
                plots.append(f"'{f}' using 1:2:3:4 with yerrorlines title '{title}'")
        png1 = a.out + "-cost.png"
        script = (f"set terminal pngcairo size 1000,600 noenhanced\nset output '{png1}'\nset logscale xy\n"
                  "set xlabel 'services installed'\nset ylabel 'ns per packet (test_run, median, min-max)'\n"
                  "set key outside right\nset grid\nset xrange [0.5:*]\n"
                  f"plot {', '.join(plots)}\n")
        if plots and subprocess.run([gp], input=script.encode(), capture_output=True).returncode == 0:
            charts.append(os.path.basename(png1))
        if cmpsum:
            f = os.path.join(td, "tp.dat")
            with open(f, "w") as fh:
                for c in ["routing", "xdppass", "svclb", "iptables", "nftables"]:
                    fh.write(f"{c}")
                    for n in sorted(cmpsum):
                        for k in ("udp_established_pps", "udp_new_flow_pps"):
                            s = cmpsum[n][c][k]
                            fh.write(f" {s['median'] / 1000 if s else 0}")
                    fh.write("\n")
            cols = []
            ci = 2
            for n in sorted(cmpsum):
                for k in ("established", "new flow"):
                    cols.append(f"'{f}' using {ci}:xtic(1) title '{n} svc, {k}'")
                    ci += 1
            png2 = a.out + "-throughput.png"
            script = (f"set terminal pngcairo size 1100,600 noenhanced\nset output '{png2}'\nset style data histograms\n"
                      "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                      "set ylabel 'forwarded kpps (UDP 64 B, median)'\nset key outside right\nset grid y\n"
                      f"plot {', '.join(cols)}\n")
            if subprocess.run([gp], input=script.encode(), capture_output=True).returncode == 0:
                charts.append(os.path.basename(png2))

# ---- markdown ----------------------------------------------------------------
L = []
L.append(f"# svclb benchmark report ({a.mode})\n")
L.append(f"- kernel {pp['kernel']}, CPU {pp['cpu']} x {pp['cpus']}, host {pp['host']}")
c = pp["config"]
L.append(f"- per-packet: BPF_PROG_TEST_RUN, kernel `duration`, repeat {c['repeat']} "
         f"(new-flow rows {c['new_flow_repeat']}), {c['reps']} rounds, {c['frame_bytes']} B TCP frames, "
         f"conntrack {c['ct_entries']} entries (prefilled: inserts happen in a full LRU); services written by "
         f"{c['service_writes']}")
L.append("- every figure: median (min–max) over the rounds; ratios are per round (measured side by side)\n")
L.append("## Targets\n")
L.append("| target | measured | goal | met |\n|---|---|---|---|")
for t in T:
    v = t["value"]
    name = t["target"]
    unit = ("x" if "/" in name else " %" if "growth" in name else " s" if name.endswith(", s")
            else " ms" if name.endswith(", ms") else " ns")
    digits = 2 if unit in ("x", " s") else 1
    L.append(f"| {t['target']} | {fmt(v, unit, digits)} | {t['goal']} | {'yes' if t['met'] else '**no**'} |")
L.append("")
L.append("## Per-packet cost, ns (median (min–max); net = minus the re-run wrapper in the same mode)\n")
L.append("Methods: `pingpong` = the unmodified program run directly, a second CT entry translates the "
         "packet back each iteration; `wrap` = bench/bpf/wrap.bpf.c restores the headers (and for new flows "
         "sets a unique source) then tail-calls the program; `direct` = no wrapper.\n")
hdr = "| path | keys | method | " + " | ".join(f"N={n}" for n in ns) + " |"
L.append(hdr)
L.append("|" + "---|" * (3 + len(ns)))
seen = []
for r in pp["results"]:
    k = (r["id"], r["keys"], r["method"])
    if k not in seen:
        seen.append(k)
for rid, keys, method in seen:
    cells = []
    for n in ns:
        r = row(n, rid, keys, method)
        if not r:
            cells.append("–")
            continue
        cell = fmt(r["ns"])
        if "net_ns" in r:
            cell += f"; net {r['net_ns']['median']:.0f}"
        if not r["path_ok"]:
            cell += " PATH ERROR"
        cells.append(cell)
    L.append(f"| {rid} | {keys} | {method} | " + " | ".join(cells) + " |")
L.append("")
ld = pp.get("load", [])
if ld:
    L.append("Writing the services (planSync + Syncer::apply, one map write per op): " +
             ", ".join(f"N={x['n']}: {x['syncer_seconds']:.2f} s" for x in ld) + "\n")
if pp.get("not_implemented"):
    L.append("Not measured yet: " + "; ".join(pp["not_implemented"]) + "\n")

if cmpsum:
    L.append("## Side by side through a node (client ns -> node ns -> backend ns)\n")
    L.append(f"{cmp['reps']} interleaved rounds; {cmp['endpoints']} endpoints per service; the tested service is the "
             "last one installed and has endpoints of its own (the others share another 10). UDP: 64 B, 2 sender threads (one per core; " +
             ("XDP live frames" if cmp.get("gen_mode") == "live" else "AF_PACKET") + "), sink = tc drop on the "
             "backend veth. node ns/pkt = 1e9/forwarded pps - 1e9/generator-alone pps (same round). TCP: 2 clients "
             "x 64 connects in flight against an accept-and-close server; first packet = connect() time at 1 in "
             "flight (SYN -> SYN-ACK through the node, p50)." +
             (f" Conntrack capacity: {cmp['ct_flows']} flows for every dataplane (netfilter's nf_conntrack_max; "
              "svclb --max-conntrack twice that: 2 entries per NodePort or source-NATed flow, 1 per ClusterIP flow)." if cmp.get("ct_flows") else "") + "\n")
    for n in sorted(cmpsum):
        d = cmpsum[n]
        L.append(f"### {n} services\n")
        L.append("| dataplane | UDP established, kpps | UDP new flow/pkt, kpps | node ns/pkt est. | node ns/pkt new flow | TCP conn/s | first packet µs |")
        L.append("|---|---|---|---|---|---|---|")
        for cfg in ["gen", "routing", "xdppass", "svclb", "iptables", "nftables"]:
            e = d.get(cfg)
            if not e:
                continue
            k = lambda s: {kk: (vv / 1000 if kk != "n" else vv) for kk, vv in s.items()} if s else None
            L.append(f"| {cfg} | {fmt(k(e['udp_established_pps']))} | {fmt(k(e['udp_new_flow_pps']))} | "
                     f"{fmt(e.get('node_ns_per_pkt_established'))} | {fmt(e.get('node_ns_per_pkt_new_flow'))} | "
                     f"{fmt(e.get('tcp_cps'))} | {fmt(e.get('first_packet_connect_us_p50'), '', 1)} |")
        lo = d.get("load_s")
        if lo:
            L.append(f"\nLoad {n} services x 10 endpoints into an empty dataplane (n={lo['svclb_s']['n']}): "
                     f"svcctl apply {fmt(lo['svclb_s'], ' s', 2)}, "
                     f"iptables-legacy-restore {fmt(lo['iptables_s'], ' s', 2)}, nft -f {fmt(lo['nftables_s'], ' s', 2)}"
                     f"{'' if lo.get('nft_ok', 1) else ' (nft FAILED/timed out)'}.")
        if d.get("ep_change_map_s"):
            s = d["ep_change_map_s"]
            L.append(f"One endpoint change (svcctl apply of one Endpoints) -> visible in the pinned backends map: "
                     f"{s['median'] * 1000:.1f} ms ({s['min'] * 1000:.1f}–{s['max'] * 1000:.1f}, n={s['n']}).\n")
for ch in charts:
    L.append(f"![{ch}]({ch})\n")

with open(a.out + ".md", "w") as f:
    f.write("\n".join(L) + "\n")
with open(a.out + ".json", "w") as f:
    json.dump({"perpacket": pp, "compare": cmp, "summary": summary, "compare_summary": cmpsum,
               "charts": charts}, f, indent=1)
print("\n".join(L[:40]))
