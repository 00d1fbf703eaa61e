#!/usr/bin/env bash
# Issue 3's control plane through the real daemon and CLI: NodePort
# validation and allocation in kubectl's words, MetalLB pools handing out
# LoadBalancer IPs, <pending> when a pool is exhausted and reuse when an
# address frees up; and what the daemon writes into the maps for them:
# a svc_v1 master per node address and nodePort (following the node's
# addresses as they change), per LoadBalancer IP, loadBalancerSourceRanges in
# src_ranges_v1, all gone on delete and untouched by a restart.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

e2e_setup npalloc

manifest() {  # NAME TEXT -> file
    printf '%s\n' "$2" >"$TOPO_TMP/$1.yaml"
    echo "$TOPO_TMP/$1.yaml"
}

np_svc() {  # NAME NODEPORT
    manifest "$1" "apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  type: NodePort
  ports:
  - port: 80
    targetPort: 8080
    nodePort: $2"
}

lb_svc() {  # NAME
    manifest "$1" "apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  type: LoadBalancer
  ports:
  - port: 80
    targetPort: 8080"
}

ext_ip() { svcctl get svc "$1" -o json | jq -r '.status.loadBalancer.ingress[0].ip // "<pending>"'; }

# bpftool prints raw key/value bytes as "0x0a" strings.
JQ_HEX='def hex: ltrimstr("0x") | explode | reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));'

# svc_masters: "IP:PORT/PROTO FLAGS" for every master of svc_v1. Key bytes:
# vip (0-3) and port (4-5) in network order, proto (6), slot (8-9, host
# order); value byte 13 is svc_value.flags.
svc_masters() {
    bpftool map dump pinned "$BPFFS/svc_v1" -j | jq -r "$JQ_HEX"'
        .[] | (.key | map(hex)) as $k | (.value | map(hex)) as $v
        | select($k[8] == 0 and $k[9] == 0)
        | "\($k[0]).\($k[1]).\($k[2]).\($k[3]):\($k[4] * 256 + $k[5])/\($k[6]) \($v[13])"' | sort
}

# src_ranges: "PREFIX ADDR/LEN" per src_ranges_v1 entry (prefixlen counts
# the 32 bits of svc_id).
src_ranges() {
    bpftool map dump pinned "$BPFFS/src_ranges_v1" -j | jq -r "$JQ_HEX"'
        .[] | (.key | map(hex)) as $k
        | "\($k[8]).\($k[9]).\($k[10]).\($k[11])/\($k[0] + $k[1] * 256 - 32)"' | sort
}

has_master() { svc_masters | grep -q "^$1 "; }  # "IP:PORT/PROTO"

test_nodeport_validation() {
    local out before
    before=$(svcctl get svc -o json)
    out=$(svcctl apply -f "$(np_svc huazi 33333)" 2>&1) && _fail "nodePort 33333 accepted"
    assert_eq 'The Service "huazi" is invalid: spec.ports[0].nodePort: Invalid value: 33333: provided port is not in the valid range. The range of valid ports is 30000-32767' \
        "$out" "out-of-range nodePort: kubectl's message"
    assert_eq "$before" "$(svcctl get svc -o json)" "nothing changed"
    assert_ok "nodePort 30310 accepted" svcctl apply -f "$(np_svc np1 30310)"
    assert_contains "$(svcctl get svc np1)" "80:30310/TCP" "get svc shows PORT(S) 80:30310/TCP"
    out=$(svcctl apply -f "$(np_svc np2 30310)" 2>&1) && _fail "a clashing nodePort was accepted"
    assert_eq 'The Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30310: provided port is already allocated' \
        "$out" "clash: kubectl's message"
}

