#include "loader/be_rev.h"

#include <arpa/inet.h>

#include <cstring>

namespace svclb {

namespace {

BeRev::Key keyOf(const FrontendKey& f, const ActualBackend& b) {
  BeRev::Key k;
  k.v6 = f.v6();
  if (k.v6)
    k.addr = b.addr6;
  else
    std::memcpy(k.addr.data(), &b.value.addr, sizeof b.value.addr);
  k.portBe = b.value.port;
  k.proto = f.proto;
  return k;
}

bool eligible(const ActualFrontend& fe) { return !(fe.master.flags & SVC_F_EXTERNAL); }

// The map key (be_rev_key or be_rev6_key) of `k`.
template <class MapKey>
MapKey mapKey(const BeRev::Key& k) {
  MapKey out{};
  std::memcpy(&out.addr, k.addr.data(), sizeof out.addr);
  out.port = k.portBe;
  out.proto = k.proto;
  return out;
}

}  // namespace

const BeRev::Choice* BeRev::designated(const Key& k) const {
  auto it = chosen_.find(k);
  return it == chosen_.end() ? nullptr : &it->second;
}

// `f`'s candidacies go; a key it was designated for gets another candidate
// (the first) or none.
void BeRev::withdraw(const FrontendKey& f, std::map<Key, bool>& dirty) {
  auto it = contrib_.find(f);
  if (it == contrib_.end()) return;
  for (const Key& k : it->second) {
    auto c = candidates_.find(k);
    if (c == candidates_.end()) continue;
    c->second.erase(f);
    auto ch = chosen_.find(k);
    if (ch == chosen_.end() || ch->second.frontend != f) continue;
    dirty[k] = true;
    if (c->second.empty())
      chosen_.erase(ch);
    else
      ch->second = {c->second.begin()->first, c->second.begin()->second};
  }
  for (const Key& k : it->second)
    if (auto c = candidates_.find(k); c != candidates_.end() && c->second.empty())
      candidates_.erase(c);
  contrib_.erase(it);
}

// `f`'s backends as they are in `st` become candidates; a key without a
// designation gets `f`.
void BeRev::contribute(const ActualState& st, const FrontendKey& f, std::map<Key, bool>& dirty) {
  auto fe = st.frontends.find(f);
  if (fe == st.frontends.end() || !eligible(fe->second)) return;
  auto& keys = contrib_[f];
  for (const auto& b : fe->second.backends) {
    const Key k = keyOf(f, b);
    keys.push_back(k);
    candidates_[k][f] = fe->second.svcId;
    auto [ch, fresh] = chosen_.try_emplace(k, Choice{f, fe->second.svcId});
    if (fresh) {
      dirty[k] = true;
    } else if (ch->second.frontend == f && ch->second.svcId != fe->second.svcId) {
      ch->second.svcId = fe->second.svcId;  // the frontend was made anew
      dirty[k] = true;
    }
  }
}

Status BeRev::write(const std::map<Key, bool>& dirty, BeRevMap& map4, BeRev6Map& map6) const {
  for (const auto& [k, _] : dirty) {
    const Choice* c = designated(k);
    if (k.v6) {
      if (!c) {
        if (auto st = map6.erase(mapKey<be_rev6_key>(k)); !st && st.error().code != ENOENT)
          return st;
        continue;
      }
      be_rev6_value v{};
      std::memcpy(&v.vip, c->frontend.vip6.data(), sizeof v.vip);
      v.port = htons(c->frontend.port);
      v.svc_id = c->svcId;
      if (auto st = map6.update(mapKey<be_rev6_key>(k), v); !st) return st;
      continue;
    }
    if (!c) {
      if (auto st = map4.erase(mapKey<be_rev_key>(k)); !st && st.error().code != ENOENT) return st;
      continue;
    }
    be_rev_value v{};
    v.vip = htonl(c->frontend.vip);
    v.port = htons(c->frontend.port);
    v.svc_id = c->svcId;
    if (auto st = map4.update(mapKey<be_rev_key>(k), v); !st) return st;
  }
  return {};
}

Status BeRev::update(const ActualState& st, const std::vector<FrontendKey>& touched, BeRevMap map4,
                     BeRev6Map map6) {
  std::map<Key, bool> dirty;
  // Withdraw every touched frontend first, then let them contribute: a
  // frontend that still holds a backend keeps its designation (the choice
  // moved to another candidate is moved back below only if it was left
  // without one).
  std::map<Key, Choice> before;
  for (const auto& f : touched)
    if (auto it = contrib_.find(f); it != contrib_.end())
      for (const Key& k : it->second)
        if (auto ch = chosen_.find(k); ch != chosen_.end()) before.emplace(k, ch->second);
  for (const auto& f : touched) withdraw(f, dirty);
  for (const auto& f : touched) contribute(st, f, dirty);
  // Sticky: a key whose old designated frontend is a candidate again gets
  // it back (same svc_id: its live single-entry flows keep their answers).
  for (const auto& [k, old] : before) {
    auto c = candidates_.find(k);
    if (c == candidates_.end()) continue;
    auto f = c->second.find(old.frontend);
    if (f == c->second.end()) continue;
    chosen_[k] = {old.frontend, f->second};
  }
  // Only what differs from before is written.
  for (auto it = dirty.begin(); it != dirty.end();) {
    auto b = before.find(it->first);
    const Choice* now = designated(it->first);
    if (b != before.end() && now && *now == b->second)
      it = dirty.erase(it);
    else
      ++it;
  }
  return write(dirty, map4, map6);
}

Status BeRev::adopt(const ActualState& st, BeRevMap map4, BeRev6Map map6) {
  contrib_.clear();
  candidates_.clear();
  chosen_.clear();
  std::map<Key, bool> dirty;
  for (const auto& [f, fe] : st.frontends) contribute(st, f, dirty);
  // What the maps hold: kept where it names a candidate with its svc_id.
  std::map<Key, Choice> held;
  auto keep = [&](const Key& k, const FrontendKey& f, uint32_t svcId) {
    held[k] = {f, svcId};
    auto c = candidates_.find(k);
    if (c == candidates_.end()) return;
    auto cand = c->second.find(f);
    if (cand != c->second.end() && cand->second == svcId) chosen_[k] = {f, svcId};
  };
  map4.forEach([&](const be_rev_key& mk, const be_rev_value& v) {
    Key k;
    std::memcpy(k.addr.data(), &mk.addr, sizeof mk.addr);
    k.portBe = mk.port;
    k.proto = mk.proto;
    keep(k, FrontendKey{ntohl(v.vip), ntohs(v.port), mk.proto}, v.svc_id);
  });
  map6.forEach([&](const be_rev6_key& mk, const be_rev6_value& v) {
    Key k;
    k.v6 = true;
    std::memcpy(k.addr.data(), &mk.addr, sizeof mk.addr);
    k.portBe = mk.port;
    k.proto = mk.proto;
    FrontendKey f{0, ntohs(v.port), mk.proto};
    std::memcpy(f.vip6.data(), &v.vip, sizeof v.vip);
    keep(k, f, v.svc_id);
  });
  dirty.clear();
  for (const auto& [k, c] : chosen_)
    if (auto h = held.find(k); h == held.end() || !(h->second == c)) dirty[k] = true;
  for (const auto& [k, _] : held)
    if (!chosen_.count(k)) dirty[k] = true;
  return write(dirty, map4, map6);
}

}  // namespace svclb
