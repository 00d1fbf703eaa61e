#include "loader/lb_filter.h"

namespace svclb {

void LbFilter::add(Elem e) {
  const uint32_t bit = bitOf(e);
  if (counts_[bit]++ == 0) {
    words_[bit / 64] |= uint64_t{1} << (bit % 64);
    dirty_.insert(bit / 64);
  }
}

void LbFilter::remove(Elem e) {
  const uint32_t bit = bitOf(e);
  auto it = counts_.find(bit);
  if (it == counts_.end()) return;
  if (--it->second == 0) {
    counts_.erase(it);
    words_[bit / 64] &= ~(uint64_t{1} << (bit % 64));
    dirty_.insert(bit / 64);
  }
}

void LbFilter::clear() {
  std::fill(words_.begin(), words_.end(), 0);
  counts_.clear();
  dirty_.clear();
}

bool LbFilter::test(Elem e) const {
  const uint32_t bit = bitOf(e);
  return (words_[bit / 64] >> (bit % 64)) & 1;
}

Status LbFilter::flush(FilterMap map) {
  if (dirty_.empty()) return {};
  std::vector<uint32_t> keys(dirty_.begin(), dirty_.end());
  std::vector<uint64_t> vals;
  vals.reserve(keys.size());
  for (uint32_t w : keys) vals.push_back(words_[w]);
  if (auto st = map.updateBatch(keys, vals); !st) return st;
  dirty_.clear();
  return {};
}

Status LbFilter::writeAll(FilterMap map) {
  std::vector<uint32_t> keys(words_.size());
  for (uint32_t i = 0; i < keys.size(); ++i) keys[i] = i;
  if (auto st = map.updateBatch(keys, words_); !st) return st;
  dirty_.clear();
  return {};
}

Status setFilterBitInMap(FilterMap map, LbFilter::Elem e) {
  const uint32_t bit = LbFilter::bitOf(e);
  const uint32_t word = bit / 64;
  const uint64_t v = map.lookup(word).value_or(0) | (uint64_t{1} << (bit % 64));
  return map.update(word, v);
}

}  // namespace svclb
