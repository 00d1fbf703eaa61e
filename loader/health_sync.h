// The healthCheckNodePort listeners (LoadBalancer Services with
// externalTrafficPolicy: Local) kept in line with the store, each answering
// with its Service's local endpoint count (loader/healthcheck.h).
#pragma once

#include <string>
#include <vector>

#include "loader/healthcheck.h"
#include "loader/warn_once.h"
#include "model/model.h"

namespace svclb {

// The listeners `ext` (Store::externalFrontends()) asks for on node
// `nodeName`, one per Service, sorted by (namespace, name). kube-proxy's
// count: the Service's local endpoints (nodeName = this node) that take new
// flows: ready ones, else terminating-serving ones; the largest over the
// Service's ports.
std::vector<HealthCheckService> healthCheckServices(const std::vector<ExternalFrontend>& ext,
                                                    const std::string& nodeName);

class HealthSync {
 public:
  explicit HealthSync(std::string nodeName) : nodeName_(std::move(nodeName)) {}
  // Opens, closes and updates listeners; problems (a port in use) are logged.
  void sync(const Store& store);

 private:
  std::string nodeName_;
  HealthCheckServer server_;
  WarnOnce problems_;
};

}  // namespace svclb
