// Maglev table building (loader/maglev.h), without a kernel: balance,
// disruption on backend changes, order independence, weights, and golden
// values that pin the hash (nodes of different versions must agree).
#include "loader/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace svclb {
namespace {

constexpr uint32_t kBigTableSize = 131071;

// "10.244.<i/250>.<i%250+1>:8080": realistic pod endpoints.
std::vector<MaglevBackend> makeBackends(size_t n, size_t first = 0) {
  std::vector<MaglevBackend> out;
  for (size_t i = first; i < first + n; ++i) {
    out.push_back(
        {"10.244." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080"});
  }
  return out;
}

std::vector<uint32_t> build(const std::vector<MaglevBackend>& bs, uint32_t m) {
  auto r = buildMaglevTable(bs, m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : std::vector<uint32_t>{};
}

std::map<std::string, size_t> countByKey(const std::vector<uint32_t>& t,
                                         const std::vector<MaglevBackend>& bs) {
  std::map<std::string, size_t> counts;
  for (uint32_t idx : t) counts[idx < bs.size() ? bs[idx].key : "<empty>"]++;
  return counts;
}

std::vector<std::string> keysOf(const std::vector<uint32_t>& t,
                                const std::vector<MaglevBackend>& bs) {
  std::vector<std::string> keys;
  for (uint32_t idx : t) keys.push_back(idx < bs.size() ? bs[idx].key : "<empty>");
  return keys;
}

TEST(MaglevTest, IsPrime) {
  for (uint32_t p : {2u, 3u, 5u, 7u, 13u, 251u, 16381u, 65537u, 131071u, 4294967291u}) {
    EXPECT_TRUE(isPrime(p)) << p;
  }
  for (uint32_t c : {0u, 1u, 4u, 9u, 25u, 16383u, 65536u, 131073u, 4294967295u, 4294967293u}) {
    EXPECT_FALSE(isPrime(c)) << c;
  }
  EXPECT_TRUE(isPrime(kDefaultMaglevTableSize));
  EXPECT_TRUE(isPrime(kMaxMaglevTableSize));
}

TEST(MaglevTest, RejectsBadInput) {
  auto bs = makeBackends(3);
  for (uint32_t m : {0u, 1u, 16383u, 65536u}) {
    auto r = buildMaglevTable(bs, m);
    ASSERT_FALSE(r.ok()) << m;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find("prime"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(buildMaglevTable(bs, 16777259).ok());        // prime, but above the cap
  EXPECT_FALSE(buildMaglevTable(makeBackends(4), 3).ok());  // more backends than entries

  auto zero = bs;
  zero[1].weight = 0;
  auto r = buildMaglevTable(zero, kDefaultMaglevTableSize);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("weight 0"), std::string::npos) << r.error().message;

  auto dup = bs;
  dup.push_back(bs[0]);
  r = buildMaglevTable(dup, kDefaultMaglevTableSize);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("twice"), std::string::npos) << r.error().message;
}

TEST(MaglevTest, EmptyBackendSetGivesEmptyTable) {
  auto t = build({}, kDefaultMaglevTableSize);
  ASSERT_EQ(t.size(), kDefaultMaglevTableSize);
  EXPECT_TRUE(std::all_of(t.begin(), t.end(), [](uint32_t v) { return v == kMaglevEmpty; }));
}

TEST(MaglevTest, TinyTablesAreFull) {
  // Edge sizes: M == N, and M = 2 (skip is always 1).
  for (auto [m, n] : {std::pair{2u, 1u}, {2u, 2u}, {3u, 3u}, {7u, 5u}}) {
    auto bs = makeBackends(n);
    auto t = build(bs, m);
    ASSERT_EQ(t.size(), m);
    EXPECT_TRUE(std::all_of(t.begin(), t.end(), [&](uint32_t v) { return v < n; }));
    EXPECT_EQ(countByKey(t, bs).size(), n);  // M >= N: everybody gets an entry
  }
}

// Classic Maglev: every backend gets floor(M/N) or ceil(M/N) entries. One
// entry is a relative error of N/M, hence M = 16381 up to N = 163 and a
// bigger table for N = 1000 (docs/maglev.md).
TEST(MaglevTest, EqualWeightsAreBalanced) {
  for (size_t n : {1, 2, 3, 10, 100, 163, 1000}) {
    const uint32_t m = n <= 163 ? kDefaultMaglevTableSize : kBigTableSize;
    auto bs = makeBackends(n);
    auto counts = countByKey(build(bs, m), bs);
    ASSERT_EQ(counts.size(), n) << "n=" << n;
    const double ideal = static_cast<double>(m) / static_cast<double>(n);
    size_t lo = m, hi = 0;
    for (const auto& [key, c] : counts) {
      EXPECT_LE(std::abs(static_cast<double>(c) - ideal) / ideal, 0.01) << key << " n=" << n;
      lo = std::min(lo, c);
      hi = std::max(hi, c);
    }
    EXPECT_LE(hi - lo, 1u) << "n=" << n;
  }
}

// Removing or adding one of N backends moves its 1/N share plus some
// collateral (Maglev's round-robin fill reshuffles contested slots). The
// collateral shrinks as M/N grows: <= 1% needs M = 131071 from N = 100 on.
// At the default M = 16381, N = 100 measures ~1/N + 1.5% (docs/maglev.md),
// pinned separately below so a regression still shows.
TEST(MaglevTest, RemovingOrAddingOneBackendDisruptsLittle) {
  for (auto [n, m, extra] : {std::tuple{size_t{10}, kDefaultMaglevTableSize, 0.01},
                             {size_t{100}, kBigTableSize, 0.01},
                             {size_t{1000}, kBigTableSize, 0.01},
                             {size_t{100}, kDefaultMaglevTableSize, 0.02}}) {
    const double bound = 1.0 / static_cast<double>(n) + extra;
    auto full = makeBackends(n);
    auto tFull = build(full, m);

    for (size_t victim : {size_t{0}, n / 2, n - 1}) {
      auto fewer = full;
      fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(victim));
      auto tFewer = build(fewer, m);
      const double removed = maglevDisruption(tFull, full, tFewer, fewer);
      EXPECT_LE(removed, bound) << "remove #" << victim << " of " << n << " M=" << m;
      EXPECT_GE(removed, 0.9 / static_cast<double>(n)) << "the victim's entries must move";
    }

    auto more = full;
    more.push_back(makeBackends(1, n)[0]);
    const double added = maglevDisruption(tFull, full, build(more, m), more);
    EXPECT_LE(added, bound) << "add one to " << n << " M=" << m;
    EXPECT_GE(added, 0.9 / static_cast<double>(n + 1)) << "the newcomer must get its share";
  }
}

TEST(MaglevTest, DisruptionComparesKeysNotIndices) {
  std::vector<MaglevBackend> ab = {{"a"}, {"b"}};
  std::vector<MaglevBackend> ba = {{"b"}, {"a"}};
  EXPECT_DOUBLE_EQ(maglevDisruption({0, 1, 0}, ab, {1, 0, 1}, ba), 0.0);
  EXPECT_DOUBLE_EQ(maglevDisruption({0, 1, 0}, ab, {1, 1, 0}, ba), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(maglevDisruption({kMaglevEmpty, 0}, ab, {kMaglevEmpty, kMaglevEmpty}, {}), 0.5);
  EXPECT_DOUBLE_EQ(maglevDisruption({0}, ab, {0, 1}, ab), 1.0);  // sizes differ
  EXPECT_DOUBLE_EQ(maglevDisruption({}, ab, {}, ab), 0.0);
}

TEST(MaglevTest, IndependentOfInputOrder) {
  auto bs = makeBackends(50);
  bs[7].weight = 3;
  bs[20].weight = 2;
  const auto expected = keysOf(build(bs, kDefaultMaglevTableSize), bs);
  std::mt19937 rng(12345);  // fixed seed: reproducible shuffles
  for (int i = 0; i < 5; ++i) {
    auto shuffled = bs;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    auto t = build(shuffled, kDefaultMaglevTableSize);
    EXPECT_EQ(keysOf(t, shuffled), expected) << "shuffle " << i;
  }
  // Two calls on the same input: identical indices, not just keys.
  EXPECT_EQ(build(bs, kDefaultMaglevTableSize), build(bs, kDefaultMaglevTableSize));
}

// Golden values. If these fail, the hash, its seeds or the fill order changed:
// nodes running different versions would pick different backends for the
// same flow (connections break when ECMP moves them between nodes). Only
// change with a release note; see docs/maglev.md.
TEST(MaglevTest, GoldenHash) {
  EXPECT_EQ(maglevHash64("", 1), 0xb456bcfc34c2cb2cULL);
  EXPECT_EQ(maglevHash64("abc", kMaglevOffsetSeed), 0x3643f0c314d31129ULL);  // tail only
  EXPECT_EQ(maglevHash64("10.244.1.11:8080", kMaglevOffsetSeed),
            0xf379e6ae51445f37ULL);  // two blocks
  EXPECT_EQ(maglevHash64("10.244.1.11:8080", kMaglevSkipSeed), 0x992d6760559e3a68ULL);
  EXPECT_EQ(maglevHash64("[fd00:10:244::1b]:8443", kMaglevSkipSeed),
            0xd11e1266dd70c53dULL);  // blocks + tail
  auto p = maglevPermutation("10.244.1.11:8080", kDefaultMaglevTableSize);
  EXPECT_EQ(p.offset, 13401u);
  EXPECT_EQ(p.skip, 9293u);
}

TEST(MaglevTest, GoldenTable) {
  std::vector<MaglevBackend> bs = {
      {"10.244.1.11:8080"}, {"10.244.2.12:8080"}, {"10.244.3.13:8080"}, {"10.244.4.14:8080"}};
  const std::string a = bs[0].key, b = bs[1].key, c = bs[2].key, d = bs[3].key;
  auto t = build(bs, kDefaultMaglevTableSize);
  ASSERT_EQ(t.size(), kDefaultMaglevTableSize);
  EXPECT_EQ(keysOf({t.begin(), t.begin() + 16}, bs),
            (std::vector<std::string>{b, d, c, a, a, b, c, d, d, c, a, a, b, c, d, d}));

  // The weighted fill order is part of the contract too.
  bs[1].weight = 3;
  bs[3].weight = 2;
  t = build(bs, kDefaultMaglevTableSize);
  EXPECT_EQ(keysOf({t.begin(), t.begin() + 16}, bs),
            (std::vector<std::string>{b, d, c, a, a, b, b, b, d, d, a, a, b, b, b, d}));
}

TEST(MaglevTest, WeightsGiveProportionalShares) {
  std::vector<MaglevBackend> bs = {{"10.0.0.1:80", 1}, {"10.0.0.2:80", 2}, {"10.0.0.3:80", 3}};
  const uint32_t m = kDefaultMaglevTableSize;
  auto counts = countByKey(build(bs, m), bs);
  for (const auto& b : bs) {
    const double share = static_cast<double>(counts[b.key]) / m;
    EXPECT_NEAR(share, b.weight / 6.0, 0.01) << b.key;
  }

  // Scaling every weight leaves the table unchanged; equal weights of any
  // value are the classic (unweighted) table.
  auto scaled = bs;
  for (auto& b : scaled) b.weight *= 1000;
  EXPECT_EQ(build(scaled, m), build(bs, m));
  auto ones = makeBackends(5), fives = makeBackends(5);
  for (auto& b : fives) b.weight = 5;
  EXPECT_EQ(build(fives, m), build(ones, m));
}

TEST(MaglevTest, SkewedWeightsAtScale) {
  // One heavy backend among many light ones: shares still follow the weights
  // (within one entry per turn-round) and the build stays fast (heap order).
  auto bs = makeBackends(1000);
  bs[0].weight = 1000;
  auto counts = countByKey(build(bs, kBigTableSize), bs);
  const double sum = 1000 + 999;
  EXPECT_NEAR(counts[bs[0].key] / double{kBigTableSize}, 1000 / sum, 0.01);
  EXPECT_NEAR(counts[bs[1].key] / double{kBigTableSize}, 1 / sum, 0.001);
}

}  // namespace
}  // namespace svclb
