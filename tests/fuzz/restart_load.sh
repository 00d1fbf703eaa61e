# shellcheck shell=bash
# The load loops of the hitless restart tests (sourced).
# TCP: one curl per request (a new connection each), ~20/s, until STOP
# exists and at least MIN requests were made, or LIMIT seconds.
TCP_LOOP='min=$1 url=$2 stop=$3 limit=$4 n=0 start=$(date +%s)
while :; do
    [ $n -ge $min ] && [ -e "$stop" ] && break
    [ $(( $(date +%s) - start )) -ge $limit ] && break
    out=$(curl -s --connect-timeout 2 -m 3 "$url") || out=FAIL
    echo "$(date +%s.%N) ${out:-EMPTY}"; n=$((n + 1)); sleep 0.05
done'
# UDP: a new socket (new source port: a new flow) per request.
UDP_LOOP_PY='
import os, socket, sys, time
dst, port, mn, stop, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
n, start = 0, time.time()
while not (n >= mn and os.path.exists(stop)) and time.time() - start < limit:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    try:
        s.sendto(b"ping", (dst, port)); data, src = s.recvfrom(100)
        print("%.3f %s %s:%d" % (time.time(), data.decode().strip(), src[0], src[1]), flush=True)
    except socket.timeout:
        print("%.3f TIMEOUT" % time.time(), flush=True)
    s.close(); n += 1; time.sleep(0.05)
'
