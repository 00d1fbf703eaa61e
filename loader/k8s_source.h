// The Kubernetes API as a StateSource (loader/state_source.h): svclbd
// --source=kubernetes follows a kube-apiserver's Services and EndpointSlices
// (list + watch, k8s/reflector.h) into the same store, planner and maps as
// standalone mode.
//
//   reflector threads          ApiMirror (the API's objects, converted)      sink
//   replace(kind, items) ──►   cache + "dirty" set           ──flush()──►   replace / apply /
//   remove event(kind, type, obj) ─►                                  (one thread)
//
// - Nothing reaches the sink before every kind has listed once (synced):
//   the first flush is one replace() of every kind the store holds, so the
//   maps converge to exactly the listed objects, whatever the state file
//   held (objects deleted while svclbd was down, objects svcctl made before
//   the node joined a cluster).
// - After that, changes are pushed in batches: whatever accumulated while
//   the previous batch was committed goes in the next one (one apply, one
//   remove), so a burst of events costs a few commits, and one event alone
//   is pushed at once. A relist of a kind is one replace() of that kind.
// - One object svclb cannot take never blocks the others: objects are
//   converted and validated one by one, and the refused ones are left out
//   (logged once, listed in status); a batch the sink still refuses is
//   retried object by object. A failed push (a map write failed) is retried
//   as a full replace after a backoff.
// - IPv4 only (IPv6 is a later issue): an EndpointSlice whose addressType is
//   not IPv4 and a Service with no IPv4 ClusterIP are ignored, as kube-proxy
//   ignores the other family; IPv6 externalIPs, ingress IPs and source
//   ranges of a dual-stack Service are dropped (kube-proxy filters them by
//   family the same way).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/reflector.h"
#include "loader/state_source.h"
#include "model/model.h"

namespace svclb {

// What svclb's dataplane serves of an API object: every Service as it is
// (both families, on the pods' and the node NICs' paths alike). Returns why
// the object is ignored altogether (an FQDN EndpointSlice), or nullopt to
// keep it.
std::optional<std::string> dataplaneView(nlohmann::json& obj);

// What the source knows and did, for `svcctl status` and logs.
struct K8sSourceStatus {
  std::string server, config;  // URL; where the config came from
  bool synced = false;
  std::vector<k8s::ReflectorStatus> reflectors;
  std::optional<k8s::NodeInfo> node;
  size_t objects = 0;  // in the sink (Services + EndpointSlices)
  size_t ignored = 0;  // not served at all (dataplaneView)
  // Refused objects: "EndpointSlice default/web-x: <error>", sorted.
  std::vector<std::string> refused;
  uint64_t pushes = 0;  // sink calls that succeeded
  uint64_t pushFailures = 0;
  std::string lastPushError;
  std::optional<std::chrono::system_clock::time_point> lastPush;
};

// The API's objects as svclb objects, and what the sink has not yet been
// told. Pure (no threads): the reflectors' callbacks call replace/event, the
// source's thread calls flush. Thread-safe.
class ApiMirror {
 public:
  using Log = std::function<void(const std::string&)>;
  explicit ApiMirror(Log log = {});

  // A full list of `kind` ("Service" | "EndpointSlice"): the complete set.
  void replace(const std::string& kind, std::vector<nlohmann::json>&& items);
  void event(const std::string& kind, k8s::WatchEventType type, nlohmann::json&& obj);
  // Every kind listed: from now on flush() pushes.
  void setSynced();

  bool synced() const;
  // Something to push (only meaningful once synced).
  bool pending() const;
  // Pushes what changed since the last successful flush. On error the
  // mirror stays pending and the next flush is a full replace.
  Status flush(StateSink& sink);

  // replace() pushes that succeeded (the first list, relists): each one
  // held a whole list of JSON and objects at once.
  uint64_t replacesPushed() const;

  // Fills the mirror's part of `st`.
  void status(K8sSourceStatus& st) const;

 private:
  // Converts and validates one item: the object, or why not (refused_ or
  // ignored_ updated). Called with mu_ held.
  std::optional<Object> take(const ObjectRef& ref, nlohmann::json&& item);
  static std::optional<ObjectRef> refOf(const std::string& kind, const nlohmann::json& item);
  Status flushFull(StateSink& sink, std::unique_lock<std::mutex>& lk);
  // Applies `objs` one at a time after the sink refused them as one batch:
  // the refused ones are recorded and left out of the cache.
  void isolate(StateSink& sink, std::vector<Object>& objs, std::unique_lock<std::mutex>& lk);
  void pushed(bool ok, const std::string& err);

  Log log_;
  mutable std::mutex mu_;
  bool synced_ = false;
  bool needFull_ = true;
  std::map<ObjectRef, Object> cache_;  // the objects the sink should hold
  std::set<ObjectRef> dirty_;          // changed since the last push
  std::set<ObjectRef> inSink_;         // what the sink holds (after the first replace)
  std::set<std::string> relisted_;     // kinds to push as a replace
  std::map<ObjectRef, std::string> refused_;
  std::set<ObjectRef> ignored_;
  uint64_t pushes_ = 0, pushFailures_ = 0, replaces_ = 0;
  std::string lastPushError_;
  std::optional<std::chrono::system_clock::time_point> lastPush_;
};

struct K8sSourceOptions {
  k8s::ConnectionConfig config;
  std::string nodeName;  // its Node is watched for status (zone, addresses)
  k8s::ClientOptions client;
  k8s::ReflectorOptions reflector;
  // Also list the slices of headless Services (svclbd --cluster-dns: their
  // names answer their endpoints); kube-proxy's selector leaves them out.
  bool headlessSlices = false;
  // After a failed push, the full replace is retried after this.
  std::chrono::milliseconds retry{2000};
};

class K8sSource final : public StateSource {
 public:
  explicit K8sSource(K8sSourceOptions opts);
  ~K8sSource() override;
  std::string_view name() const override { return "kubernetes"; }
  Status start(StateSink& sink) override;
  void stop() override;
  K8sSourceStatus status() const;
  // What `svcctl apply/delete` answers in this mode.
  std::string refusal() const;

 private:
  void run();
  void log(const std::string& line) const;

  K8sSourceOptions opts_;
  ApiMirror mirror_;
  std::unique_ptr<k8s::ClusterWatch> watch_;
  StateSink* sink_ = nullptr;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false, wake_ = false;
  std::optional<k8s::NodeInfo> node_;
};

}  // namespace svclb
