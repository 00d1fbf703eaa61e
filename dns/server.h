// Cluster DNS, the server (issue 14): DNS over UDP and TCP on the cluster
// DNS address, answers from an Authority (the Zone, dns/zone.h) for the cluster domain and
// its reverse names, everything else forwarded to the upstream servers and
// cached by TTL. Its own threads; it never takes the daemon's lock, so a
// query flood cannot stall svcctl or the commit path.
//
// Messages are read and written with ldns; forwarding is c-ares (UDP, and
// TCP when an answer comes back truncated).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "dns/zone.h"

namespace svclb::dns {

struct ServerConfig {
  // Where to listen, "IP:PORT" (UDP and TCP on each): svclbd's
  // "--cluster-dns IP" is "IP:53".
  std::vector<std::string> listen;
  // Upstream servers, "IP" or "IP:PORT" (default port 53), tried in order.
  std::vector<std::string> upstreams;
  size_t cacheEntries = 10000;     // forwarded answers kept, at most
  uint32_t maxCacheTtl = 3600;     // seconds; a longer TTL is cut to this
  uint32_t negativeCacheTtl = 30;  // seconds; NXDOMAIN/NODATA without an SOA
  int upstreamTimeoutMs = 2000;    // per try; c-ares tries every upstream
  int upstreamTries = 2;
  uint16_t ednsUdpSize = 1232;     // advertised in our OPT (DNS flag day 2020)
  size_t maxTcpConnections = 256;  // more are accepted and closed at once
  int tcpIdleTimeoutMs = 10000;    // a TCP connection with nothing to do is closed
  size_t maxInFlight = 4096;       // upstream queries outstanding; more get SERVFAIL
};

// Totals since start. Every answer sent counts once under its result
// (noerror = NOERROR with records, nodata = NOERROR without, nxdomain,
// servfail, refused, formerr, notimp); forwarded and cacheHits count the
// out-of-zone queries sent upstream and answered from the cache; coalesced
// counts those that joined the same question already upstream.
struct ServerCounters {
  uint64_t queries = 0, udp = 0, tcp = 0;
  uint64_t noerror = 0, nodata = 0, nxdomain = 0, servfail = 0, refused = 0, formerr = 0,
           notimp = 0;
  uint64_t forwarded = 0, cacheHits = 0, truncated = 0, coalesced = 0;
};

class Server {
 public:
  Server(ServerConfig cfg, const Authority& zone);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listen address (UDP and TCP) and starts serving. Errors in
  // the user's words: "cannot listen on 10.96.0.10:53/udp: Address already
  // in use"; nothing is left bound on error.
  Status start();
  void stop();
  ServerCounters counters() const;
  const ServerConfig& config() const { return cfg_; }

 private:
  struct Impl;
  ServerConfig cfg_;
  const Authority& zone_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace svclb::dns
