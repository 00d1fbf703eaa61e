#include "tests/testlib/packet.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "model/model.h"

namespace svclb::testlib {

namespace {

constexpr size_t kEthLen = 14;
constexpr uint16_t kEthIp = 0x0800, kEthIpv6 = 0x86dd, kEthArp = 0x0806, kEthVlan = 0x8100;
constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17;

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t off, uint32_t v) {
  put16(b, off, static_cast<uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}
uint32_t get32(const Bytes& b, size_t off) {
  return (static_cast<uint32_t>(get16(b, off)) << 16) | get16(b, off + 2);
}
void append16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// Unfolded one's complement sum of big-endian 16-bit words.
uint32_t sumWords(const uint8_t* d, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>((d[i] << 8) | d[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(d[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint32_t pseudoSum(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t l4len) {
  uint32_t s = 0;
  s += saddr >> 16;
  s += saddr & 0xffff;
  s += daddr >> 16;
  s += daddr & 0xffff;
  s += proto;
  s += l4len;
  return s;
}

void appendMacs(Bytes& f) {
  const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x02}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
  f.insert(f.end(), dst, dst + 6);
  f.insert(f.end(), src, src + 6);
}

void recomputeIpCheck(Bytes& f, size_t l3, size_t ihlBytes) {
  put16(f, l3 + 10, 0);
  put16(f, l3 + 10, inetChecksum(&f[l3], ihlBytes));
}

}  // namespace

uint32_t ip4(const std::string& dotted) {
  in_addr a{};
  if (inet_pton(AF_INET, dotted.c_str(), &a) != 1) {
    std::fprintf(stderr, "bad IPv4 literal %s\n", dotted.c_str());
    std::abort();
  }
  return ntohl(a.s_addr);
}

std::string ip4str(uint32_t hostOrder) { return formatIPv4(hostOrder); }

std::string toString(const FiveTuple& t) {
  return ip4str(t.saddr) + ":" + std::to_string(t.sport) + " -> " + ip4str(t.daddr) + ":" +
         std::to_string(t.dport) + " proto " + std::to_string(t.proto);
}

uint16_t inetChecksum(const uint8_t* data, size_t len, uint32_t initial) {
  while (initial >> 16) initial = (initial & 0xffff) + (initial >> 16);
  return static_cast<uint16_t>(~sumWords(data, len, initial));
}

PacketBuilder PacketBuilder::tcp(const std::string& src, uint16_t sport, const std::string& dst,
                                 uint16_t dport, uint8_t flags) {
  PacketBuilder b;
  b.l4_ = L4::TCP;
  b.saddr_ = ip4(src);
  b.daddr_ = ip4(dst);
  b.sport_ = sport;
  b.dport_ = dport;
  b.tcpFlags_ = flags;
  return b;
}

PacketBuilder PacketBuilder::udp(const std::string& src, uint16_t sport, const std::string& dst,
                                 uint16_t dport) {
  PacketBuilder b = tcp(src, sport, dst, dport);
  b.l4_ = L4::UDP;
  return b;
}

PacketBuilder PacketBuilder::icmpEcho(const std::string& src, const std::string& dst) {
  PacketBuilder b = tcp(src, 0, dst, 0);
  b.l4_ = L4::ICMP;
  return b;
}

PacketBuilder PacketBuilder::arpRequest(const std::string& senderIp, const std::string& targetIp) {
  PacketBuilder b = tcp(senderIp, 0, targetIp, 0);
  b.l3_ = L3::ARP;
  b.l4_ = L4::Raw;
  return b;
}

PacketBuilder PacketBuilder::ipv6Tcp(uint16_t sport, uint16_t dport) {
  PacketBuilder b = tcp("0.0.0.0", sport, "0.0.0.0", dport);
  b.l3_ = L3::IPv6;
  return b;
}

PacketBuilder& PacketBuilder::payload(const Bytes& data) {
  payload_ = data;
  return *this;
}
PacketBuilder& PacketBuilder::payload(size_t n, uint8_t fill) {
  payload_.assign(n, fill);
  for (size_t i = 0; i < n; ++i) payload_[i] = static_cast<uint8_t>(fill + i);
  return *this;
}
PacketBuilder& PacketBuilder::ipOptions(size_t n) {
  if (n % 4 != 0 || n > 40) {
    std::fprintf(stderr, "ipOptions(%zu): must be a multiple of 4, <= 40\n", n);
    std::abort();
  }
  optLen_ = n;
  return *this;
}
PacketBuilder& PacketBuilder::ttl(uint8_t v) {
  ttl_ = v;
  return *this;
}
PacketBuilder& PacketBuilder::ipId(uint16_t v) {
  ipId_ = v;
  return *this;
}
PacketBuilder& PacketBuilder::tcpSeq(uint32_t v) {
  tcpSeq_ = v;
  return *this;
}
PacketBuilder& PacketBuilder::tcpAckSeq(uint32_t v) {
  tcpAckSeq_ = v;
  return *this;
}
PacketBuilder& PacketBuilder::vlan(uint16_t vid) {
  vlan_ = vid;
  return *this;
}
PacketBuilder& PacketBuilder::ihlOverride(uint8_t ihl) {
  ihlOverride_ = ihl;
  return *this;
}
PacketBuilder& PacketBuilder::fragment(uint16_t offset8, bool mf) {
  fragField_ = static_cast<uint16_t>((offset8 & 0x1fff) | (mf ? 0x2000 : 0));
  return *this;
}
PacketBuilder& PacketBuilder::totLenOverride(uint16_t totLen) {
  totLen_ = totLen;
  return *this;
}
PacketBuilder& PacketBuilder::tcpDoff(uint8_t doff) {
  doff_ = doff;
  return *this;
}
PacketBuilder& PacketBuilder::udpChecksumZero() {
  udpCsumZero_ = true;
  return *this;
}
PacketBuilder& PacketBuilder::truncate(size_t n) {
  truncate_ = n;
  return *this;
}

Bytes PacketBuilder::build() const {
  Bytes f;
  appendMacs(f);
  if (vlan_) {
    append16(f, kEthVlan);
    append16(f, *vlan_ & 0x0fff);
  }

  if (l3_ == L3::ARP) {
    append16(f, kEthArp);
    append16(f, 1);       // htype Ethernet
    append16(f, kEthIp);  // ptype
    f.push_back(6);
    f.push_back(4);
    append16(f, 1);  // request
    const uint8_t sha[6] = {0x02, 0, 0, 0, 0, 0x01};
    f.insert(f.end(), sha, sha + 6);
    for (int i = 3; i >= 0; --i) f.push_back(static_cast<uint8_t>(saddr_ >> (8 * i)));
    f.insert(f.end(), 6, 0);
    for (int i = 3; i >= 0; --i) f.push_back(static_cast<uint8_t>(daddr_ >> (8 * i)));
  } else if (l3_ == L3::IPv6) {
    append16(f, kEthIpv6);
    const size_t l3 = f.size();
    const uint16_t l4len = static_cast<uint16_t>(20 + payload_.size());
    f.insert(f.end(), 40, 0);
    f[l3] = 0x60;
    put16(f, l3 + 4, l4len);
    f[l3 + 6] = kProtoTcp;
    f[l3 + 7] = 64;
    f[l3 + 8] = 0xfd;  // fd00::1 -> fd00::2
    f[l3 + 23] = 1;
    f[l3 + 24] = 0xfd;
    f[l3 + 39] = 2;
    const size_t l4 = f.size();
    f.insert(f.end(), 20, 0);
    put16(f, l4, sport_);
    put16(f, l4 + 2, dport_);
    put32(f, l4 + 4, tcpSeq_);
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = tcpFlags_;
    put16(f, l4 + 14, 64240);
    f.insert(f.end(), payload_.begin(), payload_.end());
    uint32_t s = sumWords(&f[l3 + 8], 32, 0) + l4len + kProtoTcp;
    put16(f, l4 + 16, inetChecksum(&f[l4], l4len, s));
  } else {
    append16(f, kEthIp);
    const size_t l3 = f.size();
    const size_t ihlBytes = 20 + optLen_;
    size_t l4hdr = l4_ == L4::TCP ? 20 : l4_ == L4::UDP ? 8 : l4_ == L4::ICMP ? 8 : 0;
    const uint16_t l4len = static_cast<uint16_t>(l4hdr + payload_.size());
    const uint16_t totLen = static_cast<uint16_t>(ihlBytes + l4len);
    const uint8_t proto = l4_ == L4::TCP    ? kProtoTcp
                          : l4_ == L4::UDP  ? kProtoUdp
                          : l4_ == L4::ICMP ? kProtoIcmp
                                            : 253;

    f.insert(f.end(), ihlBytes, 0);
    f[l3] = static_cast<uint8_t>(0x40 | (ihlBytes / 4));
    put16(f, l3 + 2, totLen);
    put16(f, l3 + 4, ipId_);
    put16(f, l3 + 6, fragField_);
    f[l3 + 8] = ttl_;
    f[l3 + 9] = proto;
    put32(f, l3 + 12, saddr_);
    put32(f, l3 + 16, daddr_);
    if (optLen_ > 0) {
      // Router Alert (RFC 2113), then NOPs, then EOL.
      f[l3 + 20] = 0x94;
      f[l3 + 21] = 4;
      for (size_t i = 24; i < ihlBytes; ++i) f[l3 + i] = 0x01;
      if (ihlBytes > 24) f[l3 + ihlBytes - 1] = 0x00;
    }

    const size_t l4 = f.size();
    f.insert(f.end(), l4hdr, 0);
    if (l4_ == L4::TCP) {
      put16(f, l4, sport_);
      put16(f, l4 + 2, dport_);
      put32(f, l4 + 4, tcpSeq_);
      put32(f, l4 + 8, tcpAckSeq_ ? *tcpAckSeq_ : (tcpFlags_ & kTcpAck) ? 1 : 0);
      f[l4 + 12] = static_cast<uint8_t>((doff_ ? *doff_ : 5) << 4);
      f[l4 + 13] = tcpFlags_;
      put16(f, l4 + 14, 64240);
    } else if (l4_ == L4::UDP) {
      put16(f, l4, sport_);
      put16(f, l4 + 2, dport_);
      put16(f, l4 + 4, l4len);
    } else if (l4_ == L4::ICMP) {
      f[l4] = 8;  // echo request
      put16(f, l4 + 4, 0x4242);
      put16(f, l4 + 6, 1);
    }
    f.insert(f.end(), payload_.begin(), payload_.end());

    if (l4_ == L4::TCP || l4_ == L4::UDP) {
      const size_t csumOff = l4 + (l4_ == L4::TCP ? 16 : 6);
      uint16_t c = inetChecksum(&f[l4], l4len, pseudoSum(saddr_, daddr_, proto, l4len));
      if (l4_ == L4::UDP && c == 0) c = 0xffff;
      if (l4_ == L4::UDP && udpCsumZero_) c = 0;
      put16(f, csumOff, c);
    } else if (l4_ == L4::ICMP) {
      put16(f, l4 + 2, inetChecksum(&f[l4], l4len));
    }

    if (ihlOverride_) f[l3] = static_cast<uint8_t>(0x40 | (*ihlOverride_ & 0x0f));
    if (totLen_) put16(f, l3 + 2, *totLen_);
    recomputeIpCheck(f, l3, ihlBytes);
  }

  if (truncate_ && *truncate_ < f.size()) f.resize(*truncate_);
  return f;
}

std::optional<ParsedIpv4> parseIpv4(const Bytes& f) {
  if (f.size() < kEthLen + 20 || get16(f, 12) != kEthIp) return std::nullopt;
  ParsedIpv4 p;
  p.l3Off = kEthLen;
  if ((f[p.l3Off] >> 4) != 4) return std::nullopt;
  p.ihl = f[p.l3Off] & 0x0f;
  if (p.ihl < 5) return std::nullopt;
  p.l4Off = p.l3Off + p.ihl * 4u;
  p.totLen = get16(f, p.l3Off + 2);
  p.proto = f[p.l3Off + 9];
  if (p.totLen < p.ihl * 4u || kEthLen + p.totLen > f.size()) return std::nullopt;
  p.tuple.saddr = get32(f, p.l3Off + 12);
  p.tuple.daddr = get32(f, p.l3Off + 16);
  p.tuple.proto = p.proto;
  if (p.proto == kProtoTcp || p.proto == kProtoUdp) {
    const size_t hdr = p.proto == kProtoTcp ? 20 : 8;
    if (p.totLen < p.ihl * 4u + hdr) return std::nullopt;
    p.tuple.sport = get16(f, p.l4Off);
    p.tuple.dport = get16(f, p.l4Off + 2);
  }
  return p;
}

std::optional<FiveTuple> fiveTuple(const Bytes& frame) {
  auto p = parseIpv4(frame);
  if (!p) return std::nullopt;
  return p->tuple;
}

bool ipv4ChecksumOk(const Bytes& f) {
  auto p = parseIpv4(f);
  if (!p) return false;
  return sumWords(&f[p->l3Off], p->ihl * 4u, 0) == 0xffff;
}

uint16_t l4ChecksumField(const Bytes& f) {
  auto p = parseIpv4(f);
  if (!p) return 0;
  return get16(f, p->l4Off + (p->proto == kProtoTcp ? 16 : 6));
}

bool l4ChecksumOk(const Bytes& f, bool allowUdpZero) {
  auto p = parseIpv4(f);
  if (!p || (p->proto != kProtoTcp && p->proto != kProtoUdp)) return false;
  if (p->proto == kProtoUdp && l4ChecksumField(f) == 0) return allowUdpZero;
  const uint16_t l4len = static_cast<uint16_t>(p->totLen - p->ihl * 4u);
  uint32_t s = pseudoSum(p->tuple.saddr, p->tuple.daddr, p->proto, l4len);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return sumWords(&f[p->l4Off], l4len, s) == 0xffff;
}

NatFieldOffsets natFieldOffsets(const ParsedIpv4& p) {
  NatFieldOffsets o{};
  o.ipCheck = p.l3Off + 10;
  o.saddr = p.l3Off + 12;
  o.daddr = p.l3Off + 16;
  o.sport = p.l4Off;
  o.dport = p.l4Off + 2;
  o.l4Check = p.l4Off + (p.proto == kProtoTcp ? 16 : 6);
  return o;
}

uint16_t be16(const Bytes& b, size_t off) { return get16(b, off); }
uint32_t be32(const Bytes& b, size_t off) { return get32(b, off); }

std::vector<Bytes> fragmentFrame(const Bytes& frame, size_t maxIpPayload) {
  const size_t ihl = static_cast<size_t>(frame.at(kEthLen) & 0x0f) * 4;
  const size_t hdr = kEthLen + ihl;
  const size_t payload = get16(frame, kEthLen + 2) - ihl;
  const size_t chunk = maxIpPayload & ~static_cast<size_t>(7);
  std::vector<Bytes> out;
  for (size_t off = 0; off < payload; off += chunk) {
    const size_t n = std::min(chunk, payload - off);
    Bytes f(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(hdr));
    f.insert(f.end(), frame.begin() + static_cast<std::ptrdiff_t>(hdr + off),
             frame.begin() + static_cast<std::ptrdiff_t>(hdr + off + n));
    put16(f, kEthLen + 2, static_cast<uint16_t>(ihl + n));
    put16(f, kEthLen + 6, static_cast<uint16_t>((off / 8) | (off + n < payload ? 0x2000 : 0)));
    recomputeIpCheck(f, kEthLen, ihl);
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<Bytes> reassemble(const std::vector<Bytes>& fragments) {
  std::optional<Bytes> first;
  std::vector<std::pair<size_t, Bytes>> parts;  // offset, payload
  size_t total = 0;
  bool sawLast = false;
  for (const auto& f : fragments) {
    if (f.size() < kEthLen + 20) return std::nullopt;
    const size_t ihl = static_cast<size_t>(f[kEthLen] & 0x0f) * 4;
    const uint16_t field = get16(f, kEthLen + 6);
    const size_t off = static_cast<size_t>(field & 0x1fff) * 8;
    const size_t n = get16(f, kEthLen + 2) - ihl;
    if (f.size() < kEthLen + ihl + n) return std::nullopt;
    if (off == 0) first = f;
    if (!(field & 0x2000)) {
      sawLast = true;
      total = off + n;
    }
    parts.emplace_back(off, Bytes(f.begin() + static_cast<std::ptrdiff_t>(kEthLen + ihl),
                                  f.begin() + static_cast<std::ptrdiff_t>(kEthLen + ihl + n)));
  }
  if (!first || !sawLast) return std::nullopt;
  const size_t ihl = static_cast<size_t>((*first)[kEthLen] & 0x0f) * 4;
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
  Bytes out(first->begin(), first->begin() + static_cast<std::ptrdiff_t>(kEthLen + ihl));
  out.insert(out.end(), data.begin(), data.end());
  put16(out, kEthLen + 2, static_cast<uint16_t>(ihl + total));
  put16(out, kEthLen + 6, 0);
  recomputeIpCheck(out, kEthLen, ihl);
  return out;
}

std::string hex(const Bytes& b) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += buf;
    s += (i % 16 == 15) ? '\n' : ' ';
  }
  return s;
}

}  // namespace svclb::testlib
