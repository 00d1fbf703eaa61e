// The wall clock as status reports it: nanoseconds since the Unix epoch
// (the sync's and the flow filter's last-end timestamps, which a benchmark
// compares with its own clock and with kube-proxy's).
#pragma once

#include <chrono>
#include <cstdint>

namespace svclb {

inline int64_t unixNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace svclb
