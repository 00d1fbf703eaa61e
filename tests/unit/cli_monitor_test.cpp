// svcctl monitor's line format (cli/monitor.cpp renderMonitorLine) for the
// objects svclbd sends (docs/api.md "monitor"). No daemon.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include "cli/format.h"

namespace svclb::cli {
namespace {

class CliMonitor : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = getenv("TZ");
    oldTz_ = tz ? tz : "";
    hadTz_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (hadTz_)
      setenv("TZ", oldTz_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }
  std::string oldTz_;
  bool hadTz_ = false;
};

// 2026-12-04T12:00:01.123456789Z
constexpr long long kNs = 1796385601123456789LL;

TEST_F(CliMonitor, DropLineNamesReasonTupleServiceAndInterface) {
  Json ev = {{"type", "drop"},
             {"reason", "source_range"},
             {"timestampNs", kNs},
             {"protocol", "TCP"},
             {"src", "10.0.0.5:40000"},
             {"dst", "10.96.0.20:80"},
             {"svcId", 3},
             {"hook", "tc-pod"},
             {"ifindex", 7},
             {"interface", "node-veth1"},
             {"service", {{"namespace", "default"}, {"name", "web"}, {"port", "http"}}}};
  EXPECT_EQ(renderMonitorLine(ev),
            "12:00:01.123 DROP   source_range         TCP 10.0.0.5:40000 -> 10.96.0.20:80  "
            "svc default/web:http  if node-veth1");
}

TEST_F(CliMonitor, SocketRejectWithoutNameOrInterface) {
  Json ev = {{"type", "reject"},  {"reason", "no_backend"}, {"timestampNs", kNs},
             {"protocol", "UDP"}, {"src", "0.0.0.0:0"},     {"dst", "10.96.0.41:53"},
             {"svcId", 9},        {"hook", "connect"},      {"ifindex", 0}};
  EXPECT_EQ(renderMonitorLine(ev),
            "12:00:01.123 REJECT no_backend           UDP 0.0.0.0:0 -> 10.96.0.41:53  svc id 9  "
            "if connect");
}

TEST_F(CliMonitor, LostLine) {
  Json ev = {
      {"type", "lost"}, {"lost", 12}, {"rateLimited", 10}, {"ringFull", 2}, {"slowClient", 0}};
  EXPECT_EQ(renderMonitorLine(ev),
            "-- 12 events lost (rate limit 10, ring buffer full 2, this reader too slow 0)");
}

}  // namespace
}  // namespace svclb::cli
