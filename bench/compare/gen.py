#!/usr/bin/env python3
"""Generates the same N services x E endpoints for every dataplane of
bench/compare/run.sh: an svcctl manifest (v1 Service + v1 Endpoints), an
iptables-restore file in kube-proxy's iptables layout (KUBE-SERVICES ->
KUBE-SVC-* with statistic mode random -> KUBE-SEP-* DNAT) and nft -f files
in kube-proxy's nftables layout (service-ips vmap -> service chain with a
numgen vmap -> endpoint chains). Services 0..N-2 have UDP 53 -> 5353; the
LAST one (the tested one: the worst case for iptables) has UDP 53 and TCP 80
-> 8080.

usage: gen.py N ENDPOINTS OUTDIR   (writes svc.yaml, ipt.rules, nft-*.nft)
"""
import hashlib
import ipaddress
import os
import sys

n, e, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
VIP0 = int(ipaddress.ip_address("10.96.0.1"))
# The tested (last) Service's endpoints are its own, 10.251.0.11.., as in a
# cluster where each Service selects its own pods; every other Service
# shares another E addresses, 10.251.0.111.. (load only: no traffic).
TESTED_EPS = [str(ipaddress.ip_address("10.251.0.11") + k) for k in range(e)]
OTHER_EPS = [str(ipaddress.ip_address("10.251.0.111") + k) for k in range(e)]


def eps_of(i):
    return TESTED_EPS if i == n - 1 else OTHER_EPS


def vip(i):
    return str(ipaddress.ip_address(VIP0 + i))


def ports(i):
    p = [("dns", "UDP", 53, 5353)]
    if i == n - 1:
        p.append(("http", "TCP", 80, 8080))
    return p


def h(s):
    return hashlib.sha256(s.encode()).hexdigest()[:16].upper()


with open(os.path.join(out, "svc.yaml"), "w") as f:
    for i in range(n):
        f.write(f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: bench\n"
                f"spec:\n  type: ClusterIP\n  clusterIP: {vip(i)}\n  ports:\n")
        for name, proto, port, tport in ports(i):
            f.write(f"  - name: {name}\n    port: {port}\n    protocol: {proto}\n    targetPort: {tport}\n")
        f.write(f"---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s{i}\n  namespace: bench\n"
                f"subsets:\n- addresses:\n")
        for a in eps_of(i):
            f.write(f"  - ip: {a}\n")
        f.write("  ports:\n")
        for name, proto, port, tport in ports(i):
            f.write(f"  - name: {name}\n    port: {tport}\n    protocol: {proto}\n")

with open(os.path.join(out, "ipt.rules"), "w") as f:
    f.write("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
    chains, rules = [], []
    for i in range(n):
        for name, proto, port, tport in ports(i):
            svc = "KUBE-SVC-" + h(f"bench/s{i}:{name}")
            chains.append(svc)
            p = proto.lower()
            rules.append(f'-A KUBE-SERVICES -d {vip(i)}/32 -p {p} -m comment --comment "bench/s{i}:{name} cluster IP" '
                         f"-m {p} --dport {port} -j {svc}")
            for k, a in enumerate(eps_of(i)):
                sep = "KUBE-SEP-" + h(f"bench/s{i}:{name}:{a}")
                chains.append(sep)
                left = e - k
                prob = "" if left == 1 else f"-m statistic --mode random --probability {1.0 / left:.11f} "
                rules.append(f'-A {svc} -m comment --comment "bench/s{i}:{name} -> {a}:{tport}" {prob}-j {sep}')
                rules.append(f"-A {sep} -s {a}/32 -j KUBE-MARK-MASQ")
                rules.append(f"-A {sep} -p {p} -m {p} -j DNAT --to-destination {a}:{tport}")
    for c in chains:
        f.write(f":{c} - [0:0]\n")
    f.write("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
    f.write("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n")
    f.write("\n".join(rules) + "\nCOMMIT\n")

# nftables: the table, then the services in chunks of 1000 per transaction
# (one transaction with 10k services x 10 endpoints takes minutes).
with open(os.path.join(out, "nft-0.nft"), "w") as f:
    f.write("table ip kube-proxy {\n"
            " map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }\n"
            " chain prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n"
            "  ip daddr . meta l4proto . th dport vmap @service-ips\n }\n}\n")
chunk = 1000
for c0 in range(0, n, chunk):
    with open(os.path.join(out, f"nft-{c0 // chunk + 1}.nft"), "w") as f:
        elems = []
        for i in range(c0, min(n, c0 + chunk)):
            for name, proto, port, tport in ports(i):
                p = proto.lower()
                sc = f"service-s{i}-{name}"
                eps = []
                for k, a in enumerate(eps_of(i)):
                    ec = f"endpoint-s{i}-{name}-{k}"
                    f.write(f"add chain ip kube-proxy {ec}\n"
                            f"add rule ip kube-proxy {ec} meta l4proto {p} dnat to {a}:{tport}\n")
                    eps.append(f"{k} : goto {ec}")
                f.write(f"add chain ip kube-proxy {sc}\n"
                        f"add rule ip kube-proxy {sc} numgen random mod {e} vmap {{ {', '.join(eps)} }}\n")
                elems.append(f"{vip(i)} . {p} . {port} : goto {sc}")
        f.write(f"add element ip kube-proxy service-ips {{ {', '.join(elems)} }}\n")