test_pool_assignment() {
    local pool
    pool=$(manifest pool "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: small
  namespace: metallb-system
spec:
  addresses:
  - 192.0.2.10-192.0.2.10
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: l2
  namespace: metallb-system
spec:
  ipAddressPools:
  - small")
    assert_contains "$(svcctl apply -f "$pool" 2>&1)" "ipaddresspool.metallb.io/small created" "pool applied"
    assert_contains "$(svcctl get ipaddresspool -n metallb-system 2>&1)" "192.0.2.10-192.0.2.10" "get ipaddresspool"
    assert_ok "LoadBalancer lb1 applied" svcctl apply -f "$(lb_svc lb1)"
    assert_eq 192.0.2.10 "$(ext_ip lb1)" "lb1 got the pool's address"
    assert_ok "LoadBalancer lb2 applied" svcctl apply -f "$(lb_svc lb2)"
    assert_eq "<pending>" "$(ext_ip lb2)" "lb2 is pending: the pool is exhausted"
    assert_contains "$(svcctl get svc lb2)" "<pending>" "get svc shows <pending>"
    assert_ok "lb1 deleted" svcctl delete svc lb1
    assert_eq 192.0.2.10 "$(ext_ip lb2)" "lb2 got the freed address"
}

test_nodeport_maps() {
    local flags
    assert_ok "NodePort np3 applied" svcctl apply -f "$(np_svc np3 30320)"
    assert_contains "$(svc_masters)" "$NODE_IP:30320/6 " "svc_v1 has a master for NODE_IP:nodePort"
    # SVC_F_EXTERNAL (0x02) and nothing else for an eTP=Cluster NodePort.
    flags=$(svc_masters | awk -v k="$NODE_IP:30320/6" '$1 == k { print $2 }')
    assert_eq 2 "$flags" "NodePort master flags"
    assert_contains "$(svc_masters)" "$(svcctl get svc np3 -o json | jq -r .spec.clusterIP):80/6 0" \
        "the ClusterIP master is there too, without flags"
    # A node address added later gets the NodePort; removed, loses it.
    in_node ip link add np-ext0 type veth peer name np-ext1
    in_node ip addr add 198.18.0.1/24 dev np-ext0
    retry 50 0.1 has_master "198.18.0.1:30320/6" || _fail "no master for a new node address"
    in_node ip addr del 198.18.0.1/24 dev np-ext0
    retry 50 0.1 eval '! has_master "198.18.0.1:30320/6"' || _fail "master stayed after the address went"
    in_node ip link del np-ext0
    # Metrics: the NodePort frontend shares the Service port's name and
    # backends with the ClusterIP one; its series must stay distinct.
    assert_ok "endpoints for np3 applied" svcctl apply -f "$(manifest np3-ep "apiVersion: v1
kind: Endpoints
metadata:
  name: np3
subsets:
- addresses:
  - ip: ${POD_IP[be1]}
  - ip: ${POD_IP[be2]}
  ports:
  - port: 8080")"
    local m lint
    m=$(metrics)
    lint=$(promtool check metrics <<<"$m" 2>&1)
    assert_eq 0 $? "promtool check metrics with a NodePort Service: $lint"
    # promtool does not catch a repeated series; compare name{labels} itself.
    assert_eq "" "$(grep -v '^#' <<<"$m" | sed 's/ [^ ]*$//' | sort | uniq -d)" "no duplicate series"
    assert_eq 4 "$(grep -c '^svclb_backend_flows_total{namespace="default",service="np3"' <<<"$m")" \
        "per-backend series: 2 backends x (ClusterIP + NodePort on NODE_IP)"
    assert_contains "$m" "vip=\"$NODE_IP:30320\"" "the NodePort frontend's series carry its address"
    assert_ok "np3 deleted" svcctl delete svc np3
    assert_not_contains "$(svc_masters)" "$NODE_IP:30320/6 " "the master is gone with the Service"
}

test_loadbalancer_maps() {
    local svc out
    svc=$(manifest lbsr "apiVersion: v1
kind: Service
metadata:
  name: lbsr
spec:
  type: LoadBalancer
  loadBalancerSourceRanges:
  - 198.51.100.77/24
  - 203.0.113.9/32
  ports:
  - port: 80
    targetPort: 8080")
    assert_ok "lb2 deleted (frees the pool address)" svcctl delete svc lb2
    assert_ok "LoadBalancer lbsr applied" svcctl apply -f "$svc"
    assert_eq 192.0.2.10 "$(ext_ip lbsr)" "lbsr got the pool's address"
    # SVC_F_EXTERNAL | SVC_F_SRC_RANGES = 0x12
    assert_contains "$(svc_masters)" "192.0.2.10:80/6 18" "master for the LoadBalancer IP, with source ranges"
    out=$(src_ranges)
    assert_contains "$out" "198.51.100.0/24" "source range, host bits cleared"
    assert_contains "$out" "203.0.113.9/32" "single-address source range"
    # A restart adopts masters, flags and ranges: nothing to write.
    daemon_stop
    daemon_start && daemon_wait_ready || return
    assert_contains "$(grep 'sync:' "$DAEMON_LOG" | tail -1)" "(0 map writes)" "restart writes nothing"
    assert_eq "$out" "$(src_ranges)" "ranges unchanged by the restart"
    assert_ok "lbsr deleted" svcctl delete svc lbsr
    assert_not_contains "$(svc_masters)" "192.0.2.10:80/6" "LoadBalancer master gone"
    assert_eq "" "$(src_ranges)" "source ranges gone"
}

# l2_arp: "IP IFINDEX MAC" per l2_arp_v1 entry.
l2_arp() {
    bpftool map dump pinned "$BPFFS/l2_arp_v1" -j | jq -r "$JQ_HEX"'
        .[] | (.key | map(hex)) as $k | .value[0:6] as $m
        | "\($k[0]).\($k[1]).\($k[2]).\($k[3]) \($k[4] + $k[5] * 256 + $k[6] * 65536) \($m | map(ltrimstr("0x")) | join(":"))"'
}

test_l2_announcements() {
    local lan=$TOPO_PREFIX-lan ifindex mac want cap
    # A client segment: node NIC np-l2 <-> eth0 in a namespace of its own
    # (removed by topo_cleanup with the pods).
    ip netns add "$lan" && TOPO_PODS+=("$lan")
    in_node ip link add np-l2 type veth peer name eth0 netns "$lan"
    in_node ip link set np-l2 up
    in_ns "$lan" ip link set eth0 up
    in_ns "$lan" ip addr add 192.0.2.1/24 dev eth0
    # (nsenter --net keeps the root namespace's /sys: ask netlink.)
    ifindex=$(in_node ip -j link show np-l2 | jq -r '.[0].ifindex')
    mac=$(in_node ip -j link show np-l2 | jq -r '.[0].address')
    [[ $ifindex =~ ^[0-9]+$ && $mac =~ ^[0-9a-f:]{17}$ ]] || { _fail "np-l2: ifindex '$ifindex' mac '$mac'"; return; }
    daemon_stop
    daemon_start --external-iface np-l2 && daemon_wait_ready || return
    cap=$TOPO_TMP/arp.txt
    bg_ns "$lan" tcpdump -i eth0 -n -l -e arp >"$cap" 2>/dev/null
    sleep 1
    assert_ok "LoadBalancer lb3 applied" svcctl apply -f "$(lb_svc lb3)"
    assert_eq 192.0.2.10 "$(ext_ip lb3)" "lb3 got the pool's address"
    want="192.0.2.10 $ifindex $mac"
    assert_eq "$want" "$(l2_arp)" "l2_arp_v1: {LB IP, np-l2} -> np-l2's MAC"
    # Sender = target = the LB IP, from np-l2's MAC to broadcast.
    retry 30 0.1 grep -Eq "^.* $mac > ff:ff:ff:ff:ff:ff, .*Request who-has 192\.0\.2\.10 .*tell 192\.0\.2\.10," "$cap" \
        || _fail "no gratuitous ARP for 192.0.2.10 on the segment: $(cat "$cap")"
    # A client on the segment resolves the LB IP to the node NIC.
    # (A datagram makes the kernel resolve it; the reply is svclb's XDP.)
    in_ns "$lan" "$PY" -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.10", 9))'
    retry 20 0.1 eval '[[ $(in_ns "$lan" ip neigh show 192.0.2.10) == *"lladdr $mac "* ]]' \
        || _fail "ARP for the LB IP not answered with np-l2's MAC: $(in_ns "$lan" ip neigh show 192.0.2.10)"
    # Withdrawn with the Service (and with the advertisement).
    assert_ok "lb3 deleted" svcctl delete svc lb3
    assert_eq "" "$(l2_arp)" "l2_arp_v1 empty once the Service is gone"
    assert_ok "lb4 applied" svcctl apply -f "$(lb_svc lb4)"
    assert_eq "$want" "$(l2_arp)" "announced again for lb4"
    assert_ok "L2Advertisement deleted" svcctl delete l2advertisement l2 -n metallb-system
    assert_eq "" "$(l2_arp)" "nothing announced without an L2Advertisement"
}

# --service-node-port-range changed on the daemon (a restart, which keeps
# traffic flowing): allocated nodePorts outside the new range stay, with
# their maps untouched; new ones come from the new range; an explicit one
# is judged by it.
test_nodeport_range_change() {
    local out port
    assert_ok "NodePort np5 applied" svcctl apply -f "$(np_svc np5 30330)"
    daemon_stop
    daemon_start --service-node-port-range 31000-31002 && daemon_wait_ready || return
    assert_contains "$(grep 'sync:' "$DAEMON_LOG" | tail -1)" "(0 map writes)" \
        "the restart with a new range rewrites nothing"
    assert_contains "$(svcctl get svc np5)" "80:30330/TCP" "np5 keeps its nodePort outside the new range"
    assert_ok "np5 still has its master" has_master "$NODE_IP:30330/6"
    assert_ok "np6 (no nodePort) applied" svcctl apply -f "$(manifest np6 "apiVersion: v1
kind: Service
metadata:
  name: np6
spec:
  type: NodePort
  ports:
  - port: 80
    targetPort: 8080")"
    port=$(svcctl get svc np6 -o json | jq -r '.spec.ports[0].nodePort')
    [[ $port =~ ^3100[0-2]$ ]] || _fail "np6 got nodePort '$port', not one of 31000-31002"
    assert_ok "np6's master" has_master "$NODE_IP:$port/6"
    out=$(svcctl apply -f "$(np_svc np7 30340)" 2>&1) && _fail "nodePort 30340 accepted outside 31000-31002"
    assert_eq 'The Service "np7" is invalid: spec.ports[0].nodePort: Invalid value: 30340: provided port is not in the valid range. The range of valid ports is 31000-31002' \
        "$out" "the new range in kubectl's message"
    assert_ok "np5 deleted" svcctl delete svc np5
    assert_ok "np6 deleted" svcctl delete svc np6
    daemon_stop
    daemon_start && daemon_wait_ready || return
}

run_test "nodeport: range, allocation and clashes in kubectl's words" test_nodeport_validation
run_test "nodeport: a new --service-node-port-range applies without disturbing allocated ports" test_nodeport_range_change
run_test "loadbalancer: pool assignment, pending, reuse" test_pool_assignment
run_test "nodeport: a master per node address and nodePort, following the addresses" test_nodeport_maps
run_test "loadbalancer: master and source ranges in the maps, kept across a restart" test_loadbalancer_maps
run_test "loadbalancer: L2 announcements in l2_arp_v1, gratuitous ARP, withdrawal" test_l2_announcements
finish
