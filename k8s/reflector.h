// List + watch of one Kubernetes resource kind, as client-go's reflector
// does: list (paginated, a consistent read) -> one full snapshot to the
// caller ("replace every object of this kind") -> watch from the list's
// resourceVersion -> ADDED/MODIFIED/DELETED to the caller; BOOKMARK moves the
// resourceVersion; 410 Gone / "too old resource version" -> list again and
// deliver a full snapshot again; a failed connection -> reconnect after an
// exponential backoff (capped, jittered) and watch from the last
// resourceVersion. ClusterWatch runs the three reflectors svclbd needs
// (Services, EndpointSlices, this node's Node) and says when all have listed.
//
// The integrator's contract (docs/kubernetes.md, "The API client"):
// - Callbacks run on the reflectors' own threads, one thread per kind,
//   concurrently with each other: the receiver locks its store.
// - `replace` is the complete current set of that kind; anything of that kind
//   the receiver holds and `replace` lacks is gone (deleted while the watch
//   was down). Every item has apiVersion and kind set.
// - Events of one kind arrive in order, after that kind's `replace`.
// - Nothing may be written to the maps before ClusterWatch::synced(): a
//   Service without its EndpointSlices would be programmed with no backends
//   (and a restart would drop traffic). `onSynced` runs once, after the last
//   kind's first `replace` returned, on that reflector's thread; after it the
//   receiver syncs the maps to everything received so far.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "model/model.h"

namespace svclb::k8s {

// ---- resources (pure) -------------------------------------------------------

// kube-proxy's selector (cmd/kube-proxy/app/server.go: noProxyName +
// noHeadlessEndpoints, applied to its Service and EndpointSlice informers
// alike): skip objects owned by another service proxy
// (service.kubernetes.io/service-proxy-name) and the slices of headless
// Services (service.kubernetes.io/headless, set by the EndpointSlice
// controller). labels.Selector.String() sorts requirements by key.
inline constexpr const char* kProxyLabelSelector =
    "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name";
inline constexpr const char* kNoProxyNameLabelSelector =
    "!service.kubernetes.io/service-proxy-name";

struct Resource {
  std::string name;        // "services": for messages and status
  std::string apiVersion;  // "v1" | "discovery.k8s.io/v1"
  std::string kind;        // "Service" | "EndpointSlice" | "Node"
  std::string path;        // "/api/v1/services"
  std::string labelSelector;
  std::string fieldSelector;
};

Resource servicesResource();
// withHeadless: also the slices of headless Services (the cluster DNS
// answers their endpoints' addresses; kube-proxy leaves them out).
Resource endpointSlicesResource(bool withHeadless = false);
Resource nodeResource(const std::string& nodeName);  // fieldSelector metadata.name=NODE

// "labelSelector=...&fieldSelector=..." (escaped; empty when neither).
std::string selectorQuery(const Resource& r);
// path?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N[&selectors]
std::string watchPath(const Resource& r, const std::string& resourceVersion, int timeoutSeconds);

// List items come without apiVersion/kind (only the list has them): set them
// from the resource, leaving any the server did send.
void fillTypeMeta(nlohmann::json& item, const Resource& r);
void fillTypeMeta(std::vector<nlohmann::json>& items, const Resource& r);

// What a failed list/watch leads to: Relist for ESTALE (410 Gone, Expired,
// "too old resource version"), Stop for ECANCELED, Reconnect (backoff, watch
// from the last resourceVersion) for everything else.
enum class Recovery { Relist, Reconnect, Stop };
Recovery recoveryFor(const Error& err);
// A watch ERROR event's Status: the same decision.
Recovery recoveryForStatus(const nlohmann::json& status);

// Exponential backoff: the n-th delay (from 0) is min(cap, initial * 2^n)
// scaled by a factor in [1 - jitter, 1], so it never exceeds cap and
// reconnecting nodes spread out instead of hitting a restarted apiserver at once.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(500),
                   std::chrono::milliseconds cap = std::chrono::seconds(30), double jitter = 0.5);
  // u in [0, 1): 0 gives the full delay, toward 1 the least.
  std::chrono::milliseconds next(double u);
  std::chrono::milliseconds next();  // u from an internal random generator
  void reset() { attempts_ = 0; }
  unsigned attempts() const { return attempts_; }

 private:
  std::chrono::milliseconds initial_, cap_;
  double jitter_;
  unsigned attempts_ = 0;
  std::mt19937_64 rng_;
};

