#!/usr/bin/env bash
# svcctl monitor: drop and reject events streamed by svclbd while they happen
# (docs/api.md "monitor"), produced by real clients in pods and on the node:
#  - a Service without endpoints (lonely): a pod's TCP connect and connected
#    UDP socket are refused -> REJECT no_backend lines naming lonely;
#  - internalTrafficPolicy Local with no endpoint on this node (local): a
#    pod's SYN is dropped by its tc program, the node's connect() fails at
#    the socket hook -> DROP no_local_endpoint lines naming local;
#  - three monitors at once (text, -o json, --type drop -o json), while the
#    other requests keep answering; Ctrl-C ends a monitor with status 0.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
DAEMON_FLAGS_EXTRA=(--node-name node-a)
e2e_setup monitor

LONELY_VIP=10.96.0.41 LOCAL_VIP=10.96.0.42
CLIENT_IP=${POD_IP[client]}

setup_services() {
    local f=$TOPO_TMP/monitor-services.yaml
    cat >"$f" <<Y
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: default}
spec:
  clusterIP: $LONELY_VIP
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec:
  clusterIP: $LOCAL_VIP
  internalTrafficPolicy: Local
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: local-elsewhere
  namespace: default
  labels: {kubernetes.io/service-name: local}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
endpoints:
- addresses: [${POD_IP[be1]}]
  conditions: {ready: true}
  nodeName: node-b
Y
    e2e_apply "$f"
}
setup_services || fatal_setup "apply the lonely and local Services"

MON_TEXT=$TOPO_TMP/monitor.txt MON_JSON=$TOPO_TMP/monitor.json MON_DROP=$TOPO_TMP/monitor-drop.json
# start_monitor OUT ERR ARGS...: svcctl monitor in the background, bounded.
start_monitor() {
    local out=$1 err=$2; shift 2
    timeout 60 "$SVCLB_BIN/svcctl" --socket "$SOCK" monitor "$@" >"$out" 2>"$err" &
    MON_PID=$!; TOPO_PIDS+=("$MON_PID")
}

test_monitors_attach() {
    start_monitor "$MON_TEXT" "$MON_TEXT.err"; TEXT_PID=$MON_PID
    start_monitor "$MON_JSON" "$MON_JSON.err" -o json; JSON_PID=$MON_PID
    start_monitor "$MON_DROP" "$MON_DROP.err" --type drop -o json; DROP_PID=$MON_PID
    local f
    for f in "$MON_TEXT.err" "$MON_JSON.err" "$MON_DROP.err"; do
        retry 50 0.1 grep -qs Listening "$f"
        assert_contains "$(cat "$f")" "Listening for" "svcctl monitor started ($f)"
    done
    # The API is not held up by the three open streams.
    # (A held-up API would hang: svcctl() bounds it at 20 s; the time is not
    # asserted.)
    local out
    out=$(svcctl get svc 2>&1)
    assert_contains "$out" "lonely" "svcctl get svc while three monitors run"
    assert_ok "svcctl status while monitors run" svcctl status
}

UDP_CONNECTED_PY='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"q")
try:
    s.recv(100)
    print("REPLY")
except ConnectionRefusedError:
    print("REFUSED")
except socket.timeout:
    print("TIMEOUT")
'

test_produce_events() {
    local out
    in_pod_t 10 client curl -s -o /dev/null --connect-timeout 2 -m 4 "http://$LONELY_VIP/"
    assert_eq 7 "$?" "pod -> lonely:80 refused (curl 7)"
    out=$(in_pod_t 10 client "$PY" -c "$UDP_CONNECTED_PY" "$LONELY_VIP" 53 2>&1)
    assert_eq REFUSED "$out" "pod -> lonely:53/UDP (connected socket) refused"
    in_pod_t 10 client curl -s -o /dev/null --connect-timeout 1 -m 2 "http://$LOCAL_VIP/"
    assert_eq 28 "$?" "pod -> local:80 dropped (curl 28: timeout)"
    in_node_cg_t 10 curl -s -o /dev/null --connect-timeout 1 -m 2 "http://$LOCAL_VIP/"
    assert_ne 0 "$?" "node -> local:80 refused at connect()"
    # Events reach the clients within the monitor thread's 200 ms poll.
    retry 30 0.2 grep -qs 'DROP.*no_local_endpoint.*if connect' "$MON_TEXT"
}

