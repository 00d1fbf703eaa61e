// svcctl monitor (docs/api.md "monitor", docs/architecture.md
// Observability): the drop and reject events the programs write into the
// mon_events ring buffer, streamed to every connected monitor client as one
// JSON object per line. One thread owns the ring and the clients; the API
// thread only hands over a connection (add), so a monitor never holds up
// the other requests. The programs write events only while at least one
// client is connected (Dataplane::setMonitor).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "maps/svclb_abi.h"

struct ring_buffer;

namespace svclb {

class Dataplane;

// Which events a client wants ("type": "drop" | "reject"; absent: both).
struct MonitorFilter {
  bool drops = true, rejects = true;
};
// Errors in svcctl's words.
Result<MonitorFilter> parseMonitorRequest(const nlohmann::json& req);

// Which Service port a svc_id is.
struct MonitorSvc {
  std::string ns, name, port;
};

// One event as the API sends it. `wallNs`: the event's time, ns since the
// epoch; `svc`: its Service if known; `ifname`: "" if none or unknown.
nlohmann::json monitorEventJson(const mon_event& e, int64_t wallNs, const MonitorSvc* svc,
                                const std::string& ifname);
// The same for an IPv6 event: "[addr]:port" endpoints.
nlohmann::json monitorEventJson(const mon_event6& e, int64_t wallNs, const MonitorSvc* svc,
                                const std::string& ifname);

class Monitor {
 public:
  // The daemon's Services by svc_id, read under its lock (called from the
  // monitor thread, at most once a second while events name unknown ids).
  using Resolver = std::function<std::map<uint32_t, MonitorSvc>()>;
  Monitor(Dataplane& dp, Resolver resolve) : dp_(dp), resolve_(std::move(resolve)) {}
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Takes over `fd`, a client whose request was {"op":"monitor"}: the
  // thread answers {"ok":true,...} once the programs write events, then
  // streams them to it until it closes.
  // On an error `fd` is not taken (the caller answers and closes it).
  Status add(int fd, const nlohmann::json& req);
  // Stops the thread and closes every client.
  void stop();

 private:
  struct Client {
    int fd = -1;
    MonitorFilter filter;
    uint64_t unsent = 0;  // events this client was too slow to take
  };
  void run();
  bool send(Client& c, const std::string& line);  // false: the client is gone
  void dropClient(size_t i);
  // Either family's event (mon_event / mon_event6).
  template <class Event>
  void deliver(const Event& e);
  void reportLosses();
  static int onEvent(void* self, void* data, size_t size);

  Dataplane& dp_;
  Resolver resolve_;
  std::mutex mu_;  // newClients_ (API thread -> monitor thread)
  std::vector<Client> newClients_;
  std::vector<Client> clients_;  // the monitor thread's own
  std::thread thread_;
  std::atomic<bool> stop_{false};
  ring_buffer* ring_ = nullptr;
  int wake_ = -1;  // eventfd: add() -> the thread
  std::map<uint32_t, MonitorSvc> names_;
  int64_t namesAt_ = 0;        // steady ns of the last resolve
  uint64_t lostSeen_[2] = {};  // rate_limited, ring_full already reported
};

}  // namespace svclb
