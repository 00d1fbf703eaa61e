// The daemon's side of be_rev_v1 / be_rev6_v1 (maps/svclb_abi.h): each
// backend address:port:proto's designated frontend, a ClusterIP frontend
// (no SVC_F_EXTERNAL) that holds it. That frontend's new flows to it without
// source NAT take one CT entry; the backend's answers find it through this
// map. A designation is kept while its frontend still holds the backend
// (live single-entry flows keep their answers); when it goes, another
// ClusterIP frontend of the same backend, if any, is designated.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "common/result.h"
#include "loader/reconcile.h"
#include "maps/maps.h"

namespace svclb {

class BeRev {
 public:
  struct Key {
    Ip6 addr{};  // IPv4: the first 4 bytes, network order
    uint16_t portBe = 0;
    uint8_t proto = 0;
    bool v6 = false;
    auto operator<=>(const Key&) const = default;
  };
  struct Choice {
    FrontendKey frontend;
    uint32_t svcId = 0;
    bool operator==(const Choice&) const = default;
  };

  // Rebuilds the candidates from `st` and writes both maps whole: a
  // designation the maps already hold is kept if its frontend (same
  // svc_id) still holds the backend; stale entries are removed.
  Status adopt(const ActualState& st, BeRevMap map4, BeRev6Map map6);
  // `touched` frontends changed (or went: absent from `st`): their
  // candidacies are recomputed and the designations that change written.
  Status update(const ActualState& st, const std::vector<FrontendKey>& touched, BeRevMap map4,
                BeRev6Map map6);

  // The designation of a backend, if any (tests, svcctl).
  const Choice* designated(const Key& k) const;
  size_t size() const { return chosen_.size(); }

 private:
  void withdraw(const FrontendKey& f, std::map<Key, bool>& dirty);
  void contribute(const ActualState& st, const FrontendKey& f, std::map<Key, bool>& dirty);
  Status write(const std::map<Key, bool>& dirty, BeRevMap& map4, BeRev6Map& map6) const;

  std::map<FrontendKey, std::vector<Key>> contrib_;            // frontend -> its backends' keys
  std::map<Key, std::map<FrontendKey, uint32_t>> candidates_;  // key -> frontends -> svc_id
  std::map<Key, Choice> chosen_;
};

}  // namespace svclb