test_text_lines() {
    local t
    t=$(cat "$MON_TEXT")
    log "svcctl monitor printed:"; log "$t"
    # The pod's TCP connect: the tc path names the pod's veth; balanced at
    # the socket (--socket-lb=all) the connect hook refuses it before a
    # packet (or a source port) exists.
    if [[ $SVCLB_SOCKET_LB == all ]]; then
        assert_match "$t" "REJECT +no_backend +TCP 0\.0\.0\.0:0 -> $LONELY_VIP:80  svc default/lonely:http  if connect" \
            "REJECT line for the pod's refused connect() (socket hook)"
    else
        assert_match "$t" "REJECT +no_backend +TCP ${CLIENT_IP//./\\.}:[0-9]+ -> $LONELY_VIP:80  svc default/lonely:http  if lxcclient" \
            "REJECT line for the pod's refused SYN (tc)"
    fi
    assert_match "$t" "[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} REJECT +no_backend +UDP ${CLIENT_IP//./\\.}:[0-9]+ -> $LONELY_VIP:53  svc default/lonely:dns  if lxcclient" \
        "REJECT line for the pod's UDP datagram (ICMP sent back)"
    assert_match "$t" "DROP +no_local_endpoint +TCP ${CLIENT_IP//./\\.}:[0-9]+ -> $LOCAL_VIP:80  svc default/local:http  if lxcclient" \
        "DROP line for the pod's SYN to an iTP Local Service without a local endpoint"
    assert_match "$t" "DROP +no_local_endpoint +TCP [0-9.]+:[0-9]+ -> $LOCAL_VIP:80  svc default/local:http  if connect" \
        "DROP line for the node's connect() (EPERM at the socket hook)"
    assert_not_contains "$t" "svc default/web" "no event for the Service that works"
}

test_json_lines() {
    local n
    n=$(jq -c --arg ip "$CLIENT_IP:" 'select(.type=="reject" and .reason=="no_backend" and .protocol=="UDP"
            and .service.namespace=="default" and .service.name=="lonely" and .service.port=="dns"
            and (.src|startswith($ip)) and .dst=="'"$LONELY_VIP"':53" and .interface=="lxcclient"
            and .hook=="tc-pod" and (.svcId > 0) and (.timestampNs > 0))' "$MON_JSON" | wc -l)
    assert_ge "$n" 1 "-o json: the UDP reject as an object ($(head -c 600 "$MON_JSON"))"
    n=$(jq -c 'select(.type=="drop" and .reason=="no_local_endpoint" and .service.name=="local")' "$MON_JSON" | wc -l)
    assert_ge "$n" 2 "-o json: the pod's and the node's no_local_endpoint drops"
    assert_eq 0 "$(jq -c 'select(.type=="reject")' "$MON_DROP" | wc -l)" "--type drop: no reject events"
    n=$(jq -c 'select(.type=="drop" and .service.name=="local")' "$MON_DROP" | wc -l)
    assert_ge "$n" 2 "--type drop: the drops"
}

test_ctrl_c() {
    local rc
    kill -INT "$TEXT_PID"
    wait "$TEXT_PID"; rc=$?
    assert_eq 0 "$rc" "svcctl monitor exits 0 on Ctrl-C"
    kill -TERM "$JSON_PID" "$DROP_PID"
    wait "$JSON_PID"; assert_eq 0 "$?" "svcctl monitor -o json ends cleanly on SIGTERM"
    wait "$DROP_PID"
    # With every client gone the daemon still serves, and a new monitor
    # starts from an empty stream.
    assert_ok "svcctl get svc after the monitors left" svcctl get svc
    start_monitor "$TOPO_TMP/m2.txt" "$TOPO_TMP/m2.err" --type reject
    retry 50 0.1 grep -qs Listening "$TOPO_TMP/m2.err"
    in_pod_t 10 client "$PY" -c "$UDP_CONNECTED_PY" "$LONELY_VIP" 53 >/dev/null 2>&1
    retry 30 0.2 grep -qs 'REJECT' "$TOPO_TMP/m2.txt"
    assert_match "$(cat "$TOPO_TMP/m2.txt")" "REJECT +no_backend +UDP .* svc default/lonely:dns" "a second session sees new events"
    assert_not_contains "$(cat "$TOPO_TMP/m2.txt")" "DROP" "--type reject: no drops"
    kill -INT "$MON_PID"; wait "$MON_PID"
}

test_bad_request() {
    local out
    out=$("$SVCLB_BIN/svcctl" --socket "$SOCK" monitor --type bogus 2>&1); rc=$?
    assert_eq 1 "$rc" "svcctl monitor --type bogus fails"
    assert_contains "$out" 'unknown event type "bogus"' "its error"
    out=$(printf '{"op":"monitor","type":"nope"}\n' | timeout 5 socat - "UNIX-CONNECT:$SOCK")
    assert_contains "$out" '"ok":false' "the daemon refuses an unknown type"
}

run_test "monitor: three clients attach, other requests still answer" test_monitors_attach
run_test "monitor: rejects and drops produced by a pod and the node" test_produce_events
run_test "monitor: the text lines (reason, tuple, Service, interface)" test_text_lines
run_test "monitor: -o json objects and --type drop" test_json_lines
run_test "monitor: Ctrl-C ends it cleanly; a new session works" test_ctrl_c
run_test "monitor: bad requests get clear errors" test_bad_request
finish
