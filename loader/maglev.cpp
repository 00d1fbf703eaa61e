#include "loader/maglev.h"

#include <algorithm>
#include <numeric>
#include <queue>
#include <tuple>

namespace svclb {

namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;  // MurmurHash3 x64 constants
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

constexpr uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
constexpr uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Little-endian load of up to 8 bytes, byte by byte: same value on any host.
uint64_t loadLe(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

uint64_t mixBlock(uint64_t k) {
  k *= kC1;
  k = rotl64(k, 31);
  k *= kC2;
  return k;
}

}  // namespace

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  if (n % 3 == 0) return n == 3;
  for (uint64_t d = 5; d * d <= n; d += 6) {
    if (n % d == 0 || n % (d + 2) == 0) return false;
  }
  return true;
}

uint64_t maglevHash64(std::string_view data, uint64_t seed) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  uint64_t h = seed ^ (static_cast<uint64_t>(len) * kC2);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    h ^= mixBlock(loadLe(p + i, 8));
    h = rotl64(h, 27);
    h = h * 5 + 0x52dce729;
  }
  if (i < len) h ^= mixBlock(loadLe(p + i, len - i));
  h ^= static_cast<uint64_t>(len);
  return fmix64(h);
}

MaglevPermutation maglevPermutation(std::string_view key, uint32_t tableSize) {
  MaglevPermutation p;
  if (tableSize < 2) return p;  // degenerate: a single slot
  p.offset = static_cast<uint32_t>(maglevHash64(key, kMaglevOffsetSeed) % tableSize);
  p.skip = static_cast<uint32_t>(maglevHash64(key, kMaglevSkipSeed) % (tableSize - 1) + 1);
  return p;
}

Result<std::vector<uint32_t>> buildMaglevTable(const std::vector<MaglevBackend>& backends,
                                               uint32_t tableSize) {
  if (!isPrime(tableSize) || tableSize > kMaxMaglevTableSize) {
    return Error{EINVAL, "Maglev table size " + std::to_string(tableSize) +
                             " is invalid: it must be a prime no larger than " +
                             std::to_string(kMaxMaglevTableSize) + " (e.g. 16381, 65537, 131071)"};
  }
  const size_t n = backends.size();
  if (n > tableSize) {
    return Error{EINVAL, std::to_string(n) + " backends do not fit a Maglev table of " +
                             std::to_string(tableSize) +
                             " entries: use a table size of at least 100x the backend count"};
  }
  std::vector<uint32_t> table(tableSize, kMaglevEmpty);
  if (n == 0) return table;

  // Canonical order: by key. Keys are unique (checked below), so this order,
  // and hence the table, does not depend on the caller's order.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t x, uint32_t y) { return backends[x].key < backends[y].key; });
  uint32_t maxWeight = 0;
  for (size_t i = 0; i < n; ++i) {
    const MaglevBackend& be = backends[order[i]];
    if (be.weight == 0) {
      return Error{EINVAL, "Maglev backend " + be.key +
                               " has weight 0: weights must be >= 1 (leave a drained "
                               "backend out of the set instead)"};
    }
    if (i > 0 && be.key == backends[order[i - 1]].key) {
      return Error{EINVAL, "Maglev backend " + be.key + " appears twice: keys must be unique"};
    }
    maxWeight = std::max(maxWeight, be.weight);
  }

  // Per backend (canonical order): current slot of its permutation and how
  // far along it is. Walking the permutation incrementally (pos += skip mod M)
  // avoids the 64-bit overflow of offset + j * skip.
  std::vector<uint32_t> pos(n), skip(n);
  for (size_t i = 0; i < n; ++i) {
    const MaglevPermutation p = maglevPermutation(backends[order[i]].key, tableSize);
    pos[i] = p.offset;
    skip[i] = p.skip;
  }
  // One turn: the backend claims the next still-empty slot of its permutation.
  // The permutation visits every slot, so a turn always succeeds while the
  // table is not full.
  auto takeTurn = [&](size_t i) {
    while (table[pos[i]] != kMaglevEmpty) {
      pos[i] = static_cast<uint32_t>((static_cast<uint64_t>(pos[i]) + skip[i]) % tableSize);
    }
    table[pos[i]] = order[i];
    pos[i] = static_cast<uint32_t>((static_cast<uint64_t>(pos[i]) + skip[i]) % tableSize);
  };

  const bool equalWeights =
      std::all_of(backends.begin(), backends.end(),
                  [&](const MaglevBackend& b) { return b.weight == maxWeight; });
  uint32_t filled = 0;
  if (equalWeights) {
    // Classic Maglev: rounds in which every backend takes one turn.
    while (true) {
      for (size_t i = 0; i < n; ++i) {
        takeTurn(i);
        if (++filled == tableSize) return table;
      }
    }
  }

  // Weighted (the rule of Katran's MaglevV2): each round every backend adds
  // its weight to a credit and takes a turn when the credit reaches maxWeight
  // (then pays maxWeight). So after rounds 0..r it has taken
  // floor((r+1) * w / maxWeight) turns, and its k-th turn (k >= 1) falls in
  // round ceil(k * maxWeight / w) - 1; within a round, turns go in canonical
  // order. Rather than visit every backend in every round (O(rounds * N),
  // bad for one heavy backend among many light ones) we replay exactly that
  // sequence from a min-heap of (round of next turn, canonical index): O(M log N).
  // With equal weights this is the classic order above; scaling all weights by
  // a constant leaves the table unchanged.
  using Turn = std::pair<uint64_t, uint32_t>;  // (round, canonical index)
  std::priority_queue<Turn, std::vector<Turn>, std::greater<Turn>> heap;
  std::vector<uint64_t> turnsTaken(n, 0);
  auto roundOfTurn = [&](size_t i, uint64_t k) {
    const uint64_t w = backends[order[i]].weight;
    return (k * maxWeight + w - 1) / w - 1;  // k <= M < 2^24, maxWeight < 2^32: no overflow
  };
  for (size_t i = 0; i < n; ++i) heap.emplace(roundOfTurn(i, 1), static_cast<uint32_t>(i));
  while (true) {
    const uint32_t i = heap.top().second;
    heap.pop();
    takeTurn(i);
    if (++filled == tableSize) return table;
    heap.emplace(roundOfTurn(i, ++turnsTaken[i] + 1), i);
  }
}

double maglevDisruption(const std::vector<uint32_t>& a, const std::vector<MaglevBackend>& ba,
                        const std::vector<uint32_t>& b, const std::vector<MaglevBackend>& bb) {
  if (a.size() != b.size()) return 1.0;
  if (a.empty()) return 0.0;
  auto keyAt = [](const std::vector<MaglevBackend>& bs, uint32_t idx) -> const std::string* {
    return idx < bs.size() ? &bs[idx].key : nullptr;
  };
  size_t changed = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string* ka = keyAt(ba, a[i]);
    const std::string* kb = keyAt(bb, b[i]);
    const bool same = (ka == nullptr || kb == nullptr) ? ka == kb : *ka == *kb;
    if (!same) ++changed;
  }
  return static_cast<double>(changed) / static_cast<double>(a.size());
}

}  // namespace svclb
