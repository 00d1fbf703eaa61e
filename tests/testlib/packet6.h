// IPv6 frames for the packet tests (issue 16): Ethernet/IPv6/[extension
// headers]/{TCP,UDP,ICMPv6} with correct checksums, and the readers that
// check what a program made of one. Addresses are text ("fd00::1");
// ports host order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/testlib/packet.h"

namespace svclb::testlib {

using Addr6 = std::array<uint8_t, 16>;
Addr6 ip6(const std::string& text);  // aborts on a malformed literal
std::string ip6str(const Addr6& a);

constexpr uint8_t kNextHop = 0, kNextRouting = 43, kNextFragment = 44, kNextDest = 60,
                  kNextIcmp6 = 58, kNextNone = 59;

struct Frame6 {
  std::string src = "fd00:10:244:2::5", dst = "fd00:10:96::a";
  uint8_t proto = 6;  // 6 TCP, 17 UDP, 58 ICMPv6
  uint16_t sport = 40000, dport = 80;
  uint8_t tcpFlags = kTcpSyn;
  uint32_t seq = 1000, ack = 0;
  uint8_t icmpType = 128;  // echo request
  size_t payload = 0;      // bytes of 0xab after the L4 header
  uint8_t hopLimit = 64;
  // Extension headers in order before the L4 header: {type, total bytes}
  // (hop-by-hop / routing / destination options: a multiple of 8, >= 8,
  // PadN-filled; fragment: 8, with fragOffset8/fragMore below).
  std::vector<std::pair<uint8_t, size_t>> ext;
  uint16_t fragOffset8 = 0;
  bool fragMore = false;
  uint32_t fragId = 0x12345678;
  bool udpChecksumZero = false;
  Bytes build() const;
};

struct Parsed6 {
  Addr6 saddr{}, daddr{};
  uint8_t proto = 0;  // the L4 protocol after the extension headers
  size_t l4Off = 0;   // from the frame start
  uint16_t payloadLen = 0;
  uint16_t sport = 0, dport = 0;  // TCP/UDP
  uint8_t hopLimit = 0;
};
std::optional<Parsed6> parse6(const Bytes& frame);

// An ICMPv6 error (type/code; `info`: the MTU of a packet too big) from
// `src` to `dst` quoting `quote` (an IPv6 packet: a frame's bytes after its
// Ethernet header), with a correct checksum.
Bytes icmp6Error(const std::string& src, const std::string& dst, uint8_t type, uint8_t code,
                 const Bytes& quote, uint32_t info = 0);

// Cuts `frame` (Ethernet/IPv6/L4, no extension headers) into fragments as
// an IPv6 source does: each an IPv6 header, a fragment header (identification
// `id`, next header the L4 protocol) and at most `maxFragPayload` bytes of
// the L4 datagram (a multiple of 8 but the last). reassemble6() puts such
// fragments (any order) back into one frame; nullopt if they do not fit
// together or their addresses differ (no receiver would reassemble them).
std::vector<Bytes> fragment6(const Bytes& frame, size_t maxFragPayload, uint32_t id);
std::optional<Bytes> reassemble6(const std::vector<Bytes>& fragments);

// The TCP / UDP / ICMPv6 checksum over the IPv6 pseudo-header verifies
// (a UDP checksum 0 is not OK: IPv6 makes it mandatory).
bool l4Checksum6Ok(const Bytes& frame);

}  // namespace svclb::testlib
