#include "tests/testlib/packet6.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace svclb::testlib {
namespace {

void put16(Bytes& f, size_t off, uint16_t v) {
  f[off] = static_cast<uint8_t>(v >> 8);
  f[off + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& f, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) f[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint32_t sum16(const uint8_t* d, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>((d[i] << 8) | d[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(d[len - 1] << 8);
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
// Checksum of an L4 message at `l4` of `len` bytes under the pseudo-header
// of the IPv6 header at `l3`.
uint16_t l4Sum6(const Bytes& f, size_t l3, size_t l4, size_t len, uint8_t proto) {
  uint32_t s = sum16(&f[l3 + 8], 32, 0);
  s += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff) + proto;
  return fold(sum16(&f[l4], len, s));
}

}  // namespace

Addr6 ip6(const std::string& text) {
  Addr6 a{};
  if (inet_pton(AF_INET6, text.c_str(), a.data()) != 1) {
    std::fprintf(stderr, "ip6: bad address %s\n", text.c_str());
    std::abort();
  }
  return a;
}

std::string ip6str(const Addr6& a) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, a.data(), buf, sizeof(buf)) ? buf : "?";
}

// A frame's Ethernet header (IPv6 ethertype), with room reserved for the rest.
Bytes ethernet6() {
  static const uint8_t kEth[14] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd};
  Bytes f;
  f.reserve(2048);
  f.insert(f.end(), kEth, kEth + sizeof(kEth));
  return f;
}

Bytes Frame6::build() const {
  Bytes f = ethernet6();
  const size_t l3 = f.size();
  f.resize(l3 + 40);
  f[l3] = 0x60;
  f[l3 + 7] = hopLimit;
  const Addr6 s = ip6(src), d = ip6(dst);
  std::copy(s.begin(), s.end(), f.begin() + static_cast<long>(l3 + 8));
  std::copy(d.begin(), d.end(), f.begin() + static_cast<long>(l3 + 24));
  size_t nhOff = l3 + 6;  // where the next "next header" byte goes
  for (auto [type, len] : ext) {
    f[nhOff] = type;
    const size_t at = f.size();
    f.resize(at + len);
    nhOff = at;
    if (type == kNextFragment) {
      put16(f, at + 2, static_cast<uint16_t>(fragOffset8 << 3 | (fragMore ? 1 : 0)));
      put32(f, at + 4, fragId);
    } else {
      f[at + 1] = static_cast<uint8_t>(len / 8 - 1);
      f[at + 2] = 1;  // PadN covering the rest
      f[at + 3] = static_cast<uint8_t>(len - 4);
    }
  }
  f[nhOff] = proto;
  const size_t l4 = f.size();
  const size_t hdr = proto == 6 ? 20 : 8;
  f.resize(l4 + hdr);
  if (proto == 6) {
    put16(f, l4, sport);
    put16(f, l4 + 2, dport);
    put32(f, l4 + 4, seq);
    put32(f, l4 + 8, ack ? ack : (tcpFlags & kTcpAck) ? 1 : 0);
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = tcpFlags;
    put16(f, l4 + 14, 64240);
  } else if (proto == 17) {
    put16(f, l4, sport);
    put16(f, l4 + 2, dport);
  } else {
    f[l4] = icmpType;
    put16(f, l4 + 4, 0x4242);
    put16(f, l4 + 6, 1);
  }
  f.insert(f.end(), payload, 0xab);
  const size_t l4len = f.size() - l4;
  if (proto == 17) put16(f, l4 + 4, static_cast<uint16_t>(l4len));
  put16(f, l3 + 4, static_cast<uint16_t>(f.size() - l3 - 40));
  const size_t csumOff = l4 + (proto == 6 ? 16 : proto == 17 ? 6 : 2);
  if (!(proto == 17 && udpChecksumZero)) {
    uint16_t c = l4Sum6(f, l3, l4, l4len, proto);
    if (proto == 17 && c == 0) c = 0xffff;
    put16(f, csumOff, c);
  }
  return f;
}

Bytes icmp6Error(const std::string& src, const std::string& dst, uint8_t type, uint8_t code,
                 const Bytes& quote, uint32_t info) {
  Bytes f = ethernet6();
  const size_t l3 = f.size();
  f.resize(l3 + 40 + 8);
  f[l3] = 0x60;
  f[l3 + 6] = kNextIcmp6;
  f[l3 + 7] = 64;
  const Addr6 s = ip6(src), d = ip6(dst);
  std::copy(s.begin(), s.end(), f.begin() + static_cast<long>(l3 + 8));
  std::copy(d.begin(), d.end(), f.begin() + static_cast<long>(l3 + 24));
  const size_t l4 = l3 + 40;
  f[l4] = type;
  f[l4 + 1] = code;
  put32(f, l4 + 4, info);
  f.insert(f.end(), quote.begin(), quote.end());
  put16(f, l3 + 4, static_cast<uint16_t>(f.size() - l4));
  put16(f, l4 + 2, l4Sum6(f, l3, l4, f.size() - l4, kNextIcmp6));
  return f;
}

std::optional<Parsed6> parse6(const Bytes& f) {
  if (f.size() < 54 || f[12] != 0x86 || f[13] != 0xdd || (f[14] >> 4) != 6) return std::nullopt;
  Parsed6 p;
  const size_t l3 = 14;
  p.payloadLen = static_cast<uint16_t>(f[l3 + 4] << 8 | f[l3 + 5]);
  p.hopLimit = f[l3 + 7];
  std::copy(f.begin() + 22, f.begin() + 38, p.saddr.begin());
  std::copy(f.begin() + 38, f.begin() + 54, p.daddr.begin());
  if (l3 + 40 + p.payloadLen > f.size()) return std::nullopt;
  uint8_t nh = f[l3 + 6];
  size_t off = l3 + 40;
  for (int i = 0;
       i < 8 && (nh == kNextHop || nh == kNextRouting || nh == kNextDest || nh == kNextFragment);
       ++i) {
    if (off + 8 > f.size()) return std::nullopt;
    const size_t len = nh == kNextFragment ? 8 : (static_cast<size_t>(f[off + 1]) + 1) * 8;
    nh = f[off];
    off += len;
  }
  p.proto = nh;
  p.l4Off = off;
  if ((nh == 6 && off + 20 <= f.size()) || (nh == 17 && off + 8 <= f.size())) {
    p.sport = static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
    p.dport = static_cast<uint16_t>(f[off + 2] << 8 | f[off + 3]);
  }
  return p;
}

bool l4Checksum6Ok(const Bytes& f) {
  auto p = parse6(f);
  if (!p) return false;
  const size_t end = 14 + 40 + p->payloadLen;
  if (p->l4Off >= end) return false;
  const size_t csumOff = p->l4Off + (p->proto == 6 ? 16 : p->proto == 17 ? 6 : 2);
  if (csumOff + 2 > end) return false;
  if (p->proto == 17 && f[csumOff] == 0 && f[csumOff + 1] == 0) return false;
  // Summing the message with its checksum in place gives 0 (folded ~).
  return l4Sum6(f, 14, p->l4Off, end - p->l4Off, p->proto) == 0;
}

std::vector<Bytes> fragment6(const Bytes& frame, size_t maxFragPayload, uint32_t id) {
  constexpr size_t l3 = 14, l4 = l3 + 40;
  std::vector<Bytes> out;
  if (frame.size() <= l4 || maxFragPayload < 8) return out;
  const uint8_t proto = frame[l3 + 6];
  const size_t step = maxFragPayload & ~static_cast<size_t>(7);
  for (size_t off = 0; off < frame.size() - l4; off += step) {
    const size_t n = std::min(step, frame.size() - l4 - off);
    const bool more = off + n < frame.size() - l4;
    Bytes f(frame.begin(), frame.begin() + static_cast<long>(l4));
    f[l3 + 6] = kNextFragment;
    f.resize(l4 + 8);
    f[l4] = proto;
    put16(f, l4 + 2, static_cast<uint16_t>((off / 8) << 3 | (more ? 1 : 0)));
    put32(f, l4 + 4, id);
    f.insert(f.end(), frame.begin() + static_cast<long>(l4 + off),
             frame.begin() + static_cast<long>(l4 + off + n));
    put16(f, l3 + 4, static_cast<uint16_t>(8 + n));
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<Bytes> reassemble6(const std::vector<Bytes>& fragments) {
  constexpr size_t l3 = 14, fh = l3 + 40;
  std::optional<Bytes> first;
  std::vector<std::pair<size_t, Bytes>> parts;  // offset, data
  size_t total = 0;
  bool sawLast = false;
  for (const auto& f : fragments) {
    if (f.size() < fh + 8 || f[l3 + 6] != kNextFragment) return std::nullopt;
    if (!std::equal(f.begin() + l3 + 8, f.begin() + l3 + 40, fragments[0].begin() + l3 + 8))
      return std::nullopt;
    const uint16_t field = static_cast<uint16_t>(f[fh + 2] << 8 | f[fh + 3]);
    const size_t off = static_cast<size_t>(field >> 3) * 8;
    const size_t n = static_cast<size_t>(f[l3 + 4] << 8 | f[l3 + 5]) - 8;
    if (f.size() < fh + 8 + n) return std::nullopt;
    if (off == 0) first = f;
    if (!(field & 1)) {
      sawLast = true;
      total = off + n;
    }
    parts.emplace_back(off, Bytes(f.begin() + static_cast<long>(fh + 8),
                                  f.begin() + static_cast<long>(fh + 8 + n)));
  }
  if (!first || !sawLast) return std::nullopt;
  Bytes data(total, 0);
  std::vector<bool> have(total, false);
  for (const auto& [off, bytes] : parts) {
    if (off + bytes.size() > total) return std::nullopt;
    for (size_t i = 0; i < bytes.size(); ++i) {
      data[off + i] = bytes[i];
      have[off + i] = true;
    }
  }
  for (bool h : have)
    if (!h) return std::nullopt;
  Bytes out(first->begin(), first->begin() + static_cast<long>(fh));
  out[l3 + 6] = (*first)[fh];  // the fragment header's next header
  out.insert(out.end(), data.begin(), data.end());
  put16(out, l3 + 4, static_cast<uint16_t>(total));
  return out;
}

}  // namespace svclb::testlib
