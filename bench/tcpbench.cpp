// svclb-tcpbench: TCP connections per second and connect latency through a
// node, with real sockets.
//   server: svclb-tcpbench server --port P --duration S
//           accepts and closes (epoll), until S seconds.
//   client: svclb-tcpbench client --addr IP[,IP...] [--src IP] --port P --inflight K --duration S
//           (several addresses: each connect takes the next, in turn)
//           (--src: the local address, one of the namespace's own)
//           keeps K non-blocking connects in flight; a connection counts when
//           connect() completes (SYN -> SYN-ACK through the node, first-packet
//           path included); it is then closed with RST (SO_LINGER 0) so no
//           TIME_WAIT piles up. Reports conn/s and connect latency p50/p99.
// Bounded in time (client max 120 s, server max 4 h); refuses to run in the root netns.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/netns_guard.h"

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& m) {
  fmt::print(stderr, "svclb-tcpbench: {}\n", m);
  std::exit(1);
}

int server(uint16_t port, double secs) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) || listen(l, 4096))
    die("bind/listen failed");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.fd = l}};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  auto end = Clock::now() + std::chrono::duration<double>(secs);
  uint64_t n = 0;
  while (Clock::now() < end) {
    epoll_event evs[8];
    if (epoll_wait(ep, evs, 8, 100) <= 0) continue;
    for (;;) {
      int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      linger lg{1, 0};
      setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      close(c);
      ++n;
    }
  }
  fmt::print(stderr, "server: {} connections accepted\n", n);
  return 0;
}

int client(const std::string& addrList, const std::string& src, uint16_t port, int inflight,
           double secs) {
  // --addr A[,B...]: connects take the addresses in turn (as a Service
  // spreads one client's connections over its backends).
  std::vector<sockaddr_in> addrs;
  for (size_t at = 0; at <= addrList.size();) {
    size_t comma = addrList.find(',', at);
    if (comma == std::string::npos) comma = addrList.size();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, addrList.substr(at, comma - at).c_str(), &a.sin_addr) != 1)
      die("bad --addr");
    addrs.push_back(a);
    at = comma + 1;
  }
  size_t next = 0;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  if (!src.empty() && inet_pton(AF_INET, src.c_str(), &from.sin_addr) != 1) die("bad --src");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::unordered_map<int, Clock::time_point> started;
  std::vector<double> lat;
  uint64_t ok = 0, errs = 0;
  auto open1 = [&] {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    linger lg{1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (!src.empty()) {
      // The port is still chosen at connect(), per destination.
      int one = 1;
      setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      if (bind(s, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) die("bind --src");
    }
    auto t = Clock::now();
    const sockaddr_in& a = addrs[next++ % addrs.size()];
    int r = connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
    if (r != 0 && errno != EINPROGRESS) {
      ++errs;
      close(s);
      return;
    }
    epoll_event ev{EPOLLOUT, {.fd = s}};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    started[s] = t;
  };
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration<double>(secs);
  for (int i = 0; i < inflight; ++i) open1();
  while (Clock::now() < end) {
    epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 50);
    for (int i = 0; i < n; ++i) {
      int s = evs[i].data.fd;
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      // The accept-and-close server may already have reset the connection
      // when we look: the handshake completed all the same.
      if (err == 0 || err == ECONNRESET || err == EPIPE) {
        ++ok;
        if (lat.size() < 2'000'000)
          lat.push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - started[s]).count());
      } else {
        ++errs;
      }
      started.erase(s);
      close(s);
      if (Clock::now() < end) open1();
    }
    // Connects stuck for > 1 s (a lost SYN) are retried as new ones.
    auto now = Clock::now();
    for (auto it = started.begin(); it != started.end();) {
      if (now - it->second > std::chrono::seconds(1)) {
        close(it->first);
        ++errs;
        it = started.erase(it);
        open1();
        break;  // iterator invalidated by open1's insert
      } else {
        ++it;
      }
    }
  }
  double el = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& [s, t] : started) close(s);
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(p * lat.size()))];
  };
  fmt::print(
      "{{\"connections\": {}, \"errors\": {}, \"seconds\": {:.3f}, \"cps\": {:.0f}, "
      "\"connect_us_p50\": {:.1f}, \"connect_us_p99\": {:.1f}, \"inflight\": {}}}\n",
      ok, errs, el, ok / el, pct(0.5), pct(0.99), inflight);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    die("usage: svclb-tcpbench server|client [--addr IP] [--src IP] --port P [--inflight K] "
        "--duration S");
  std::string mode = argv[1], addr, src;
  uint16_t port = 0;
  int inflight = 64;
  double secs = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--addr")
      addr = v;
    else if (k == "--src")
      src = v;
    else if (k == "--port")
      port = static_cast<uint16_t>(std::stoul(v));
    else if (k == "--inflight")
      inflight = std::stoi(v);
    else if (k == "--duration")
      secs = std::stod(v);
    else
      die("unknown option " + k);
  }
  // A server lives as long as the run that started it; a client is short.
  const double maxSecs = mode == "server" ? 4 * 3600 : 120;
  if (secs <= 0 || secs > maxSecs) die(fmt::format("--duration must be in (0, {}]", maxSecs));
  if (inflight < 1 || inflight > 4096) die("--inflight must be 1..4096");
  if (std::string why; !svclb::bench::inCreatedNetns(&why)) die("refusing to run: " + why);
  if (mode == "server") return server(port, secs);
  if (mode == "client") return client(addr, src, port, inflight, secs);
  die("mode must be server or client");
}
