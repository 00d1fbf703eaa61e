// Small byte-level helpers over DNS messages the server already holds as
// wire bytes (a reply from upstream, a cached answer, an answer ldns wrote):
// walking the sections to find TTLs and the OPT record, patching the ID and
// TTLs of a cache hit, truncating to a UDP limit. Parsing a query and
// building an answer is ldns's job (dns/server.cpp); these only touch bytes
// at offsets a walk found, so a cache hit costs a copy, not a parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace svclb::dns::wire {

inline constexpr size_t kHeader = 12;
inline constexpr uint16_t kTypeOPT = 41;

inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// Header fields (RFC 1035 4.1.1).
inline uint16_t id(std::string_view m) { return get16(reinterpret_cast<const uint8_t*>(m.data())); }
inline uint8_t rcode(std::string_view m) { return uint8_t(m[3]) & 0x0f; }
inline uint16_t count(std::string_view m, int section) {  // 0 qd, 1 an, 2 ns, 3 ar
  return get16(reinterpret_cast<const uint8_t*>(m.data()) + 4 + 2 * section);
}

// What a walk over a whole message found.
struct Layout {
  size_t questionEnd = 0;            // offset just past the (first) question
  std::vector<uint32_t> ttlOffsets;  // TTL field of every RR but OPT
  uint32_t minTtl = UINT32_MAX;      // over those RRs
  uint32_t soaNegativeTtl = 0;       // min(SOA TTL, SOA minimum) of an authority SOA
  bool hasSoa = false;
  size_t optOffset = 0, optLength = 0;  // the OPT RR, if any (length 0: none)
};

// Advances `off` past one (possibly compressed) name. False if malformed.
bool skipName(std::string_view m, size_t& off);

// Walks header, questions and every RR. False if the message is malformed
// (truncated, bad name, counts beyond the data).
bool walk(std::string_view m, Layout& out);

// The message cut to header + question (+ OPT when it had one), TC set:
// what goes to a UDP client when the full answer exceeds its limit.
std::string truncated(std::string_view m, const Layout& l);

// A header-only (plus question, plus OPT) answer with `rcode`, for errors:
// `question` is the wire question (name, type, class) or empty. An rcode
// over 15 (BADVERS, 16) puts its upper bits in the OPT (RFC 6891 6.1.3).
std::string errorReply(uint16_t id, uint8_t opcode, bool rd, uint16_t rcode,
                       std::string_view question, bool edns, uint16_t ednsUdpSize);

}  // namespace svclb::dns::wire
