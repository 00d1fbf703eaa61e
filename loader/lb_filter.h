// The daemon's side of lb_filter_v1 (svclb_abi.h): the bitmaps of every
// frontend's and of every backend's {address, port} that let the packet path
// pass a packet to no frontend and from no backend without its CT and
// service lookups. Several elements may
// share a bit, so each set bit counts its elements here; a bit is cleared
// when its last element goes. The Syncer adds a plan's new elements before
// the plan's writes and removes the old ones after them, so a frontend or
// backend is in the bitmap whenever the maps hold it.
#pragma once

#include <cstdint>
#include <set>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "maps/maps.h"

namespace svclb {

class LbFilter {
 public:
  struct Elem {
    uint32_t fold = 0;     // IPv4 address, or foldIPv6 of an IPv6 one (network order)
    uint16_t portBe = 0;   // network order
    bool backend = false;  // the backend bitmap (else the frontend one)
    bool operator==(const Elem&) const = default;
  };
  static Elem ipv4(uint32_t addrBe, uint16_t portBe, bool backend) {
    return {addrBe, portBe, backend};
  }
  static Elem ipv6(const void* addr16, uint16_t portBe, bool backend) {
    return {foldIPv6(addr16), portBe, backend};
  }
  // The element's bit in the map: filterBit, in the second bitmap for a
  // backend.
  static uint32_t bitOf(Elem e) {
    return filterBit(e.fold, e.portBe) + (e.backend ? SVCLB_FILTER_BITS : 0);
  }

  LbFilter() : words_(2 * SVCLB_FILTER_WORDS, 0) {}

  void add(Elem e);
  void remove(Elem e);  // of an element added before
  void clear();

  // Writes the words changed since the last write (one batch update).
  Status flush(FilterMap map);
  // Writes every word (after clear() and a rebuild).
  Status writeAll(FilterMap map);

  bool test(Elem e) const;
  size_t bitsSet() const { return counts_.size(); }

 private:
  std::vector<uint64_t> words_;
  std::unordered_map<uint32_t, uint32_t> counts_;  // bit -> elements on it
  std::set<uint32_t> dirty_;                       // words to write
};

// Sets one element's bit in the map itself (read, OR, write), for a test or
// benchmark that writes svc6_v1 and the backend maps by hand instead of
// through the Syncer; the bits the Syncer set stay.
Status setFilterBitInMap(FilterMap map, LbFilter::Elem e);

}  // namespace svclb
