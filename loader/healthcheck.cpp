#include "loader/healthcheck.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include "model/model.h"

namespace svclb {

namespace {

// A probe is a single small GET: a bigger request head is not one.
constexpr size_t kMaxRequestBytes = 8 * 1024;

// net/http's http.TimeFormat.
std::string httpDate(std::time_t now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&now, &tm);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// What net/http answers to a request it refuses before the handler: the
// status ("400 Bad Request: missing required Host header") is also the body.
http::Response errorResponse(int code, const std::string& reason) {
  http::Response r;
  r.status = code;
  r.reason = reason;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"}, {"Connection", "close"}};
  r.body = fmt::format("{} {}", code, reason);
  return r;
}

std::string svcName(const HealthCheckService& s) { return fmt::format("\"{}/{}\"", s.ns, s.name); }

}  // namespace

std::string healthCheckBody(const std::string& ns, const std::string& name, uint32_t localEndpoints,
                            bool proxyHealthy) {
  return fmt::format(
      "{{\n\t\"service\": {{\n\t\t\"namespace\": {},\n\t\t\"name\": {}\n\t}},\n"
      "\t\"localEndpoints\": {},\n\t\"serviceProxyHealthy\": {}\n}}",
      goQuote(ns), goQuote(name), localEndpoints, proxyHealthy ? "true" : "false");
}

http::Response healthCheckResponse(const HealthCheckService& svc, bool proxyHealthy,
                                   const http::Request& req, std::time_t now) {
  const bool ok = svc.localEndpoints != 0 && proxyHealthy;
  http::Response r;
  r.status = ok ? 200 : 503;
  r.reason = ok ? "OK" : "Service Unavailable";
  r.body = healthCheckBody(svc.ns, svc.name, svc.localEndpoints, proxyHealthy);
  r.headers = {{"Content-Type", "application/json"},
               {"X-Content-Type-Options", "nosniff"},
               {"X-Load-Balancing-Endpoint-Weight", std::to_string(svc.localEndpoints)},
               {"Date", httpDate(now)},
               {"Content-Length", std::to_string(r.body.size())}};
  // net/http answers HTTP/1.0 in HTTP/1.0 and, closing anyway, sends no
  // Connection header then.
  if (req.minor >= 1) r.headers.emplace_back("Connection", "close");
  return r;
}

HealthCheckServer::HealthCheckServer() = default;
HealthCheckServer::~HealthCheckServer() = default;

void HealthCheckServer::setProxyHealthy(bool healthy) {
  std::lock_guard<std::mutex> lock(mu_);
  proxyHealthy_ = healthy;
}

std::vector<uint16_t> HealthCheckServer::ports() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint16_t> out;
  for (const auto& [port, l] : listeners_) out.push_back(port);
  return out;
}

// Runs on the server's thread. The checks net/http makes before calling
// kube-proxy's handler come first, in its order.
http::Response HealthCheckServer::answer(uint16_t port, const http::Request& req) const {
  if (req.headBytes > kMaxRequestBytes)
    return errorResponse(431, "Request Header Fields Too Large");
  if (req.major != 1 || req.minor > 1)
    return errorResponse(505, "HTTP Version Not Supported: unsupported protocol version");
  if (req.minor >= 1 && !req.hasHost)
    return errorResponse(400, "Bad Request: missing required Host header");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = listeners_.find(port);
  if (it == listeners_.end()) {
    http::Response gone;
    gone.drop = true;  // the port is being closed under this connection
    return gone;
  }
  return healthCheckResponse(it->second.svc, proxyHealthy_, req, std::time(nullptr));
}

Status HealthCheckServer::update(const std::vector<HealthCheckService>& services) {
  std::lock_guard<std::mutex> serial(updateMu_);
  std::vector<Error> errors;
  std::map<uint16_t, const HealthCheckService*> want;
  for (const auto& s : services) {
    if (s.port == 0) continue;
    auto [it, fresh] = want.emplace(s.port, &s);
    if (!fresh)
      errors.push_back(Error{
          EADDRINUSE, fmt::format("healthCheckNodePort {}: claimed by both "
                                  "Service {} and Service {}; serving {}",
                                  s.port, svcName(*it->second), svcName(s), svcName(*it->second))});
  }

  // Only update() changes listeners_ (under updateMu_), so reading it here
  // without mu_ is safe; every write takes mu_ for the handlers' sake.
  std::vector<uint16_t> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [port, l] : listeners_) {
      auto w = want.find(port);
      if (w == want.end())
        gone.push_back(port);
      else
        l.svc = *w->second;  // same socket: only the name/count changes
    }
  }
  for (uint16_t port : gone) {
    server_.close(listeners_.at(port).id);  // its connections go with it
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.erase(port);
  }
  for (const auto& [port, svc] : want) {
    if (listeners_.count(port)) continue;
    auto fail = [&, port = port, svc = svc](const Error& e) {
      errors.push_back(Error{e.code, fmt::format("healthCheckNodePort {} for Service {}: {}", port,
                                                 svcName(*svc), e.message)});
    };
    // Both families: a load balancer probes the node over the address
    // family it reaches it by (kube-proxy listens on each family's
    // --nodeport-addresses).
    auto fd = http::openTcpListenerAnyAddress(port);
    if (!fd) {
      fail(fd.error());
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      listeners_[port] = Listener{0, *svc};
    }
    auto id = server_.serve(
        *fd, [this, port = port](const http::Request& req) { return answer(port, req); });
    std::lock_guard<std::mutex> lock(mu_);
    if (!id) {
      listeners_.erase(port);
      fail(id.error());
      continue;
    }
    listeners_[port].id = *id;
  }

  if (errors.empty()) return {};
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.message;
  return Error{errors.front().code, msg};
}

}  // namespace svclb
