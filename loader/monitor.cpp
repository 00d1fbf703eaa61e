#include "loader/monitor.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "loader/dataplane.h"
#include "maps/maps.h"

namespace svclb {

using nlohmann::json;

namespace {

int64_t clockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

const char* hookName(uint8_t h) {
  switch (h) {
    case MON_HOOK_TC_POD:
      return "tc-pod";
    case MON_HOOK_XDP:
      return "xdp";
    case MON_HOOK_TC_EXT:
      return "tc-ext";
    case MON_HOOK_SOCK_CONNECT:
      return "connect";
    case MON_HOOK_SOCK_SENDMSG:
      return "sendmsg";
    default:
      return "unknown";
  }
}

std::string endpoint(uint32_t addrBe, uint16_t portBe) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{addrBe};
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return fmt::format("{}:{}", buf, ntohs(portBe));
}

std::string endpoint6(const v6addr& addr, uint16_t portBe) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &addr, buf, sizeof(buf));
  return fmt::format("[{}]:{}", buf, ntohs(portBe));
}

std::string isoTime(int64_t wallNs) {
  time_t secs = static_cast<time_t>(wallNs / 1000000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
  return fmt::format("{}.{:06}Z", buf, (wallNs % 1000000000) / 1000);
}

}  // namespace

Result<MonitorFilter> parseMonitorRequest(const json& req) {
  MonitorFilter f;
  if (!req.contains("type") || req["type"].is_null()) return f;
  if (!req["type"].is_string())
    return Error{EINVAL, "monitor: \"type\" must be \"drop\" or \"reject\""};
  const std::string t = req["type"].get<std::string>();
  if (t == "drop")
    f.rejects = false;
  else if (t == "reject")
    f.drops = false;
  else
    return Error{EINVAL,
                 fmt::format("monitor: unknown event type \"{}\" (expected drop or reject)", t)};
  return f;
}

// Both families' events: the same JSON, the endpoints printed per family.
template <class Event>
json eventJson(const Event& e, std::string src, std::string dst, int64_t wallNs,
               const MonitorSvc* svc, const std::string& ifname) {
  // The daemon's one table of drop reason names (maps/maps.cpp): a reason
  // it does not know yet still shows, by number.
  const char* reason = dropReasonName(e.reason);
  json j = {{"type", e.type == MON_EV_REJECT ? "reject" : "drop"},
            {"reason", reason ? std::string(reason) : fmt::format("reason_{}", e.reason)},
            {"time", isoTime(wallNs)},
            {"timestampNs", wallNs},
            {"protocol", e.proto == IPPROTO_TCP   ? "TCP"
                         : e.proto == IPPROTO_UDP ? "UDP"
                                                  : "other"},
            {"src", std::move(src)},
            {"dst", std::move(dst)},
            {"svcId", e.svc_id},
            {"hook", hookName(e.hook)},
            {"ifindex", e.ifindex}};
  if (svc) j["service"] = {{"namespace", svc->ns}, {"name", svc->name}, {"port", svc->port}};
  if (!ifname.empty()) j["interface"] = ifname;
  return j;
}

json monitorEventJson(const mon_event& e, int64_t wallNs, const MonitorSvc* svc,
                      const std::string& ifname) {
  return eventJson(e, endpoint(e.saddr, e.sport), endpoint(e.daddr, e.dport), wallNs, svc, ifname);
}

json monitorEventJson(const mon_event6& e, int64_t wallNs, const MonitorSvc* svc,
                      const std::string& ifname) {
  return eventJson(e, endpoint6(e.saddr, e.sport), endpoint6(e.daddr, e.dport), wallNs, svc,
                   ifname);
}

Monitor::~Monitor() { stop(); }

void Monitor::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (auto& c : clients_) close(c.fd);
  clients_.clear();
  std::lock_guard lk(mu_);
  for (auto& c : newClients_) close(c.fd);
  newClients_.clear();
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  if (wake_ >= 0) close(wake_);
  wake_ = -1;
}

Status Monitor::add(int fd, const json& req) {
  auto f = parseMonitorRequest(req);
  if (!f) return f.error();
  std::lock_guard lk(mu_);
  if (!ring_) {
    ring_ = ring_buffer__new(dp_.monitorRingFd(), onEvent, this, nullptr);
    if (!ring_) return Error::fromErrno(errno, "monitor: open the event ring buffer");
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) return Error::fromErrno(errno, "monitor: eventfd");
  }
  newClients_.push_back({fd, *f, 0});
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  const uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
  return {};
}

// A record's size tells the family (mon_event: 32 bytes, mon_event6: 56).
int Monitor::onEvent(void* self, void* data, size_t size) {
  if (size == sizeof(mon_event6)) {
    mon_event6 e;
    std::memcpy(&e, data, sizeof(e));
    static_cast<Monitor*>(self)->deliver(e);
  } else if (size == sizeof(mon_event)) {
    mon_event e;
    std::memcpy(&e, data, sizeof(e));
    static_cast<Monitor*>(self)->deliver(e);
  }
  return 0;
}

