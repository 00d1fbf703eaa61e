#include "loader/health_sync.h"

#include <algorithm>
#include <map>
#include <set>

namespace svclb {

std::vector<HealthCheckService> healthCheckServices(const std::vector<ExternalFrontend>& ext,
                                                    const std::string& nodeName) {
  std::map<std::pair<std::string, std::string>, HealthCheckService> want;
  for (const auto& e : ext) {
    if (e.healthCheckNodePort == 0) continue;
    std::set<uint32_t> ready, serving;
    for (const auto& b : e.backends) {
      if (b.nodeName.empty() || b.nodeName != nodeName) continue;
      if (b.state == EndpointState::Ready)
        ready.insert(b.ip);
      else if (b.state == EndpointState::Terminating && b.serving)
        serving.insert(b.ip);
    }
    auto& hc = want[{e.ns, e.name}];
    hc.ns = e.ns;
    hc.name = e.name;
    hc.port = e.healthCheckNodePort;
    const uint32_t n = static_cast<uint32_t>(ready.empty() ? serving.size() : ready.size());
    hc.localEndpoints = std::max(hc.localEndpoints, n);
  }
  std::vector<HealthCheckService> list;
  list.reserve(want.size());
  for (auto& [k, v] : want) list.push_back(std::move(v));
  return list;
}

void HealthSync::sync(const Store& store) {
  std::vector<std::string> problems;
  if (auto st = server_.update(healthCheckServices(store.externalFrontends(), nodeName_)); !st)
    problems.push_back(st.error().message);
  problems_.update(problems);
}

}  // namespace svclb
