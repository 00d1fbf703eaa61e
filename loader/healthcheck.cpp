#include "loader/healthcheck.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>

#include "model/model.h"

namespace svclb {

namespace {

using Clock = std::chrono::steady_clock;

// A probe is a single small GET: anything bigger, or slower, is not one.
constexpr size_t kMaxRequestBytes = 8 * 1024;
constexpr auto kReadTimeout = std::chrono::seconds(5);
// Past this many open connections the listeners are left unpolled (the
// kernel backlog queues the rest) instead of exhausting descriptors.
constexpr size_t kMaxConns = 512;

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

// What net/http answers to a request it cannot parse (it never reaches the
// handler). Always HTTP/1.1, always closes.
std::string errorResponse(const std::string& status) {
  std::string body = status;
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{}",
      status, body);
}

struct Request {
  std::string method;
  bool http11 = true;
  std::string error;  // set: answer errorResponse(error) instead
};

// Parses the head of a request (`head` ends at the blank line). Only what
// net/http would reject before calling the handler is checked: the handler
// itself ignores method, path and headers.
Request parseHead(const std::string& head) {
  Request r;
  auto eol = head.find('\n');
  std::string line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string::npos) {
    r.error = "400 Bad Request";
    return r;
  }
  r.method = line.substr(0, sp1);
  std::string proto = line.substr(sp2 + 1);
  if (proto == "HTTP/1.0") {
    r.http11 = false;
  } else if (proto != "HTTP/1.1") {
    r.error = proto.rfind("HTTP/", 0) == 0
                  ? "505 HTTP Version Not Supported: unsupported protocol version"
                  : "400 Bad Request";
    return r;
  }
  if (r.http11) {
    // net/http: "missing required Host header" for HTTP/1.1.
    bool haveHost = false;
    size_t pos = eol;
    while (pos != std::string::npos && pos + 1 < head.size()) {
      auto next = head.find('\n', pos + 1);
      std::string h = head.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
      if (h.size() >= 5 && strncasecmp(h.c_str(), "host:", 5) == 0) haveHost = true;
      pos = next;
    }
    if (!haveHost) r.error = "400 Bad Request: missing required Host header";
  }
  return r;
}

// End of the request head ("\r\n\r\n", or bare "\n\n" which net/http also
// accepts), or npos.
size_t headEnd(const std::string& in) {
  auto crlf = in.find("\r\n\r\n");
  auto lf = in.find("\n\n");
  if (crlf == std::string::npos) return lf == std::string::npos ? lf : lf + 2;
  if (lf == std::string::npos || crlf + 2 <= lf) return crlf + 4;
  return lf + 2;
}

void closeListener(int fd) {
  // shutdown() first: the poll thread may hold a reference to this socket
  // until it wakes, and close() alone would leave the port accepting until
  // then. shutdown() stops the listener (new connects are refused) at once.
  shutdown(fd, SHUT_RDWR);
  close(fd);
}

Result<int> openListener(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::fromErrno(errno, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    int err = errno;
    close(fd);
    return Error::fromErrno(err, "SO_REUSEADDR");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int err = errno;
    close(fd);
    return Error::fromErrno(err, fmt::format("bind 0.0.0.0:{}", port));
  }
  if (listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    close(fd);
    return Error::fromErrno(err, fmt::format("listen 0.0.0.0:{}", port));
  }
  return fd;
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

std::string healthCheckResponse(const HealthCheckService& svc, bool proxyHealthy, bool head,
                                std::time_t now) {
  bool ok = svc.localEndpoints != 0 && proxyHealthy;
  std::string body = healthCheckBody(svc.ns, svc.name, svc.localEndpoints, proxyHealthy);
  std::string out = fmt::format(
      "HTTP/1.1 {}\r\n"
      "Content-Type: application/json\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "X-Load-Balancing-Endpoint-Weight: {}\r\n"
      "Date: {}\r\n"
      "Content-Length: {}\r\n"
      "Connection: close\r\n\r\n",
      ok ? "200 OK" : "503 Service Unavailable", svc.localEndpoints, httpDate(now), body.size());
  if (!head) out += body;
  return out;
}

struct HealthCheckServer::Conn {
  int fd = -1;
  uint16_t port = 0;
  uint64_t generation = 0;
  Clock::time_point deadline;
  std::string in, out;
  size_t sent = 0;
  bool responding = false;
};

HealthCheckServer::HealthCheckServer() = default;

HealthCheckServer::~HealthCheckServer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  for (auto& [port, l] : listeners_) closeListener(l.fd);
  listeners_.clear();
  if (wakeFd_ >= 0) close(wakeFd_);
}

void HealthCheckServer::wake() const {
  if (wakeFd_ < 0) return;
  uint64_t one = 1;
  // A full counter still wakes the loop; nothing to do on failure.
  [[maybe_unused]] ssize_t n = write(wakeFd_, &one, sizeof(one));
}

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

Status HealthCheckServer::update(const std::vector<HealthCheckService>& services) {
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

  std::lock_guard<std::mutex> lock(mu_);
  if (wakeFd_ < 0) {
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) return Error::fromErrno(errno, "health check server: eventfd");
  }
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    closeListener(it->second.fd);
    it = listeners_.erase(it);
  }
  for (const auto& [port, svc] : want) {
    auto it = listeners_.find(port);
    if (it != listeners_.end()) {
      it->second.svc = *svc;  // same socket: only the name/count changes
      continue;
    }
    auto fd = openListener(port);
    if (!fd) {
      errors.push_back(
          Error{fd.error().code, fmt::format("healthCheckNodePort {} for Service {}: {}", port,
                                             svcName(*svc), fd.error().message)});
      continue;
    }
    listeners_.emplace(port, Listener{*fd, nextGeneration_++, *svc});
  }
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { run(); });
  wake();

  if (errors.empty()) return {};
  std::string msg;
  for (const auto& e : errors) msg += (msg.empty() ? "" : "; ") + e.message;
  return Error{errors.front().code, msg};
}

