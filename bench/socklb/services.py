#!/usr/bin/env python3
"""services.py N VIP BE1 BE2 PORT: the socket-path benchmarks' manifest on
stdout: N-1 filler Services (UDP 53 -> 5353, two endpoints each in an unused
range, 10.97.0.0/16 ClusterIPs) and the tested one, "bench", VIP:PORT/TCP
with Endpoints BE1 and BE2 on PORT (bench/socklb/conn.sh, floor.sh)."""
import ipaddress
import sys

if len(sys.argv) != 6:
    sys.exit(__doc__)
n, bvip, be1, be2, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
base = int(ipaddress.ip_address("10.97.0.1"))
ep = int(ipaddress.ip_address("10.250.0.1"))


def svc(name, vip, ports, ips):
    print("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\nspec:\n"
          "  clusterIP: %s\n  ports:" % (name, vip))
    for pn, proto, p, tp in ports:
        print("  - name: %s\n    port: %d\n    protocol: %s\n    targetPort: %d" % (pn, p, proto, tp))
    print("---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: %s\n  namespace: default\n"
          "subsets:\n- addresses:" % name)
    for ip in ips:
        print("  - ip: %s" % ip)
    print("  ports:")
    for pn, proto, p, tp in ports:
        print("  - name: %s\n    port: %d\n    protocol: %s" % (pn, tp, proto))


for i in range(n - 1):
    svc("f%d" % i, str(ipaddress.ip_address(base + i)), [("dns", "UDP", 53, 5353)],
        [str(ipaddress.ip_address(ep + 2 * i)), str(ipaddress.ip_address(ep + 2 * i + 1))])
svc("bench", bvip, [("tcp", "TCP", port, port)], [be1, be2])
