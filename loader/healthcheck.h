// The per-Service health check server kube-proxy runs for Services with
// `externalTrafficPolicy: Local`: one HTTP listener on each
// `spec.healthCheckNodePort`, so a cloud load balancer only sends traffic to
// nodes that have a local endpoint.
//
// Responses match kube-proxy's pkg/proxy/healthcheck/service_health.go
// (hcHandler.ServeHTTP): any of the nine standard methods, any path; 200 when the Service has at
// least one local endpoint and the proxy is healthy, 503 otherwise; headers
// Content-Type: application/json, X-Content-Type-Options: nosniff and
// X-Load-Balancing-Endpoint-Weight: <localEndpoints>; the same tab-indented
// JSON body, without a trailing newline.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "loader/http_server.h"

namespace svclb {

struct HealthCheckService {
  std::string ns, name;
  uint16_t port = 0;  // spec.healthCheckNodePort; 0 = none allocated (skipped)
  uint32_t localEndpoints = 0;
};

// kube-proxy's JSON body, byte for byte (Go's dedent + Trim("\n") output).
std::string healthCheckBody(const std::string& ns, const std::string& name, uint32_t localEndpoints,
                            bool proxyHealthy);

// The answer to one request, headers ordered as Go's net/http writes them
// (handler headers sorted, then Date, Content-Length), plus `Connection:
// close` for HTTP/1.1 (net/http sends none to HTTP/1.0, closing anyway).
// The server leaves the body out for HEAD; Content-Length stays.
http::Response healthCheckResponse(const HealthCheckService& svc, bool proxyHealthy,
                                   const http::Request& req, std::time_t now);

class HealthCheckServer {
 public:
  HealthCheckServer();   // starts nothing
  ~HealthCheckServer();  // stops the thread, closes every socket
  HealthCheckServer(const HealthCheckServer&) = delete;
  HealthCheckServer& operator=(const HealthCheckServer&) = delete;

  // Makes the set of listeners equal to `services`: one TCP listener on
  // 0.0.0.0:port each (SO_REUSEADDR). Ports already open keep their socket
  // and only take the new name/count, so a sync never drops a probe; ports no
  // longer listed are closed (and their open connections with them) before
  // this returns. A port that cannot be bound, or that two Services claim, is
  // reported in the returned error (every failure, named by port and
  // Service) and retried on the next update(); the others keep serving.
  Status update(const std::vector<HealthCheckService>& services);

  // kube-proxy's `serviceProxyHealthy`: while false every port answers 503.
  // Defaults to true.
  void setProxyHealthy(bool healthy);

  // The ports currently listening, ascending.
  std::vector<uint16_t> ports() const;

 private:
  struct Listener {
    int id = 0;  // http::Server's listener id
    HealthCheckService svc;
  };

  http::Response answer(uint16_t port, const http::Request& req) const;

  mutable std::mutex mu_;
  std::map<uint16_t, Listener> listeners_;  // guarded by mu_
  bool proxyHealthy_ = true;                // guarded by mu_
  std::mutex updateMu_;                     // one update() at a time
  // Last member: destroyed (every listener and connection closed, its
  // thread stopped) before the state its handlers read.
  http::Server server_;
};

}  // namespace svclb
