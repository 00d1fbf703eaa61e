#include "loader/committer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <future>

#include "loader/external.h"

namespace svclb {

Committer::Committer(CommitterConfig cfg, MapSync& maps)
    : cfg_(std::move(cfg)), maps_(maps), store_(cfg_.store), state_(cfg_.statePath) {}

Status Committer::load() {
  auto loaded = state_.load(cfg_.store);
  if (!loaded) return loaded.error();
  store_ = std::move(*loaded);
  invalid_ = store_.invalidObjects();
  for (const auto& bad : invalid_)
    fmt::print(stderr,
               "svclbd: warning: {} (in {}): kept as stored and programmed as far as it goes; "
               "svcctl apply a fixed manifest or svcctl delete it\n",
               bad, state_.path());
  return {};
}

Status Committer::restore(NodeAddresses nodeAddrs) {
  nodeAddrs_ = std::move(nodeAddrs);
  if (auto st = maps_.adopt(); !st) return st;
  auto plan = maps_.plan(desiredFrontends());
  if (!plan) return plan.error();
  fmt::print(stderr,
             "svclbd: restored {} services; sync: {} added, {} changed, {} removed, {} unchanged "
             "({} map writes)\n",
             store_.services().size(), plan->added, plan->changed, plan->removed, plan->unchanged,
             plan->ops.size());
  if (auto st = maps_.apply(std::move(*plan)); !st) return st;
  deltaOk_ = store_.externalFrontends().empty();
  return {};
}

std::vector<Frontend> Committer::desiredFrontends(bool warn) {
  std::vector<Frontend> out = store_.frontends();
  auto ext = externalToFrontends(store_.externalFrontends(), nodeAddrs_.v4, cfg_.nodeName, out,
                                 nodeAddrs_.v6);
  if (warn) extWarnings_.update(ext.warnings);
  out.insert(out.end(), std::make_move_iterator(ext.frontends.begin()),
             std::make_move_iterator(ext.frontends.end()));
  return out;
}

void Committer::setNodeAddresses(NodeAddresses nodeAddrs) {
  if (nodeAddrs == nodeAddrs_) return;
  nodeAddrs_ = std::move(nodeAddrs);
  replanAll("the node addresses");
}

void Committer::setNodeZone(const std::string& zone) {
  if (cfg_.zoneFixed || zone == store_.config().zone) return;
  fmt::print(stderr, "svclbd: this node's zone is now {}: topology hints follow it\n",
             zone.empty() ? "<none>" : zone);
  store_.setZone(zone);
  replanAll("the zone");
}

void Committer::replanAll(std::string_view why) {
  auto plan = maps_.plan(desiredFrontends());
  deltaOk_ = false;
  if (!plan)
    fmt::print(stderr, "svclbd: re-sync for {}: {}\n", why, plan.error().message);
  else if (auto st = maps_.apply(std::move(*plan)); !st)
    fmt::print(stderr, "svclbd: re-sync for {}: {}\n", why, st.error().message);
  else
    deltaOk_ = store_.externalFrontends().empty();
}

Committer::Change Committer::begin(std::set<Store::Key> touched) const {
  Change c;
  if (deltaOk_) c.before = store_.frontendsOf(touched);
  c.touched = std::move(touched);
  return c;
}

Result<Outcomes> Committer::apply(std::vector<Object> objs) {
  Change c = begin(store_.servicesTouchedBy(objs));
  // All-or-nothing: on error store_ is as it was.
  auto outs = store_.apply(std::move(objs), &c.undo);
  if (!outs) return outs.error();
  return commit(std::move(c), std::move(*outs));
}

// A dry run makes the change in the store, plans its map writes as commit
// would (a plan writes nothing) and reverts: what the maps could not hold
// (ids, the services map's room) is refused in the words of the real change.
Result<Outcomes> Committer::tryApply(std::vector<Object> objs) {
  Change c = begin(store_.servicesTouchedBy(objs));
  auto outs = store_.apply(std::move(objs), &c.undo);  // on error store_ is as it was
  if (!outs) return outs;
  return dryPlan(std::move(c), std::move(*outs));
}

Result<Outcomes> Committer::tryRemove(const std::vector<ObjectRef>& refs,
                                      std::vector<std::string>* missing) {
  std::set<Store::Key> touched;
  for (const auto& r : refs) touched.merge(store_.servicesTouchedBy(r.kind, r.ns, r.name));
  Change c = begin(std::move(touched));
  auto outs = store_.removeAll(refs, &c.undo, missing);
  if (!outs) return outs;
  return dryPlan(std::move(c), std::move(*outs));
}

Result<Outcomes> Committer::edit(const ObjectRef& ref, const Edit& fn, bool dry) {
  auto cur = store_.find(ref);
  if (!cur) return cur.error();
  auto next = fn(toJson(*cur));
  if (!next) return next.error();
  std::vector<Object> objs;
  objs.push_back(std::move(*next));
  return dry ? tryApply(std::move(objs)) : apply(std::move(objs));
}

Result<Outcomes> Committer::dryPlan(Change c, Outcomes outcomes) {
  auto planned = plan(c, externalAfter(c), /*dry=*/true);
  store_.revert(std::move(c.undo));
  if (!planned)
    return Error{planned.error().code,
                 "error: " + planned.error().message + "; nothing was applied"};
  return outcomes;
}

Result<Outcomes> Committer::remove(const std::vector<ObjectRef>& refs,
                                   std::vector<std::string>* missing) {
  std::set<Store::Key> touched;
  for (const auto& r : refs) touched.merge(store_.servicesTouchedBy(r.kind, r.ns, r.name));
  Change c = begin(std::move(touched));
  auto outs = store_.removeAll(refs, &c.undo, missing);
  if (!outs) return outs.error();
  return commit(std::move(c), std::move(*outs));
}

Result<Outcomes> Committer::replace(const std::vector<std::string>& kinds,
                                    std::vector<Object> objs) {
  for (const auto& k : kinds)
    if (!kindInfo(k))
      return Error{EINVAL,
                   fmt::format("error: the server doesn't have a resource type {}", goQuote(k))};
  for (const auto& o : objs)
    if (std::find(kinds.begin(), kinds.end(), kindOf(o)) == kinds.end())
      return Error{
          EINVAL, fmt::format("error: a resync of {} cannot carry {} {}/{}", fmt::join(kinds, ", "),
                              kindOf(o), metaOf(o).ns, metaOf(o).name)};
  // Orphans (stored, no longer listed) are deleted first: a listed object
  // may take over what one of them held (a ClusterIP, a nodePort).
  const std::vector<ObjectRef> orphans = store_.notListed(kinds, objs);
  std::set<Store::Key> touched = store_.servicesTouchedBy(objs);
  for (const auto& r : orphans) touched.merge(store_.servicesTouchedBy(r.kind, r.ns, r.name));
  Change c = begin(std::move(touched));
  Outcomes outcomes;
  if (!orphans.empty()) {
    auto removed = store_.removeAll(orphans, &c.undo);
    if (!removed) return removed.error();  // nothing was removed
    outcomes = std::move(*removed);
  }
  if (!objs.empty()) {
    auto applied = store_.apply(std::move(objs), &c.undo);
    if (!applied) {
      store_.revert(std::move(c.undo));
      return applied.error();
    }
    outcomes.insert(outcomes.end(), std::make_move_iterator(applied->begin()),
                    std::make_move_iterator(applied->end()));
  }
  return commit(std::move(c), std::move(outcomes));
}

bool Committer::externalAfter(const Change& c) const {
  // Whether node-facing frontends exist depends on the Services alone (and
  // the pools, whose effect is recorded as Service changes): a change that
  // names no Service keeps the last answer instead of deriving every
  // Service's external frontends again.
  return c.undo.services.empty() && externalKnown_ ? external_
                                                   : !store_.externalFrontends().empty();
}

Result<Plan> Committer::plan(const Change& c, bool external, bool dry) {
  if (!deltaOk_ || external) return maps_.plan(desiredFrontends(!dry));
  // Only the touched Services' frontends can differ from the maps.
  std::vector<Frontend> after = store_.frontendsOf(c.touched);
  std::set<FrontendKey> kept;
  for (const auto& f : after) kept.insert(f.key);
  std::vector<FrontendKey> removed;
  for (const auto& f : c.before)
    if (!kept.count(f.key)) removed.push_back(f.key);
  if (!dry) extWarnings_.update({});
  return maps_.planDelta(after, removed);
}

Result<Outcomes> Committer::commit(Change c, Outcomes outcomes) {
  const bool external = externalAfter(c);

  // 1. Plan.
  auto planned = plan(c, external);
  if (!planned) {
    store_.revert(std::move(c.undo));
    return Error{planned.error().code,
                 "error: " + planned.error().message + "; nothing was applied"};
  }
  // 2 and 3. Write the maps, persist.
  bool triedSave = false;
  if (auto st = writeAndPersist(std::move(*planned), c.undo, triedSave); !st) {
    rollBack(std::move(c.undo), triedSave);
    return st.error();
  }
  // 4. Answer.
  deltaOk_ = !external;
  external_ = external;
  externalKnown_ = true;
  if (onServicesChanged_) {
    for (const auto& [key, before] : c.undo.services) c.touched.insert(key);
    onServicesChanged_(store_, c.touched);
  }
  if (!invalid_.empty()) invalid_ = store_.invalidObjects();
  if (onChange_) onChange_(store_);
  return outcomes;
}

Status Committer::writeAndPersist(Plan plan, const Store::Undo& undo, bool& triedSave) {
  // The maps first: the dataplane gets the change without waiting for the
  // state file; the answer waits for both. A large change is persisted on
  // another thread while the maps are written (the file does not depend on
  // them, and its serializing and fsync take less time than the map writes
  // of the same change); a small one (a journal append) right after the
  // maps, as a thread would only delay the map write.
  constexpr size_t kSaveAsideOps = 4096;
  std::future<Status> saved;
  if (plan.ops.size() >= kSaveAsideOps) {
    triedSave = true;
    saved = std::async(std::launch::async, [&] { return state_.saveChange(store_, undo); });
  }
  Status mapped = maps_.apply(std::move(plan));
  Status persisted;
  if (saved.valid()) {
    persisted = saved.get();
  } else if (mapped) {
    triedSave = true;
    persisted = state_.saveChange(store_, undo);
  }
  if (!mapped)
    return Error{mapped.error().code,
                 "error: writing the dataplane maps failed: " + mapped.error().message +
                     "; the previous state was restored"};
  if (!persisted)
    return Error{persisted.error().code, "error: cannot persist state: " +
                                             persisted.error().message + "; nothing was applied"};
  return {};
}

void Committer::rollBack(Store::Undo undo, bool triedSave) {
  deltaOk_ = false;
  store_.revert(std::move(undo));
  auto back = maps_.plan(desiredFrontends());
  if (!back)
    fmt::print(stderr, "svclbd: restoring the maps after a failed change: {}\n",
               back.error().message);
  else if (auto st = maps_.apply(std::move(*back)); !st)
    fmt::print(stderr, "svclbd: restoring the maps after a failed change: {}\n",
               st.error().message);
  // A new snapshot of the previous state: drops whatever part of the
  // change reached the disk (or only the directory fsync failed).
  if (triedSave)
    if (auto st = state_.saveAll(store_); !st)
      fmt::print(stderr, "svclbd: restoring the state file after a failed change: {}\n",
                 st.error().message);
}

}  // namespace svclb