void HealthCheckServer::run() {
  std::vector<Conn> conns;
  struct ListenTag {
    uint16_t port;
    uint64_t generation;
    int fd;
  };
  std::vector<ListenTag> tags;
  std::vector<pollfd> pfds;

  auto closeConn = [](Conn& c) {
    close(c.fd);
    c.fd = -1;
  };
  // Answers a complete request, then writes as much as the socket takes.
  auto respond = [&](Conn& c, size_t end) {
    Request req = parseHead(c.in.substr(0, end));
    if (!req.error.empty()) {
      c.out = errorResponse(req.error);
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = listeners_.find(c.port);
      if (it == listeners_.end() || it->second.generation != c.generation) {
        closeConn(c);  // the port was closed under this connection
        return;
      }
      c.out = healthCheckResponse(it->second.svc, proxyHealthy_, req.method == "HEAD",
                                  std::time(nullptr));
      if (!req.http11) {
        // net/http answers an HTTP/1.0 request in HTTP/1.0 and, closing
        // anyway, sends no Connection header.
        c.out.replace(0, 8, "HTTP/1.0");
        auto pos = c.out.find("Connection: close\r\n");
        c.out.erase(pos, 19);
      }
    }
    c.responding = true;
  };
  auto flush = [&](Conn& c) {
    while (c.sent < c.out.size()) {
      ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) closeConn(c);
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
    shutdown(c.fd, SHUT_WR);
    closeConn(c);
  };

  for (;;) {
    pfds.clear();
    tags.clear();
    pfds.push_back({wakeFd_, POLLIN, 0});
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      // Connections of a port that update() closed go with it, as
      // http.Server.Close() does in kube-proxy.
      for (auto& c : conns) {
        auto it = listeners_.find(c.port);
        if (it == listeners_.end() || it->second.generation != c.generation) closeConn(c);
      }
      if (conns.size() < kMaxConns)
        for (const auto& [port, l] : listeners_) {
          pfds.push_back({l.fd, POLLIN, 0});
          tags.push_back({port, l.generation, l.fd});
        }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });

    auto now = Clock::now();
    int timeoutMs = -1;
    for (const auto& c : conns) {
      pfds.push_back({c.fd, static_cast<short>(c.responding ? POLLOUT : POLLIN), 0});
      auto left = std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now).count();
      left = std::max<int64_t>(left, 0);
      if (timeoutMs < 0 || left < timeoutMs) timeoutMs = static_cast<int>(left);
    }

    int n = poll(pfds.data(), pfds.size(), timeoutMs);
    if (n < 0 && errno != EINTR) break;  // only EFAULT/EINVAL/ENOMEM: nothing to recover
    if (n < 0) continue;

    if (pfds[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(wakeFd_, &v, sizeof(v));
    }

    size_t listenCount = tags.size();
    for (size_t i = 0; i < listenCount; ++i) {
      if (!(pfds[1 + i].revents & POLLIN)) continue;
      std::lock_guard<std::mutex> lock(mu_);
      // Under the lock the listener cannot be closed, and the check below
      // makes sure the fd number still names the socket polled.
      auto it = listeners_.find(tags[i].port);
      if (it == listeners_.end() || it->second.generation != tags[i].generation) continue;
      while (conns.size() < kMaxConns) {
        int fd = accept4(tags[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN, or the peer already gave up
        Conn c;
        c.fd = fd;
        c.port = tags[i].port;
        c.generation = tags[i].generation;
        c.deadline = Clock::now() + kReadTimeout;
        conns.push_back(std::move(c));
      }
    }

    // Connections polled this round are the first (pfds.size() - 1 -
    // listenCount) of conns; ones accepted above wait for the next round.
    size_t polled = pfds.size() - 1 - listenCount;
    now = Clock::now();
    for (size_t i = 0; i < polled; ++i) {
      Conn& c = conns[i];
      short re = pfds[1 + listenCount + i].revents;
      if (c.fd < 0) continue;
      if (c.responding) {
        if (re & (POLLOUT | POLLERR | POLLHUP)) flush(c);
      } else if (re & (POLLIN | POLLERR | POLLHUP)) {
        char buf[4096];
        ssize_t r = recv(c.fd, buf, sizeof(buf), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          closeConn(c);  // the client left before finishing its request
          continue;
        }
        c.in.append(buf, static_cast<size_t>(r));
        size_t end = headEnd(c.in);
        if (end != std::string::npos && end <= kMaxRequestBytes) {
          respond(c, end);
        } else if (c.in.size() > kMaxRequestBytes) {
          c.out = errorResponse("431 Request Header Fields Too Large");
          c.responding = true;
        }
        if (c.fd >= 0 && c.responding) flush(c);
      }
      // A connection stuck past its deadline, reading or writing, is dropped.
      if (c.fd >= 0 && now >= c.deadline) closeConn(c);
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }

  for (auto& c : conns)
    if (c.fd >= 0) close(c.fd);
}

}  // namespace svclb
