# shellcheck shell=bash
# Shared setup and svclb-specific queries for the e2e tests. Sources topo.sh
# and assert.sh. jq parses svcctl's JSON (docs/api.md).

SVC_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=topo.sh
source "$SVC_LIB_DIR/topo.sh"
# shellcheck source=assert.sh
source "$SVC_LIB_DIR/assert.sh"

# Test hook: SVCLB_E2E_NO_DAEMON=1 skips starting svclbd, to check that each
# test FAILS when svclb is not doing its job.
SVCLB_E2E_NO_DAEMON=${SVCLB_E2E_NO_DAEMON:-0}

# e2e_setup NAME: unique prefix, topology, daemon, web service + endpoints.
e2e_setup() {
    local name=$1
    for t in jq curl socat nsenter "$PY"; do
        command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; fatal_setup "missing $t"; }
    done
    topo_init "e2e-$name-$$"
    topo_up || fatal_setup "topology"
    e2e_daemon_up || fatal_setup "svclbd did not become ready"
    e2e_apply "$SVCLB_EXAMPLES/web-service.yaml" || fatal_setup "apply web-service.yaml"
    e2e_apply "$SVCLB_EXAMPLES/web-endpoints.yaml" || fatal_setup "apply web-endpoints.yaml"
}

# e2e_setup_pods NAME POD=IP...: topology with these extra backend pods (made
# and serving before svclbd starts), then the daemon; no Service applied.
e2e_setup_pods() {
    local name=$1 t p pods=(); shift
    for t in jq curl socat nsenter "$PY"; do
        command -v "$t" >/dev/null || fatal_setup "missing $t"
    done
    for p in "$@"; do POD_IP[${p%%=*}]=${p#*=}; pods+=("${p%%=*}"); done
    topo_init "e2e-$name-$$"
    topo_up || fatal_setup "topology"
    for p in "${pods[@]}"; do
        topo_add_pod "$p" "${POD_IP[$p]}"
        start_backend "$p"
    done
    for p in "${pods[@]}"; do
        retry 50 0.2 eval "[[ \$(in_pod_t 3 client curl -s -m 1 http://${POD_IP[$p]}:$HTTP_PORT/) == $p ]]" \
            || fatal_setup "HTTP server in $p did not come up"
    done
    e2e_daemon_up || fatal_setup "svclbd did not become ready"
}

e2e_daemon_up() {
    if ((SVCLB_E2E_NO_DAEMON)); then
        log "SVCLB_E2E_NO_DAEMON=1: not starting svclbd"; return 0
    fi
    daemon_start && daemon_wait_ready
}

e2e_apply() {
    local out
    out=$(svcctl apply -f "$1" 2>&1) || { log "svcctl apply -f $1 failed: $out"; ((SVCLB_E2E_NO_DAEMON)); return; }
    log "$out"
}

stats_json() { svcctl stats -o json 2>/dev/null || echo '{}'; }

# svc_stat JSON PORTNAME FIELD: a service-port counter (empty if absent).
svc_stat() {
    jq -r --arg p "$2" --arg f "$3" \
        '[.services[]? | select(.namespace=="default" and .name=="web" and .port==$p)][0][$f] // empty' <<<"$1"
}
# be_stat JSON PORTNAME BACKEND-IP FIELD
be_stat() {
    jq -r --arg p "$2" --arg ip "$3" --arg f "$4" \
        '[.services[]? | select(.namespace=="default" and .name=="web" and .port==$p)][0].backends[]?
         | select(.ip==$ip) | .[$f] // empty' <<<"$1"
}

# endpoints_yaml NAME IP...: a v1 Endpoints manifest for "web" with these IPs.
endpoints_yaml() {
    local f=$TOPO_TMP/$1.yaml ip; shift
    {
        printf 'apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\n  namespace: default\nsubsets:\n- addresses:\n'
        for ip in "$@"; do printf '  - ip: %s\n' "$ip"; done
        printf '  ports:\n  - name: http\n    port: 8080\n    protocol: TCP\n  - name: dns\n    port: 5353\n    protocol: UDP\n'
    } >"$f"
    echo "$f"
}

# check_both_answer RESULTS N MIN: N lines, none failed, be1 and be2 each >= MIN.
check_both_answer() {
    local out=$1 n=$2 min=$3 what=$4
    local c1 c2 bad
    c1=$(count_lines "$out" be1); c2=$(count_lines "$out" be2)
    bad=$((n - c1 - c2))
    assert_eq 0 "$bad" "$what: requests that failed or got no backend name (be1=$c1 be2=$c2 of $n)"
    assert_ge "$c1" "$min" "$what: answers from be1"
    assert_ge "$c2" "$min" "$what: answers from be2"
}

# svc_delta BEFORE AFTER PORTNAME FIELD / be_delta BEFORE AFTER PORTNAME IP FIELD:
# AFTER - BEFORE, or "missing(...)" when the counter is absent.
_delta() {
    [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] && { echo $(($2 - $1)); return; }
    echo "missing(before='$1',after='$2')"
}
svc_delta() { _delta "$(svc_stat "$1" "$3" "$4")" "$(svc_stat "$2" "$3" "$4")"; }
be_delta()  { _delta "$(be_stat "$1" "$3" "$4" "$5")" "$(be_stat "$2" "$3" "$4" "$5")"; }

# metric_sample TEXT NAME LABEL=VALUE...: sum of the samples of NAME carrying
# all the given labels ("none" if there is no such sample).
metric_sample() {
    "$PY" - "$@" <<'PY'
import re, sys
text, name, want = sys.argv[1], sys.argv[2], [w.split("=", 1) for w in sys.argv[3:]]
total, seen = 0.0, False
for line in text.splitlines():
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
    if not m or m.group(1) != name: continue
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want):
        total += float(m.group(3)); seen = True
print("%d" % total if seen else "none")
PY
}

# The node's connected UDP socket (tests/e2e/socket_lb.sh, dual_stack.sh):
# DST PORT FLAG DONE. Asks once ("first NAME PEER", PEER as getpeername
# shows it), once more to print where the answer came from ("from ADDR"),
# touches FLAG, waits for DONE (the caller removes the backend meanwhile),
# asks again on the same socket ("after NAME" or the exception's name),
# then on a new one ("reconnected NAME"). IPv6 (or ::ffff:a.b.c.d) when DST
# has a colon.
NODE_UDP_CONN_PY='
import os, socket, sys, time
dst, port, flag, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def conn():
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((dst, port))
    return s
def ask(s):
    try:
        s.send(b"q")
        return s.recv(100).decode().strip()
    except Exception as e:
        return type(e).__name__
s = conn()
peer = s.getpeername()
print("first", ask(s), "%s:%d" % (peer[0], peer[1]), flush=True)
s.send(b"q")
print("from", s.recvfrom(100)[1][0], flush=True)
open(flag, "w").close()
t = time.time()
while not os.path.exists(done) and time.time() - t < 20:
    time.sleep(0.05)
print("after", ask(s), flush=True)
print("reconnected", ask(conn()), flush=True)
'
