#!/usr/bin/env python3
"""tcx_link.py IFNAME ingress|egress PROG_PIN LINK_PIN: attaches the pinned
BPF program to IFNAME (in the caller's network namespace) through a tcx link
(kernel >= 6.6) and pins the link; removing the pin detaches it. Debian 12's
bpftool and libbpf 1.1 have no tcx API: libbpf's generic bpf_link_create
(BPF_TCX_INGRESS 46 / BPF_TCX_EGRESS 47) through ctypes."""
import ctypes
import os
import socket
import sys

if len(sys.argv) != 5 or sys.argv[2] not in ("ingress", "egress"):
    sys.exit(__doc__)
lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
ifindex = socket.if_nametoindex(sys.argv[1])
prog = lib.bpf_obj_get(sys.argv[3].encode())
if prog < 0:
    sys.exit("bpf_obj_get %s: %s" % (sys.argv[3], os.strerror(-prog)))
link = lib.bpf_link_create(prog, ifindex, 46 if sys.argv[2] == "ingress" else 47, None)
if link < 0:
    sys.exit("tcx link on %s %s: %s (kernel before 6.6?)" % (sys.argv[1], sys.argv[2], os.strerror(-link)))
err = lib.bpf_obj_pin(link, sys.argv[4].encode())
if err:
    sys.exit("pin %s: %s" % (sys.argv[4], os.strerror(-err)))
