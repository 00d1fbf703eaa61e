#!/usr/bin/env python3
"""Prints perpacket_ab.sh's table: per (N, row, keys) the median over rounds
of each build's net ns, B/A, and each build's ratio to its own bare
single-insert reference (ref.new_flow, same N and keys)."""
import glob
import json
import statistics
import sys


def load(out, side):
    rows = {}  # (n, id, keys) -> [ns per round]
    for f in sorted(glob.glob(f"{out}/{side}.*.json")):
        with open(f) as fh:
            j = json.load(fh)
        for r in j["results"]:
            if r["id"].startswith("floor."):
                continue
            if not r.get("path_ok", True):
                print(f"{side}: {r['id']} N={r['n']} PATH ERROR: {r.get('error')}",
                      file=sys.stderr)
            ns = r["net_ns"]["median"] if "net_ns" in r else r["ns"]["median"]
            rows.setdefault((r["n"], r["id"], r["keys"]), []).append(ns)
    return {k: statistics.median(v) for k, v in rows.items()}, \
        max((len(v) for v in rows.values()), default=0)


def main():
    out, a_bin, b_bin = sys.argv[1], sys.argv[2], sys.argv[3]
    a, ra = load(out, "A")
    b, rb = load(out, "B")
    print(f"A = {a_bin}\nB = {b_bin}\nmedian of {min(ra, rb)} alternated rounds, net ns "
          f"(wrapper floor subtracted); xref = / ref.new_flow of the same build, N, keys")
    print(f"{'N':>6} {'row':<30} {'keys':<6} {'A ns':>7} {'B ns':>7} {'B/A':>6} "
          f"{'A xref':>7} {'B xref':>7}")
    for key in sorted(set(a) | set(b), key=lambda k: (k[0], k[1].split(".")[0], k[1], k[2])):
        n, rid, keys = key
        ref = (n, "ref.new_flow", keys)
        av, bv = a.get(key), b.get(key)

        def fmt(x):
            return f"{x:7.0f}" if x is not None else f"{'-':>7}"

        def xref(side, v):
            r = side.get(ref)
            return f"{v / r:7.2f}" if v is not None and r else f"{'-':>7}"

        ratio = f"{bv / av:6.2f}" if av and bv is not None else f"{'-':>6}"
        print(f"{n:>6} {rid:<30} {keys:<6} {fmt(av)} {fmt(bv)} {ratio} "
              f"{xref(a, av)} {xref(b, bv)}")


if __name__ == "__main__":
    main()
