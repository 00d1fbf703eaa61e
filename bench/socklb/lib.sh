# shellcheck shell=bash
# What bench/socklb/conn.sh and floor.sh share (sourced after
# tests/testlib/topo.sh; uses its PY).

# socklb_merge OUT...: the svclb-tcpbench client reports (files) of one
# round as one JSON object: conn/s summed, the worst p50/p99, errors summed.
socklb_merge() {
    local outs=() f
    for f in "$@"; do outs+=("$(cat "$f")"); done
    "$PY" -c 'import json,sys; r=[json.loads(x) for x in sys.argv[1:] if x.strip()]
print(json.dumps({"cps": sum(x["cps"] for x in r), "p50_us": max([x["connect_us_p50"] for x in r] or [0]),
"p99_us": max([x["connect_us_p99"] for x in r] or [0]), "errors": sum(x["errors"] for x in r)}))' "${outs[@]}"
}

# socklb_prog_stats: {name: [run_cnt, run_time_ns]} of every svclb_* and
# bench_ref (ref_*) program (kernel.bpf_stats_enabled).
socklb_prog_stats() {
    bpftool prog show -j | jq -c '[.[] | select(.name // "" | test("^(svclb_|ref_)")) |
        {key: .name, value: [(.run_cnt // 0), (.run_time_ns // 0)]}] | group_by(.key) |
        map({key: .[0].key, value: [(map(.value[0]) | add), (map(.value[1]) | add)]}) | from_entries'
}

# socklb_with_progs ROUND_JSON BEFORE: the round's JSON plus "progs", each
# program's runs and ns since BEFORE (a socklb_prog_stats taken before it).
socklb_with_progs() {
    jq -c --argjson a "$2" --argjson b "$(socklb_prog_stats)" \
        '. + {progs: ($b | with_entries(.value = [(.value[0] - ($a[.key][0] // 0)), (.value[1] - ($a[.key][1] // 0))]) | with_entries(select(.value[0] > 0)))}' <<<"$1"
}