bool Monitor::send(Client& c, const std::string& line) {
  // Never blocks the thread on one slow reader: what does not fit in its
  // socket buffer now is counted for it instead.
  ssize_t n = ::send(c.fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(line.size())) return true;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    ++c.unsent;
    return true;
  }
  return false;  // gone, or a partial line: the stream is broken, end it
}

void Monitor::dropClient(size_t i) {
  close(clients_[i].fd);
  clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
}

template <class Event>
void Monitor::deliver(const Event& e) {
  if (clients_.empty()) return;  // left in the ring from an earlier session
  const int64_t now = clockNs(CLOCK_MONOTONIC);
  const int64_t wall = clockNs(CLOCK_REALTIME) - (now - static_cast<int64_t>(e.ts_ns));
  const MonitorSvc* svc = nullptr;
  if (e.svc_id) {
    auto it = names_.find(e.svc_id);
    if (it == names_.end() && now - namesAt_ > 1000000000) {
      names_ = resolve_();
      namesAt_ = now;
      it = names_.find(e.svc_id);
    }
    if (it != names_.end()) svc = &it->second;
  }
  char ifbuf[IF_NAMESIZE] = {};
  std::string ifname;
  if (e.ifindex && if_indextoname(e.ifindex, ifbuf)) ifname = ifbuf;
  const std::string line = monitorEventJson(e, wall, svc, ifname).dump() + "\n";
  for (size_t i = clients_.size(); i-- > 0;) {
    auto& c = clients_[i];
    if (e.type == MON_EV_REJECT ? !c.filter.rejects : !c.filter.drops) continue;
    if (!send(c, line)) dropClient(i);
  }
}

// Every second: what the token buckets and the ring lost since the last
// report, and what each client could not take, as {"lost": N, ...}.
void Monitor::reportLosses() {
  uint64_t now[2] = {};
  for (const auto& s : dp_.monitorState().lookup(0)) {
    now[0] += s.rate_limited;
    now[1] += s.ring_full;
  }
  const uint64_t rl = now[0] - lostSeen_[0], rf = now[1] - lostSeen_[1];
  lostSeen_[0] = now[0];
  lostSeen_[1] = now[1];
  for (size_t i = clients_.size(); i-- > 0;) {
    auto& c = clients_[i];
    const uint64_t total = rl + rf + c.unsent;
    if (total == 0) continue;
    json j = {{"type", "lost"},
              {"lost", total},
              {"rateLimited", rl},
              {"ringFull", rf},
              {"slowClient", c.unsent}};
    c.unsent = 0;
    if (!send(c, j.dump() + "\n")) dropClient(i);
  }
}

void Monitor::run() {
  int64_t lastReport = clockNs(CLOCK_MONOTONIC);
  while (!stop_) {
    {
      std::lock_guard lk(mu_);
      if (!newClients_.empty()) {
        if (clients_.empty()) {
          // A new session: forget what the ring and the counters hold from
          // the last one, then switch the programs on.
          ring_buffer__consume(ring_);
          uint64_t base[2] = {};
          for (const auto& s : dp_.monitorState().lookup(0)) {
            base[0] += s.rate_limited;
            base[1] += s.ring_full;
          }
          lostSeen_[0] = base[0];
          lostSeen_[1] = base[1];
          dp_.setMonitor(true);
        }
        // Answered only now, with the programs writing: an event the
        // client causes after this line reaches it.
        for (auto& c : newClients_) {
          json ok = {{"ok", true},
                     {"monitor", {{"drops", c.filter.drops}, {"rejects", c.filter.rejects}}}};
          if (send(c, ok.dump() + "\n") && c.unsent == 0)
            clients_.push_back(c);
          else
            close(c.fd);
        }
        newClients_.clear();
      }
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_, POLLIN, 0});
    fds.push_back({ring_buffer__epoll_fd(ring_), POLLIN, 0});
    for (const auto& c : clients_) fds.push_back({c.fd, POLLIN | POLLRDHUP, 0});
    poll(fds.data(), fds.size(), 200);
    if (fds[0].revents & POLLIN) {
      uint64_t n;
      (void)!read(wake_, &n, sizeof(n));
    }
    if (clients_.empty()) continue;
    // A client only ever sends its one request: readable now means it
    // closed (or wrote something it should not have: it is ended too).
    for (size_t i = clients_.size(); i-- > 0;)
      if (fds[i + 2].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) dropClient(i);
    ring_buffer__consume(ring_);
    const int64_t now = clockNs(CLOCK_MONOTONIC);
    if (now - lastReport >= 1000000000) {
      lastReport = now;
      reportLosses();
    }
    if (clients_.empty()) {
      std::lock_guard lk(mu_);
      if (newClients_.empty()) dp_.setMonitor(false);
    }
  }
  dp_.setMonitor(false);
}

}  // namespace svclb