// ---- to model objects (pure) ---------------------------------------------------

// svclb::fromJson with the object named in the error:
//   EndpointSlice default/web-abcde from the API server: invalid object: ...
Result<Object> toModelObject(const nlohmann::json& j);
// Converts what it can; each object it cannot is skipped and reported to
// `warn` (default: a "svclbd: warning: skipped ..." line on stderr).
std::vector<Object> toModelObjects(const std::vector<nlohmann::json>& items,
                                   const std::function<void(const std::string&)>& warn = {});

// What svclbd takes from its own Node.
struct NodeInfo {
  std::string name;
  std::vector<std::string> internalIPs, externalIPs;  // status.addresses, in order
  std::string zone;  // label topology.kubernetes.io/zone ("" if none)
};
Result<NodeInfo> nodeInfoFromJson(const nlohmann::json& node);

// ---- the reflector -----------------------------------------------------------

struct ReflectorOptions {
  // Each watch asks the server to end it after timeoutSeconds, drawn from
  // [watchTimeout, watchTimeout + watchTimeoutJitter) like client-go's 5-10
  // minutes; the client's stall limit is derived from it (client.h).
  int watchTimeout = 300;
  int watchTimeoutJitter = 60;
  std::chrono::milliseconds backoffInitial{500};
  std::chrono::milliseconds backoffCap{30000};
};

struct ReflectorStatus {
  std::string resource;  // "services"
  std::string server;
  std::string state;  // "listing" | "watching" | "backoff" | "stopped"
  bool listed = false;
  std::string resourceVersion;
  std::optional<std::chrono::system_clock::time_point> lastEvent;  // list or event
  uint64_t events = 0;  // ADDED/MODIFIED/DELETED delivered
  uint64_t bookmarks = 0;
  uint64_t reconnects = 0;  // list/watch attempts after a failure
  uint64_t relists = 0;     // lists after the first (410, expired)
  std::string lastError;
  std::optional<std::chrono::system_clock::time_point> lastErrorTime;
};

struct Handlers {
  std::function<void(const Resource&, std::vector<nlohmann::json>&&)> replace;
  std::function<void(const Resource&, WatchEventType, nlohmann::json&&)> event;
  // Errors and recoveries, one line each (default: stderr).
  std::function<void(const std::string&)> log;
};

class Reflector {
 public:
  Reflector(Resource res, ConnectionConfig cfg, ClientOptions copts, ReflectorOptions ropts,
            Handlers h);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  Status start();
  // Cancels the running request at once and joins the thread. Idempotent.
  void stop();
  ReflectorStatus status() const;
  bool listed() const;
  const Resource& resource() const { return res_; }

 private:
  void run();
  void failed(const Error& err);  // records, then waits the backoff (or stop)
  void log(const std::string& line);

  Resource res_;
  ConnectionConfig cfg_;
  ClientOptions copts_;
  ReflectorOptions ropts_;
  Handlers h_;
  std::unique_ptr<Client> client_;
  Backoff backoff_;
  std::mt19937 rng_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  ReflectorStatus st_;
};

// Services + EndpointSlices (kube-proxy's selector) and, with a node name,
// this node's Node, against one API server.
class ClusterWatch {
 public:
  struct Options {
    ConnectionConfig config;
    std::string nodeName;  // empty: no Node watch
    ClientOptions client;
    ReflectorOptions reflector;
    bool headlessSlices = false;  // endpointSlicesResource(withHeadless)
  };
  ClusterWatch(Options opts, Handlers h, std::function<void()> onSynced);
  ~ClusterWatch();
  Status start();
  void stop();
  // Every kind delivered its first full list.
  bool synced() const { return synced_.load(); }
  std::vector<ReflectorStatus> status() const;

 private:
  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::function<void()> onSynced_;
  std::atomic<unsigned> listedKinds_{0};
  std::atomic<bool> synced_{false};
};

}  // namespace svclb::k8s
