// svcctl trace SRC[:PORT] DST:PORT[/PROTO]: where a flow goes, computed from
// the live maps, read-only (docs/api.md "trace"): the frontend it matches,
// its candidate backends, the choice the packet path would make for a new
// flow (affinity, Maglev, KEP-1669 conditions, traffic policies), the CT
// entry the flow has now, and the drop or reject that would apply.
#pragma once
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "model/model.h"

namespace svclb {

class Dataplane;
class Syncer;

struct TraceQuery {
  uint32_t src = 0;    // host order
  uint16_t sport = 0;  // 0: not given (the Maglev choice then depends on it)
  uint32_t dst = 0;    // host order
  uint16_t dport = 0;
  uint8_t proto = 6;  // IPPROTO_TCP / IPPROTO_UDP
  bool v6 = false;    // an IPv6 flow: src6/dst6 instead of src/dst
  Ip6 src6{}, dst6{};
  // "from": node = the packet of one of this node's pods or processes (an
  // externalTrafficPolicy: Local frontend then shows its node view, all the
  // endpoints, as kube-proxy's short-circuit); outside (default) = arriving
  // on a node NIC.
  bool fromNode = false;
};

// Parses the request's "src" ("IP", "IP:PORT", "IPv6" or "[IPv6]:PORT"),
// "dst" ("IP:PORT" or "[IPv6]:PORT", the source's family) and "protocol"
// ("TCP" default, "UDP") and "from" ("outside" default, "node"); errors in
// svcctl's words.
Result<TraceQuery> parseTraceQuery(const nlohmann::json& req);

nlohmann::json traceJson(const Dataplane& dp, const Syncer& syncer, const TraceQuery& q);

}  // namespace svclb
