// Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as in
// Katran's MaglevV2: pure table building, no kernel, no maps. The daemon
// writes the result into the per-service lookup table; the BPF side picks
// table[hash(flow) % tableSize]. See docs/maglev.md.
//
// Cross-node contract: every node must build the SAME table from the same
// backend set, so a flow keeps its backend when ECMP moves it to another node.
// The table therefore depends only on the multiset of (key, weight) and the
// table size, never on input order, std::hash, pointers or build flags.
// Changing maglevHash64, its seeds or the fill order is a compatibility break
// between versions; tests/unit/maglev_test.cpp pins them with golden values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace svclb {

struct MaglevBackend {
  std::string key;      // stable identity, e.g. "10.244.1.11:8080"; unique in a set
  uint32_t weight = 1;  // >= 1; 0 is rejected (leave a drained backend out instead)
};

// 16381 is prime: 64 KiB of u32 entries per service, <= 1% imbalance up to 163
// equal backends. Larger services need a larger prime (65537, 131071).
constexpr uint32_t kDefaultMaglevTableSize = 16381;
inline constexpr uint32_t kMaglevEmpty = 0xffffffff;
// Upper bound on tableSize (prime); keeps a bad value from allocating GiBs.
constexpr uint32_t kMaxMaglevTableSize = 16777213;

bool isPrime(uint32_t n);

// Seeds of the two key hashes (offset and skip). Part of the cross-node contract.
constexpr uint64_t kMaglevOffsetSeed = 0x7376636c622d6f66ULL;  // "svclb-of"
constexpr uint64_t kMaglevSkipSeed = 0x7376636c622d736bULL;    // "svclb-sk"

// Fixed, endian-independent 64-bit hash of `data` (MurmurHash3-x64-style
// block mix + fmix64 finalizer). Stable across builds, compilers and nodes.
uint64_t maglevHash64(std::string_view data, uint64_t seed);

// A backend's permutation of the table: slot j of its preference list is
// (offset + j * skip) % tableSize. skip is in [1, tableSize-1], and tableSize
// is prime, so the list visits every slot exactly once.
struct MaglevPermutation {
  uint32_t offset = 0;
  uint32_t skip = 1;
};
MaglevPermutation maglevPermutation(std::string_view key, uint32_t tableSize);

// Builds the lookup table: entry i is an index into `backends` (kMaglevEmpty
// everywhere if `backends` is empty). Deterministic: depends only on the
// multiset of (key, weight) and tableSize, not on the order of `backends`.
// Each backend's share of entries is proportional to its weight; with equal
// weights, counts differ by at most 1 (the classic algorithm).
// Errors (EINVAL): tableSize not prime or > kMaxMaglevTableSize, more
// backends than entries, weight 0, duplicate key.
Result<std::vector<uint32_t>> buildMaglevTable(const std::vector<MaglevBackend>& backends,
                                               uint32_t tableSize);

// Fraction of entries that map to a different backend KEY in `a` (built from
// `ba`) and `b` (built from `bb`). Tables of different sizes share nothing:
// 1.0 (0.0 if both are empty). kMaglevEmpty or an out-of-range index counts
// as "no backend", equal only to itself.
double maglevDisruption(const std::vector<uint32_t>& a, const std::vector<MaglevBackend>& ba,
                        const std::vector<uint32_t>& b, const std::vector<MaglevBackend>& bb);

}  // namespace svclb
