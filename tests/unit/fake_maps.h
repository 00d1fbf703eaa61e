// svc_v1 and backends_v1 faked in memory, written op by op as the Syncer
// would (backends_v1 is an array: a freed id reads as an all-zero entry,
// state BE_STATE_EMPTY). Stats, Maglev and range ops are not modelled.
#pragma once

#include <cstring>
#include <map>

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
    switch (op.kind) {
      case MapOp::Kind::PutSvc:
        svc[op.key] = op.value;
        break;
      case MapOp::Kind::DeleteSvc:
        svc.erase(op.key);
        break;
      case MapOp::Kind::PutBackend:
        backends[op.id] = op.backend;
        break;
      case MapOp::Kind::FreeBackend:
        backends[op.id] = backend_value{};
        break;
      default:
        break;
    }
  }
};

}  // namespace svclb::fakes
