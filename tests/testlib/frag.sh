# shellcheck shell=bash
# Shared by tests/e2e/fragments.sh and multinode_fragments.sh (issue 17): a
# UDP echo server for the backends and a client that sends one datagram of
# SIZE bytes (> MTU 1500: the sender's stack fragments it) per attempt and
# checks the whole answer. IPv4 or IPv6, from the address given.

FRAG_PORT=7007   # the backends' echo port (the Services' targetPort)

# Answers "<pod> " + the datagram, so the answer is as large as the request
# (the backend's stack fragments it too).
FRAG_ECHO_PY='
import socket, sys
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(name.encode() + b" " + data, addr)
'

# DST PORT COUNT SIZE: COUNT datagrams of SIZE bytes from one socket, each
# with different content; prints "<pod> from <ip>:<port> ok <len>" for an
# answer that echoes the datagram whole, "BAD ..." or "TIMEOUT" otherwise.
FRAG_CLIENT_PY='
import os, socket, sys
dst, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
bad = 0
for i in range(count):
    data = os.urandom(size)
    s.sendto(data, (dst, port))
    try:
        ans, src = s.recvfrom(65535)
    except socket.timeout:
        print("TIMEOUT"); bad += 1; continue
    name, _, body = ans.partition(b" ")
    if body == data:
        print("%s from %s:%d ok %d" % (name.decode(), src[0], src[1], len(body)))
    else:
        print("BAD from %s:%d: %d bytes back, %d sent" % (src[0], src[1], len(ans), size)); bad += 1
sys.exit(1 if bad else 0)
'
