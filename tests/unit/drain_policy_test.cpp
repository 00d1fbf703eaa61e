// DrainPolicy (loader/drain.h): how often svclbd walks the conntrack maps
// while endpoints removed from TCP frontends are held for their connections.
#include <gtest/gtest.h>

#include "loader/drain.h"

namespace svclb {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using P = DrainPolicy;

TEST(DrainPolicy, EveryTickRightAfterARemoval) {
  EXPECT_EQ(P::gap(seconds(0)), P::Duration(P::kTick));
  EXPECT_EQ(P::gap(seconds(8)), P::Duration(P::kTick));
}

TEST(DrainPolicy, QuarterOfTheTimeSinceTheRemovalThenCapped) {
  EXPECT_EQ(P::gap(seconds(40)), P::Duration(seconds(10)));
  EXPECT_EQ(P::gap(minutes(4)), P::Duration(P::kMaxGap));
  EXPECT_EQ(P::gap(minutes(600)), P::Duration(P::kMaxGap));
}

}  // namespace
}  // namespace svclb
