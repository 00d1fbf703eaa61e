// Cluster DNS, the records (issue 14): what the kubernetes/dns specification
// (schema 1.1.0) says the cluster zone holds, derived from the Store's
// Services, EndpointSlices and Endpoints, and looked up by name and type.
// Pure C++ (no sockets, no DNS wire format): dns/server.h turns an Answer
// into a message, forwards what is not ours, caches.
//
// Threads: update() runs on the daemon's commit path (the store does not
// change meanwhile), lookup() on the DNS server's threads; the zone's own
// shared_mutex is held for the swap of the changed entries only, so answers
// follow each change at once and a query flood never waits on a commit for
// longer than that swap.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace svclb::dns {

// RR types (RFC 1035, 2782, 3596).
inline constexpr uint16_t kTypeA = 1, kTypeNS = 2, kTypeCNAME = 5, kTypeSOA = 6, kTypePTR = 12,
                          kTypeTXT = 16, kTypeAAAA = 28, kTypeSRV = 33, kTypeANY = 255;
// Response codes.
inline constexpr uint8_t kNoError = 0, kFormErr = 1, kServFail = 2, kNXDomain = 3, kNotImp = 4,
                         kRefused = 5;

// One resource record, class IN. Names are lower case and fully qualified
// (trailing dot).
struct Record {
  std::string name;
  uint16_t type = 0;
  uint32_t ttl = 0;
  // rdata, by type:
  uint32_t ipv4 = 0;                            // A, host byte order
  Ip6 ipv6{};                                   // AAAA
  std::string target;                           // CNAME, PTR, NS, SRV target; SOA mname
  uint16_t priority = 0, weight = 0, port = 0;  // SRV
  std::string text;                             // TXT (one character-string)
  std::string rname;                            // SOA
  uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;  // SOA
  bool operator==(const Record&) const = default;
  // Presentation format, fields separated by one space, as dig +noall
  // +answer prints them with tabs squeezed:
  //   "web.default.svc.cluster.local. 5 IN A 10.96.0.20"
  //   "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."
  //   "dns-version.cluster.local. 5 IN TXT \"1.1.0\""
  std::string str() const;
};

struct Answer {
  // Local: this zone answers (rcode and sections below). Forward: the name
  // is not the zone's (outside it, or a reverse name of an address the
  // zone does not know): the server forwards the query as it came.
  enum class Kind { Local, Forward } kind = Kind::Local;
  uint8_t rcode = kNoError;
  std::vector<Record> answer, authority, additional;
  // An ExternalName Service whose target is outside the zone, asked for A
  // or AAAA: `answer` holds the CNAME; the server resolves `chase` (same
  // type) upstream and appends that answer (glibc does not chase a CNAME
  // itself), taking its rcode. Empty otherwise.
  std::string chase;
};

struct ZoneConfig {
  std::string domain = "cluster.local";  // svclbd --cluster-domain
  uint32_t ttl = 5;                      // svclbd --dns-ttl
  // The cluster DNS address (host order, svclbd --cluster-dns): the A
  // record of the apex NS target (ns.dns.DOMAIN), as CoreDNS answers with
  // its own Service's address. 0 = none.
  uint32_t nsAddress = 0;
  // An IPv6 cluster DNS address: the AAAA of ns.dns.DOMAIN. All zero: none.
  Ip6 nsAddress6{};
};

// What the server asks for an answer: the Zone in svclbd.
class Authority {
 public:
  virtual ~Authority() = default;
  // The answer for one question (class IN). Names are matched without
  // regard to case; `qname` may lack the trailing dot.
  virtual Answer lookup(std::string_view qname, uint16_t qtype) const = 0;
};

class Zone final : public Authority {
 public:
  explicit Zone(ZoneConfig cfg = {});
  ~Zone();
  Zone(const Zone&) = delete;
  Zone& operator=(const Zone&) = delete;

  // Derives again the records of the Services `touched` names (added,
  // changed, deleted: whatever the store now says about each), or of every
  // Service when `touched` is null (start-up, a full resync).
  void update(const Store& store, const std::set<Store::Key>* touched);

  Answer lookup(std::string_view qname, uint16_t qtype) const override;

  const ZoneConfig& config() const { return cfg_; }
  size_t services() const;  // how many Services have names in the zone

 private:
  struct Impl;
  ZoneConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace svclb::dns
