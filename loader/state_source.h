// Where svclbd's desired state comes from. A StateSource turns what it hears
// (today: svcctl's apply/delete requests, loader/svcctl_source.h; next: the
// Kubernetes API's list+watch of Services and EndpointSlices) into changes
// of a StateSink; the one sink, the Committer (loader/committer.h), plans
// them into map writes, persists them and answers. Every source therefore
// feeds the same store, planner and maps, and a new source is an addition.
#pragma once

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/model.h"

namespace svclb {

using Outcomes = std::vector<ApplyOutcome>;

// Each call is one all-or-nothing change: on error nothing changed (store,
// maps, state file) and the error is in kubectl's words; on success it is
// in the maps and on disk, and the outcomes say what happened per object.
class StateSink {
 public:
  virtual ~StateSink() = default;
  // Creates or updates `objs` (kubectl apply).
  virtual Result<Outcomes> apply(std::vector<Object> objs) = 0;
  // Deletes the named objects; one that does not exist is an error
  // (NotFound) and nothing is deleted. With `missing`, such an object is
  // left out and its NotFound line appended there instead.
  virtual Result<Outcomes> remove(const std::vector<ObjectRef>& refs,
                                  std::vector<std::string>* missing = nullptr) = 0;
  // A full resync (a relist): afterwards the stored objects of `kinds`
  // (Kinds: "Service", "EndpointSlice", ...) are exactly `objs` — the ones
  // listed are created or updated, every other one of those kinds is
  // deleted; objects of other kinds are left alone. `objs` may hold only
  // objects of `kinds`.
  virtual Result<Outcomes> replace(const std::vector<std::string>& kinds,
                                   std::vector<Object> objs) = 0;
  // Dry runs (svcctl apply/delete --dry-run): what apply/remove would answer,
  // checked against the stored state, which is left as it was.
  virtual Result<Outcomes> tryApply(std::vector<Object> objs) {
    (void)objs;
    return Error{ENOTSUP, "error: this source takes no dry runs"};
  }
  virtual Result<Outcomes> tryRemove(const std::vector<ObjectRef>& refs,
                                     std::vector<std::string>* missing = nullptr) {
    (void)refs;
    (void)missing;
    return Error{ENOTSUP, "error: this source takes no dry runs"};
  }
  // kubectl patch/label/annotate: `edit` gets the stored object `ref` names,
  // as the API shows it, and returns what replaces it, applied as apply
  // (tryApply when `dry`) in the same change, so nothing else changes the
  // store between the read and the write. NotFound in kubectl's words.
  using Edit = std::function<Result<Object>(const nlohmann::json& current)>;
  virtual Result<Outcomes> edit(const ObjectRef& ref, const Edit& edit, bool dry) {
    (void)ref;
    (void)edit;
    (void)dry;
    return Error{ENOTSUP, "error: this source takes no patches"};
  }
  // This node's zone as its Node object says (topology.kubernetes.io/zone):
  // topology hints pick endpoints by it. Sinks without topology ignore it.
  virtual void setNodeZone(const std::string& zone) { (void)zone; }
};

// A producer of changes. Request-driven sources (svcctl) make their changes
// from the API thread; a watching source starts its own thread in start().
class StateSource {
 public:
  virtual ~StateSource() = default;
  virtual std::string_view name() const = 0;  // for logs: "svcctl"
  // From now on changes go to `sink`, which outlives the source's use of it.
  virtual Status start(StateSink& sink) = 0;
  virtual void stop() = 0;
};

// One change at a time, whichever source makes it: every call holds `mu`
// (the daemon's, which also guards the maps and the store for queries).
class SerializedSink final : public StateSink {
 public:
  SerializedSink(StateSink& inner, std::mutex& mu) : inner_(inner), mu_(mu) {}
  Result<Outcomes> apply(std::vector<Object> objs) override {
    std::lock_guard lk(mu_);
    return inner_.apply(std::move(objs));
  }
  Result<Outcomes> remove(const std::vector<ObjectRef>& refs,
                          std::vector<std::string>* missing = nullptr) override {
    std::lock_guard lk(mu_);
    return inner_.remove(refs, missing);
  }
  Result<Outcomes> replace(const std::vector<std::string>& kinds,
                           std::vector<Object> objs) override {
    std::lock_guard lk(mu_);
    return inner_.replace(kinds, std::move(objs));
  }
  Result<Outcomes> tryApply(std::vector<Object> objs) override {
    std::lock_guard lk(mu_);
    return inner_.tryApply(std::move(objs));
  }
  Result<Outcomes> tryRemove(const std::vector<ObjectRef>& refs,
                             std::vector<std::string>* missing = nullptr) override {
    std::lock_guard lk(mu_);
    return inner_.tryRemove(refs, missing);
  }
  Result<Outcomes> edit(const ObjectRef& ref, const Edit& edit, bool dry) override {
    std::lock_guard lk(mu_);
    return inner_.edit(ref, edit, dry);
  }

 private:
  StateSink& inner_;
  std::mutex& mu_;
  void setNodeZone(const std::string& zone) override {
    std::lock_guard lk(mu_);
    inner_.setNodeZone(zone);
  }
};

}  // namespace svclb
