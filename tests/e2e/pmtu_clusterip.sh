#!/usr/bin/env bash
# PMTU discovery through a ClusterIP (issue 17): the node's veth toward the
# backend has MTU 1400 while the pods stay at 1500, so the client's full-size
# segments (DF set) make the node send "fragmentation needed" quoting the
# DNATed packet (client -> backend). svclb's pod egress program
# (svclb_tc_pod_out, bpf/lib/icmp.h) translates the quote back to
# client -> VIP, so the client's TCP lowers its path MTU and a 4 MB upload
# completes with the right checksum. Without the translation the client's
# stack finds no socket for the quote and the transfer stalls (bounded).
# Pod flows take the tc path here (--socket-lb node: a pod socket balanced
# at connect() would talk to the backend directly).
set -u
export SVCLB_SOCKET_LB=node
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup pmtucip

PVIP=10.96.0.20
PPORT=9000

# Backend: reads the whole stream, answers its sha256 (hex) and closes.
SINK_PY='
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
while True:
    c, _ = s.accept(); h = hashlib.sha256()
    while True:
        b = c.recv(65536)
        if not b: break
        h.update(b)
    c.sendall(h.hexdigest().encode()); c.close()
'
# Client: sends FILE to ADDR:PORT, half-closes, prints the answer. Every
# socket operation times out after 20 s (a stall is a failure, not a hang).
SEND_PY='
import socket, sys
data = open(sys.argv[3], "rb").read()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(data); s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(4096)
    if not b: break
    out += b
print(out.decode())
'

cat >"$TOPO_TMP/pmtu.yaml" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: pmtu
  namespace: default
spec:
  type: ClusterIP
  clusterIP: $PVIP
  ports:
  - name: sink
    port: $PPORT
    protocol: TCP
    targetPort: $PPORT
---
apiVersion: v1
kind: Endpoints
metadata:
  name: pmtu
  namespace: default
subsets:
- addresses:
  - ip: ${POD_IP[be1]}
  ports:
  - name: sink
    port: $PPORT
    protocol: TCP
YAML

setup_pmtu() {
    bg_ns "$(pod_ns be1)" "$PY" -c "$SINK_PY" "${POD_IP[be1]}" "$PPORT" >"$TOPO_TMP/sink.log" 2>&1
    e2e_apply "$TOPO_TMP/pmtu.yaml" || return 1
    head -c 4000000 /dev/urandom >"$TOPO_TMP/upload.bin"
    WANT=$(sha256sum "$TOPO_TMP/upload.bin" | cut -d' ' -f1)
    retry 50 0.2 eval "in_pod_t 3 client $PY -c \"\$SEND_PY\" ${POD_IP[be1]} $PPORT /dev/null >/dev/null" \
        || { log "sink on be1 did not come up"; return 1; }
    # The reduced hop: node -> be1 (the pods' own MTU stays 1500).
    in_node ip link set lxcbe1 mtu 1400
    # Test hook: SVCLB_PMTU_NO_EGRESS=1 removes svclb's egress program from
    # the client's veth, to check that the upload then FAILS (stalls).
    if ((${SVCLB_PMTU_NO_EGRESS:-0})); then
        log "SVCLB_PMTU_NO_EGRESS=1: detaching the egress program from lxcclient"
        in_node tc filter del dev lxcclient egress 2>/dev/null  # legacy filters
        rm -f "$BPFFS"/links/tcx/*-lxcclient-egress              # a tcx link
    fi
}

test_upload() {
    local got
    got=$(in_pod_t 60 client "$PY" -c "$SEND_PY" "$PVIP" "$PPORT" "$TOPO_TMP/upload.bin" 2>"$TOPO_TMP/send.err")
    assert_eq "$WANT" "$got" "sha256 of a 4 MB upload through $PVIP:$PPORT with MTU 1400 toward the backend ($(tail -1 "$TOPO_TMP/send.err"))" || return
    # The client learned the smaller path MTU for the VIP (from the
    # translated error: the kernel caches it on the route to the quote's
    # destination).
    local mtu
    mtu=$(in_pod client ip route get "$PVIP" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
    assert_eq 1400 "${mtu:-none}" "client's cached path MTU toward $PVIP"
}

setup_pmtu || fatal_setup "pmtu service"
run_test "pmtu: 4 MB upload through a ClusterIP over a 1400-byte hop completes" test_upload
finish
