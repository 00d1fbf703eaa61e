// PacketBuilder: Ethernet/IPv4/{TCP,UDP,ICMP} frames (plus ARP, IPv6 and
// VLAN-tagged ones) with correct checksums by default, and knobs that break
// exactly one thing (truncation, IHL, fragments, tot_len, TCP doff, UDP
// checksum 0). Parsers/verifiers check what a program made of a frame.
//
// Addresses and ports are HOST byte order in this API; the frame holds them
// in wire order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace svclb::testlib {

using Bytes = std::vector<uint8_t>;

// "10.96.0.10" -> host-order address (aborts on a malformed literal).
uint32_t ip4(const std::string& dotted);
std::string ip4str(uint32_t hostOrder);

// TCP flag bits (th_flags).
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10;

struct FiveTuple {
  uint32_t saddr = 0, daddr = 0;  // host order
  uint16_t sport = 0, dport = 0;  // host order
  uint8_t proto = 0;
  bool operator==(const FiveTuple&) const = default;
};
std::string toString(const FiveTuple& t);

class PacketBuilder {
 public:
  enum class L3 { IPv4, IPv6, ARP };
  enum class L4 { TCP, UDP, ICMP, Raw };

  // Starting points. The default builder is a TCP SYN 10.0.0.1:40000 ->
  // 10.96.0.10:80 with no payload.
  static PacketBuilder tcp(const std::string& src, uint16_t sport, const std::string& dst,
                           uint16_t dport, uint8_t flags = kTcpSyn);
  static PacketBuilder udp(const std::string& src, uint16_t sport, const std::string& dst,
                           uint16_t dport);
  static PacketBuilder icmpEcho(const std::string& src, const std::string& dst);
  static PacketBuilder arpRequest(const std::string& senderIp, const std::string& targetIp);
  // IPv6/TCP frame (ethertype 0x86dd); ports as given.
  static PacketBuilder ipv6Tcp(uint16_t sport, uint16_t dport);

  PacketBuilder& payload(const Bytes& data);
  PacketBuilder& payload(size_t n, uint8_t fill = 0xab);
  // IP options of `n` bytes (multiple of 4, <= 40): IHL becomes 5 + n/4. The
  // options are a Router Alert followed by NOPs and an EOL: valid ones.
  PacketBuilder& ipOptions(size_t n);
  PacketBuilder& ttl(uint8_t v);
  PacketBuilder& ipId(uint16_t v);
  PacketBuilder& tcpSeq(uint32_t v);
  PacketBuilder& tcpAckSeq(uint32_t v);  // default: 1 with ACK set, else 0
  PacketBuilder& vlan(uint16_t vid);     // 802.1Q tag before the IPv4 ethertype

  // Breakers, applied after the checksums are computed unless noted.
  PacketBuilder& ihlOverride(uint8_t ihl);             // raw IHL nibble (IP csum recomputed)
  PacketBuilder& fragment(uint16_t offset8, bool mf);  // offset in 8-byte units
  PacketBuilder& totLenOverride(uint16_t totLen);      // IP tot_len (IP csum recomputed)
  PacketBuilder& tcpDoff(uint8_t doff);                // raw TCP data offset
  PacketBuilder& udpChecksumZero();                    // UDP csum 0 ("none")
  PacketBuilder& truncate(size_t n);                   // keep the first n bytes of the frame

  Bytes build() const;

 private:
  L3 l3_ = L3::IPv4;
  L4 l4_ = L4::TCP;
  uint32_t saddr_ = 0, daddr_ = 0;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t tcpFlags_ = kTcpSyn;
  uint32_t tcpSeq_ = 1000;
  std::optional<uint32_t> tcpAckSeq_;
  uint8_t ttl_ = 64;
  uint16_t ipId_ = 0x1234;
  Bytes payload_;
  size_t optLen_ = 0;
  std::optional<uint16_t> vlan_;
  std::optional<uint8_t> ihlOverride_;
  uint16_t fragField_ = 0x4000;  // DF
  std::optional<uint16_t> totLen_;
  std::optional<uint8_t> doff_;
  bool udpCsumZero_ = false;
  std::optional<size_t> truncate_;
};

// ---- Parsing and verification of output frames ----------------------------

struct ParsedIpv4 {
  size_t l3Off = 0, l4Off = 0;  // from the frame start
  uint8_t ihl = 0;
  uint16_t totLen = 0;
  uint8_t proto = 0;
  FiveTuple tuple;  // ports 0 for non TCP/UDP
};

// Parses an untagged Ethernet/IPv4 frame whose headers are complete
// (tot_len fits the frame; the L4 header, if TCP/UDP, too).
std::optional<ParsedIpv4> parseIpv4(const Bytes& frame);
std::optional<FiveTuple> fiveTuple(const Bytes& frame);

// One's complement sum folded and inverted, over `data` plus an initial sum.
uint16_t inetChecksum(const uint8_t* data, size_t len, uint32_t initial = 0);

// True when the IPv4 header checksum of the frame verifies.
bool ipv4ChecksumOk(const Bytes& frame);
// True when the TCP/UDP checksum verifies over pseudo-header + segment
// (tot_len - IHL bytes). A UDP checksum of 0 ("none") counts as OK only if
// allowUdpZero.
bool l4ChecksumOk(const Bytes& frame, bool allowUdpZero = false);
// The raw L4 checksum field (wire value as read big-endian).
uint16_t l4ChecksumField(const Bytes& frame);

// Byte offsets (from the frame start) of the fields a DNAT/SNAT may change.
struct NatFieldOffsets {
  size_t ipCheck, saddr, daddr, sport, dport, l4Check;
};
NatFieldOffsets natFieldOffsets(const ParsedIpv4& p);

// Big-endian field readers (offsets from the frame start).
uint16_t be16(const Bytes& b, size_t off);
uint32_t be32(const Bytes& b, size_t off);

// IPv4 fragmentation as a sending stack does it: an untagged Ethernet/IPv4
// frame (no IP options needed) cut into frames of at most `maxIpPayload`
// bytes of IP payload each (a multiple of 8 except the last), each with the
// frame's Ethernet and IP header, its own tot_len, MF/offset and a correct
// IP checksum; the L4 header (and checksum over the whole datagram) stays in
// the first. reassemble() puts such fragments (in any order) back into one
// frame with the first fragment's headers; nullopt if they do not fit
// together.
std::vector<Bytes> fragmentFrame(const Bytes& frame, size_t maxIpPayload);
std::optional<Bytes> reassemble(const std::vector<Bytes>& fragments);

// Hex dump for failure messages.
std::string hex(const Bytes& b);

}  // namespace svclb::testlib
