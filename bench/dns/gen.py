#!/usr/bin/env python3
"""Generates the cluster DNS benchmark's inputs (bench/dns/qps.sh): the same
names for every server under test, and the dnsperf query files.

usage: gen.py N OUTDIR

Services: N in all, in namespaces `default` (even i) and `bench` (odd i);
every 20th (i % 20 == 19) headless with an EndpointSlice of 3 ready
endpoints that have hostnames (so `svc.ns.svc.cluster.local` answers 3 A
records and `svc-k.svc.ns.svc.cluster.local` one), the others ClusterIP
(10.100.0.0 + i, inside svclbd's default --service-cidr, apart from the
DNS addresses 10.96.0.x). The upstream (dnsmasq) answers
*.fwd.example.test with 192.0.2.1 and 1,000 host-records nK.ext.example.test
(198.18.0.0/15, the benchmarking range).

Writes:
  svc.yaml            Services + EndpointSlices (svcctl apply -f)
  zone.tsv            FQDN<TAB>IPv4, one line per A record (every server's zone)
  unbound-zone.conf   local-zone/local-data for unbound (TTL 5, like --dns-ttl)
  dnsmasq-zone.conf   host-record lines for dnsmasq
  upstream.conf       the upstream dnsmasq's names
  q-zone.txt          (a) A for every in-zone name (Services, headless pods)
  q-nx.txt            (b) the NXDOMAINs a pod's search path produces
  q-fwd.txt           (c) names outside the zone (forwarded, then cached)
  q-pod.txt           (d) a pod's mix: glibc with ndots:5, A+AAAA per lookup
"""
import ipaddress
import os
import random
import sys

n, out = int(sys.argv[1]), sys.argv[2]
DOMAIN = "cluster.local"
VIP0 = int(ipaddress.ip_address("10.100.0.0"))
POD0 = int(ipaddress.ip_address("10.244.0.10"))
EXT = 1000  # upstream host-records
rnd = random.Random(14)  # fixed: every run asks the same queries


def ns(i):
    return "default" if i % 2 == 0 else "bench"


def headless(i):
    return i % 20 == 19


def ip(base, k):
    return str(ipaddress.ip_address(base + k))


zone = []  # (fqdn, ip)
svcs = []  # (name, ns)
with open(os.path.join(out, "svc.yaml"), "w") as f:
    for i in range(n):
        name, nsp = f"svc{i}", ns(i)
        svcs.append((name, nsp))
        fq = f"{name}.{nsp}.svc.{DOMAIN}"
        if not headless(i):
            f.write(f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {nsp}\n"
                    f"spec:\n  type: ClusterIP\n  clusterIP: {ip(VIP0, i)}\n  ports:\n"
                    f"  - name: http\n    port: 80\n    protocol: TCP\n    targetPort: 8080\n")
            zone.append((fq, ip(VIP0, i)))
            continue
        f.write(f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {nsp}\n"
                f"spec:\n  clusterIP: None\n  ports:\n"
                f"  - name: http\n    port: 8080\n    protocol: TCP\n")
        f.write(f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
                f"  name: {name}-1\n  namespace: {nsp}\n  labels:\n"
                f"    kubernetes.io/service-name: {name}\naddressType: IPv4\n"
                f"ports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n")
        for k in range(3):
            a = ip(POD0, 3 * i + k)
            f.write(f"- addresses: [{a}]\n  hostname: {name}-{k}\n  conditions: {{ready: true}}\n")
            zone.append((fq, a))
            zone.append((f"{name}-{k}.{fq}", a))

with open(os.path.join(out, "zone.tsv"), "w") as f:
    for fq, a in zone:
        f.write(f"{fq}\t{a}\n")
with open(os.path.join(out, "unbound-zone.conf"), "w") as f:
    f.write(f'    local-zone: "{DOMAIN}." static\n')
    for fq, a in zone:
        f.write(f'    local-data: "{fq}. 5 IN A {a}"\n')
with open(os.path.join(out, "dnsmasq-zone.conf"), "w") as f:
    # --local: the zone is answered here (NXDOMAIN for names it lacks),
    # never forwarded, as svclbd and unbound's static local-zone do.
    f.write(f"local=/{DOMAIN}/\n")
    for fq, a in zone:
        f.write(f"host-record={fq},{a}\n")

ext = [f"n{k}.ext.example.test" for k in range(EXT)]
with open(os.path.join(out, "upstream.conf"), "w") as f:
    # local=: the upstream is authoritative for example.test: AAAA of a name
    # with an A record only is NODATA (not REFUSED for want of a server).
    f.write("local=/example.test/\naddress=/fwd.example.test/192.0.2.1\n")
    for k, name in enumerate(ext):
        f.write(f"host-record={name},198.18.{k // 250}.{k % 250 + 1}\n")

fqdns = sorted({fq for fq, _ in zone})
with open(os.path.join(out, "q-zone.txt"), "w") as f:
    for fq in fqdns:
        f.write(f"{fq} A\n")

# (b) search-path NXDOMAINs: names that are not Services, with each suffix
# of namespace default's search list.
SEARCH = [f"default.svc.{DOMAIN}", f"svc.{DOMAIN}", DOMAIN]
others = ["www.example.com", "api.github.com", "registry-1.docker.io", "pypi.org",
          "login.microsoftonline.com", "s3.amazonaws.com", "redis", "postgres", "kafka", "vault"]
others += [f"n{k}.ext.example.test" for k in range(0, EXT, 10)]
with open(os.path.join(out, "q-nx.txt"), "w") as f:
    for o in others:
        for s in SEARCH:
            f.write(f"{o}.{s} A\n")
            f.write(f"{o}.{s} AAAA\n")

# (c) forwarded names: the upstream's 1,000 host-records and names under
# fwd.example.test (its --address wildcard).
with open(os.path.join(out, "q-fwd.txt"), "w") as f:
    for name in ext:
        f.write(f"{name} A\n")
    for k in range(100):
        f.write(f"h{k}.fwd.example.test A\n")

# (d) a pod in namespace default, glibc with ndots:5 (A and AAAA asked
# together, each through the search list until one answers):
#  - 60% `curl http://svcK` (a Service of its own namespace): A found, AAAA NODATA
#  - 20% `svcK.bench` (another namespace): NX in default.svc, then found
#  - 20% an outside name (fewer than 5 dots): 3 search suffixes NX, then forwarded
same = [s for s in svcs if s[1] == "default"]
other = [s for s in svcs if s[1] == "bench"]
with open(os.path.join(out, "q-pod.txt"), "w") as f:
    for _ in range(2000):
        r = rnd.random()
        if r < 0.6 or not other:
            name, _ = rnd.choice(same)
            tries = [f"{name}.default.svc.{DOMAIN}"]
        elif r < 0.8:
            name, nsp = rnd.choice(other)
            tries = [f"{name}.{nsp}.default.svc.{DOMAIN}", f"{name}.{nsp}.svc.{DOMAIN}"]
        else:
            o = rnd.choice(ext)
            tries = [f"{o}.{s}" for s in SEARCH] + [o]
        for t in tries:
            f.write(f"{t} A\n{t} AAAA\n")
print(f"{n} services, {len(zone)} A records, {len(fqdns)} names")
