// Limits: a state that does not fit the services map is refused before any
// write, with a message naming the limit and the flag.
#include <gtest/gtest.h>

#include "loader/reconcile.h"

namespace svclb {
namespace {

TEST(ReconcileLimits, ServicesMapCapacityIsCheckedUpFront) {
  ActualState a;
  a.svcIds = IdPool(1024);
  a.backendIds = IdPool(1024);
  std::vector<Frontend> want;
  for (uint16_t i = 0; i < 10; ++i) {
    Frontend f;
    f.key = {0x0a600000u + i, 80, 6};
    for (uint32_t b = 1; b <= 9; ++b) {
      BackendSpec spec;
      spec.ip = 0x0af40000u + b;
      spec.port = 8080;
      f.backends.push_back(spec);
    }
    want.push_back(f);
  }
  SyncOptions opts;
  opts.maxServiceEntries = 100;  // exactly 10 masters + 90 slots: fits
  auto ok = planSync(a, want, opts);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  opts.maxServiceEntries = 99;
  auto no = planSync(a, want, opts);
  ASSERT_FALSE(no.ok());
  EXPECT_NE(no.error().message.find("--max-services"), std::string::npos) << no.error().message;
  EXPECT_NE(no.error().message.find("needs 100"), std::string::npos) << no.error().message;
  EXPECT_EQ(a.svcIds.inUse(), 0u);
}

}  // namespace
}  // namespace svclb
