// When svclbd's FlowFilterKeeper rebuilds flow_filter_v1 (loader/flow_filter.h):
// a broken trigger would show only as lost savings, never as a wrong packet,
// so the policy is checked here on its own.
#include <gtest/gtest.h>

#include "loader/flow_filter.h"

namespace svclb {
namespace {

using P = FlowFilterPolicy;
using std::chrono::seconds;

TEST(FlowFilterPolicy, EmptyFilterNeverRebuilds) {
  EXPECT_FALSE(P::due(0.0, seconds(3600), P::kQuarterGap));
  EXPECT_FALSE(P::due(0.0, seconds(3600), P::kCrowdedGap));
}

TEST(FlowFilterPolicy, AnySlotRebuildsEveryMinute) {
  EXPECT_FALSE(P::due(0.01, seconds(59), P::kQuarterGap));
  EXPECT_TRUE(P::due(0.01, seconds(60), P::kQuarterGap));
  EXPECT_TRUE(P::due(1e-6, seconds(61), P::kCrowdedGap));
}

TEST(FlowFilterPolicy, QuarterFullRebuildsAfterTheGap) {
  EXPECT_FALSE(P::due(0.2499, seconds(30), P::kQuarterGap));
  EXPECT_FALSE(P::due(0.25, seconds(9), P::kQuarterGap));
  EXPECT_TRUE(P::due(0.25, seconds(10), P::kQuarterGap));
  EXPECT_TRUE(P::due(0.9, seconds(10), P::kQuarterGap));
  // Crowded: a rebuild left it a quarter full, so the next waits a minute.
  EXPECT_FALSE(P::due(0.9, seconds(30), P::kCrowdedGap));
  EXPECT_TRUE(P::due(0.9, seconds(60), P::kCrowdedGap));
}

TEST(FlowFilterPolicy, GapFollowsTheLastRebuild) {
  EXPECT_EQ(P::gapAfter(true, 0.1), P::Duration(P::kQuarterGap));
  EXPECT_EQ(P::gapAfter(true, 0.25), P::Duration(P::kCrowdedGap));
  EXPECT_EQ(P::gapAfter(false, 0.0), P::Duration(P::kCrowdedGap));
  // The tick is finer than every gap (a gap is never overshot by more).
  EXPECT_LT(P::Duration(P::kTick), P::Duration(P::kQuarterGap));
}

}  // namespace
}  // namespace svclb
