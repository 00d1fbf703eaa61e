// A set of warnings that may persist across syncs (an unusable NIC, a
// clashing externalIP, a health-check port in use): each is logged when it
// appears, not again on every sync while it lasts.
#pragma once

#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

namespace svclb {

class WarnOnce {
 public:
  // `now`: the warnings of this sync; the new ones are printed.
  void update(const std::vector<std::string>& now) {
    std::set<std::string> next(now.begin(), now.end());
    for (const auto& w : next)
      if (!seen_.count(w)) fmt::print(stderr, "svclbd: warning: {}\n", w);
    seen_ = std::move(next);
  }

 private:
  std::set<std::string> seen_;  // the last sync's
};

}  // namespace svclb
