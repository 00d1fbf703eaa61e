// svc_v1 and backends_v1 faked in memory, written op by op as the Syncer
// would (backends_v1 is an array: a freed id reads as an all-zero entry,
// state BE_STATE_EMPTY). Stats, Maglev and range ops are not modelled.
#pragma once

#include <cstring>
#include <map>
#include <variant>

#include "loader/reconcile.h"

namespace svclb::fakes {

struct SvcKeyLess {
  bool operator()(const svc_key& a, const svc_key& b) const {
    return std::memcmp(&a, &b, sizeof a) < 0;
  }
};

struct FakeMaps {
  std::map<svc_key, svc_value, SvcKeyLess> svc;
  std::map<uint32_t, backend_value> backends;

  void apply(const MapOp& op) {
    if (const auto* put = std::get_if<mapop::PutSvc>(&op))
      svc[put->key] = put->value;
    else if (const auto* del = std::get_if<mapop::DeleteSvc>(&op))
      svc.erase(del->key);
    else if (const auto* be = std::get_if<mapop::PutBackend>(&op))
      backends[be->id] = be->value;
    else if (const auto* freed = std::get_if<mapop::FreeBackend>(&op))
      backends[freed->id] = backend_value{};
  }
};

}  // namespace svclb::fakes
