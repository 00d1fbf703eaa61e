#include "dns/wire.h"

namespace svclb::dns::wire {

bool skipName(std::string_view m, size_t& off) {
  const auto* p = reinterpret_cast<const uint8_t*>(m.data());
  for (int labels = 0; labels < 128; ++labels) {
    if (off >= m.size()) return false;
    uint8_t c = p[off];
    if (c == 0) {
      ++off;
      return true;
    }
    if ((c & 0xc0) == 0xc0) {  // a pointer ends the name
      off += 2;
      return off <= m.size();
    }
    if (c & 0xc0) return false;  // 0x40/0x80: extended label types, unused
    off += 1 + c;
  }
  return false;
}

bool walk(std::string_view m, Layout& out) {
  if (m.size() < kHeader) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(m.data());
  size_t off = kHeader;
  for (uint16_t i = 0, n = count(m, 0); i < n; ++i) {
    if (!skipName(m, off) || off + 4 > m.size()) return false;
    off += 4;
    if (i == 0) out.questionEnd = off;
  }
  if (count(m, 0) == 0) out.questionEnd = kHeader;
  for (int section = 1; section <= 3; ++section) {
    for (uint16_t i = 0, n = count(m, section); i < n; ++i) {
      size_t start = off;
      if (!skipName(m, off) || off + 10 > m.size()) return false;
      uint16_t type = get16(p + off);
      uint32_t ttl = get32(p + off + 4);
      uint16_t rdlen = get16(p + off + 8);
      size_t rdata = off + 10;
      if (rdata + rdlen > m.size()) return false;
      if (type == kTypeOPT) {
        out.optOffset = start;
        out.optLength = rdata + rdlen - start;
      } else {
        out.ttlOffsets.push_back(uint32_t(off + 4));
        if (ttl < out.minTtl) out.minTtl = ttl;
        // RFC 2308 5: a negative answer lives min(SOA TTL, SOA MINIMUM);
        // MINIMUM is the last four bytes of the rdata, whatever the names.
        if (section == 2 && type == 6 && rdlen >= 20 && !out.hasSoa) {
          uint32_t minimum = get32(p + rdata + rdlen - 4);
          out.soaNegativeTtl = ttl < minimum ? ttl : minimum;
          out.hasSoa = true;
        }
      }
      off = rdata + rdlen;
    }
  }
  return true;
}

std::string truncated(std::string_view m, const Layout& l) {
  std::string out(m.substr(0, l.questionEnd));
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  p[2] |= 0x02;  // TC
  put16(p + 6, 0);
  put16(p + 8, 0);
  put16(p + 10, l.optLength ? 1 : 0);
  if (l.optLength) out.append(m.substr(l.optOffset, l.optLength));
  return out;
}

std::string errorReply(uint16_t id, uint8_t opcode, bool rd, uint16_t rcode,
                       std::string_view question, bool edns, uint16_t ednsUdpSize) {
  std::string out(kHeader, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  put16(p, id);
  p[2] = uint8_t(0x80 | (opcode & 0x0f) << 3 | (rd ? 1 : 0));  // QR, opcode, RD
  p[3] = uint8_t(0x80 | (rcode & 0x0f));                       // RA, rcode
  put16(p + 4, question.empty() ? 0 : 1);
  put16(p + 10, edns ? 1 : 0);
  out.append(question);
  if (edns) {
    // OPT: root name, type 41, class = our UDP size, TTL 0 (ext rcode,
    // version 0, flags), no options.
    uint8_t opt[11] = {0, 0, kTypeOPT, 0, 0, 0, 0, 0, 0, 0, 0};
    put16(opt + 3, ednsUdpSize);
    opt[5] = uint8_t(rcode >> 4);  // extended rcode
    out.append(reinterpret_cast<const char*>(opt), sizeof opt);
  }
  return out;
}

}  // namespace svclb::dns::wire
