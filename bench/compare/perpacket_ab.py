#!/usr/bin/env python3
"""Prints perpacket_ab.sh's table: per (N, row, keys) the median over rounds
of each build's net ns, B/A, the per-round B/A (round r of B over round r
of A, run one after the other: median and min-max, which shows how much of
a difference the machine's noise could make), and each build's ratio to its
own bare single-insert reference (ref.new_flow, same N and keys)."""
import glob
import json
import statistics
import sys


def rounds(out, side):
    """The side's run files in round order (A.0, A.1, ... A.10)."""
    files = glob.glob(f"{out}/{side}.*.json")
    return sorted(files, key=lambda f: int(f.rsplit(".", 2)[-2]))


def per_round(out, side):
    rows = {}  # (n, id, keys) -> [ns per round]
    for f in rounds(out, side):
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
    return rows


def load(rows):
    return {k: statistics.median(v) for k, v in rows.items()}, \
        max((len(v) for v in rows.values()), default=0)


def paired(pa, pb, key):
    """Median, min and max over rounds of B's ns over A's in the same round."""
    ra = pa.get(key) or []
    rb = pb.get(key) or []
    q = [y / x for x, y in zip(ra, rb) if x > 0]
    return (statistics.median(q), min(q), max(q)) if q else None


def main():
    out, a_bin, b_bin = sys.argv[1], sys.argv[2], sys.argv[3]
    pa, pb = per_round(out, "A"), per_round(out, "B")
    a, ra = load(pa)
    b, rb = load(pb)
    print(f"A = {a_bin}\nB = {b_bin}\nmedian of {min(ra, rb)} alternated rounds, net ns "
          f"(wrapper floor subtracted); xref = / ref.new_flow of the same build, N, keys")
    print(f"{'N':>6} {'row':<30} {'keys':<6} {'A ns':>7} {'B ns':>7} {'B/A':>6} "
          f"{'paired B/A (min-max)':>21} {'A xref':>7} {'B xref':>7}")
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
        pr = paired(pa, pb, key)
        pcol = f"{pr[0]:5.2f} ({pr[1]:.2f}-{pr[2]:.2f})" if pr else "-"
        print(f"{n:>6} {rid:<30} {keys:<6} {fmt(av)} {fmt(bv)} {ratio} {pcol:>21} "
              f"{xref(a, av)} {xref(b, bv)}")


if __name__ == "__main__":
    main()
