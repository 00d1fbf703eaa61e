// IPv6 frames, random and mutated (issue 16: "the packet fuzzer with v6
// frames and extension headers"), through the pod program
// (svclb_tc_pod_in -> svclb_tc_pod_in6) with BPF_PROG_TEST_RUN, checked
// against an independent model of lib/parse.h's acceptance rules
// (parse_ipv6) and of the one decision these Services allow: a frame the
// model accepts as TCP to [VIP]:80 or UDP to [VIP]:53 is DNATed to the one
// backend (only the destination, its port and the L4 checksum change; a
// checksum valid on input is valid on output); every other frame leaves
// byte-identical with TC_ACT_OK. Extension header chains (hop-by-hop,
// routing, destination options, fragment headers atomic or not, AH, ESP,
// ICMPv6 as a "next header"), lengths, truncations and flipped bytes are
// drawn from a seeded generator; the seed is printed on failure.
#include <arpa/inet.h>
#include <linux/pkt_cls.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>

#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/packet6.h"

namespace svclb::bpftest {
namespace {

using testlib::Addr6;
using testlib::ip6;

const std::string kVip = "fd00:10:96::a";
const std::string kBe = "fd00:10:244:1::11";

// The model: what parse_ipv6 accepts, and where the L4 header is. A
// fragment (not atomic) of TCP/UDP is accepted too: the first parsed as any
// packet, a later one (`later`: no L4 header) up to its fragment header.
struct Accepted {
  size_t l4Off = 0;
  uint8_t proto = 0;
  bool first = false, later = false;
  uint32_t id = 0;  // the fragment header's identification
};
std::optional<Accepted> modelParse(const Bytes& f) {
  if (f.size() < 14 || f[12] != 0x86 || f[13] != 0xdd) return std::nullopt;
  if (f.size() < 54 || (f[14] >> 4) != 6) return std::nullopt;
  const size_t payload = static_cast<size_t>(f[18] << 8 | f[19]);
  if (payload == 0 || payload + 54 > f.size()) return std::nullopt;
  uint8_t nh = f[20];
  size_t off = 54;
  Accepted acc;
  for (int i = 0; i < 4; ++i) {
    if (nh == 6 || nh == 17) break;
    if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51) return std::nullopt;
    if (off + 8 > f.size()) return std::nullopt;
    size_t len;
    if (nh == 44) {
      const int fo = (f[off + 2] << 8) | f[off + 3];
      if (fo & 0xfff9) {
        if (f[off] != 6 && f[off] != 17) return std::nullopt;
        acc.id = static_cast<uint32_t>(f[off + 4]) << 24 | f[off + 5] << 16 | f[off + 6] << 8 |
                 f[off + 7];
        acc.first = true;
        if (fo & 0xfff8) return Accepted{off + 8, f[off], false, true, acc.id};
      }
      len = 8;
    } else if (nh == 51) {
      len = (static_cast<size_t>(f[off + 1]) + 2) * 4;
    } else {
      len = (static_cast<size_t>(f[off + 1]) + 1) * 8;
    }
    nh = f[off];
    off += len;
    if (off > 256) return std::nullopt;
  }
  if (nh != 6 && nh != 17) return std::nullopt;
  const size_t end = 54 + payload;
  if (off + 8 > end) return std::nullopt;
  if (nh == 6) {
    if (off + 20 > end || off + 20 > f.size()) return std::nullopt;
    if ((f[off + 12] >> 4) < 5) return std::nullopt;
  } else if (off + 8 > f.size()) {
    return std::nullopt;
  }
  acc.l4Off = off;
  acc.proto = nh;
  return acc;
}

class V6Fuzz : public BpfTest {};

TEST_F(V6Fuzz, RandomAndMutatedFramesMatchTheModel) {
  // The Services, as v6_test.cpp lays them out: TCP [VIP]:80 and UDP
  // [VIP]:53, each to the one backend kBe (8080 / 5353).
  struct Svc {
    uint16_t port, bePort;
    uint8_t proto;
    uint32_t svcId, beId;
  };
  for (const Svc& s : {Svc{80, 8080, kTcp, 7, 100}, Svc{53, 5353, kUdp, 8, 101}}) {
    svc6_key k{};
    std::memcpy(&k.vip, ip6(kVip).data(), 16);
    k.port = htons(s.port);
    k.proto = s.proto;
    svc_value m{};
    m.svc_id = s.svcId;
    m.count = m.total = 1;
    ASSERT_TRUE(dp().services6().update(k, m));
    k.slot = 1;
    svc_value sl{};
    sl.svc_id = s.svcId;
    sl.backend_id = s.beId;
    ASSERT_TRUE(dp().services6().update(k, sl));
    backend_value b{};
    b.port = htons(s.bePort);
    b.proto = s.proto;
    b.state = BE_STATE_ACTIVE;
    b.svc_id = s.svcId;
    ASSERT_TRUE(dp().backendStats().own(s.beId, s.svcId));
    ASSERT_TRUE(dp().backends().update(s.beId, b));
    backend6_value a{};
    std::memcpy(&a.addr, ip6(kBe).data(), 16);
    ASSERT_TRUE(dp().backends6().update(s.beId, a));
    addFilterElem(LbFilter::ipv6(&k.vip, k.port, false));
    addFilterElem(LbFilter::ipv6(&a.addr, b.port, true));
  }

  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  const uint8_t extTypes[] = {0, 43, 60, 44, 51};
  const uint8_t protos[] = {6, 17, 6, 17, 58, 50, 59};
  const std::string dsts[] = {kVip, kVip, kVip, "fd00:10:96::b", kBe};
  size_t translated = 0, untouched = 0, refused = 0, laterTranslated = 0;
  // The model of frag6_v1 ({source, destination, identification, protocol}
  // of every first fragment parsed -> its ports) and of the flows the
  // translated frames made (a later fragment is translated only on one).
  using Key6 = std::pair<Addr6, Addr6>;
  std::map<std::tuple<Key6, uint32_t, uint8_t>, std::pair<uint16_t, uint16_t>> frags;
  std::set<std::tuple<Key6, uint16_t, uint16_t, uint8_t>> flows;
  std::optional<testlib::Frame6> lastFirst;

  for (int i = 0; i < 5000; ++i) {
    testlib::Frame6 f;
    f.src = "fd00:10:244:2::" + std::to_string(1 + pick(200));
    f.dst = dsts[pick(5)];
    f.proto = protos[pick(7)];
    if (f.proto == 50 || f.proto == 59) f.proto = 6;  // the builder's L4; rewritten below
    const uint16_t ports[] = {80, 53, 81, static_cast<uint16_t>(pick(65536))};
    f.sport = static_cast<uint16_t>(1024 + pick(60000));
    f.dport = ports[pick(4)];
    f.tcpFlags = static_cast<uint8_t>(pick(256));
    f.payload = pick(64);
    f.udpChecksumZero = f.proto == 17 && pick(8) == 0;
    const uint32_t next = pick(8);
    for (uint32_t e = 0; e < pick(7); ++e) {
      const uint8_t t = extTypes[pick(5)];
      f.ext.push_back({t, t == 44 ? 8 : 8 * (1 + pick(3))});
    }
    f.fragOffset8 = pick(3) == 0 ? static_cast<uint16_t>(pick(8)) : 0;
    f.fragMore = pick(4) == 0;
    f.fragId = 1 + pick(4);
    // The last first fragment to a Service; now and then a later fragment
    // of its datagram follows.
    if (f.fragMore && f.fragOffset8 == 0 && f.dst == kVip &&
        ((f.proto == 6 && f.dport == 80) || (f.proto == 17 && f.dport == 53)))
      lastFirst = f;
    else if (lastFirst && pick(4) == 0) {
      f = *lastFirst;
      f.fragOffset8 = static_cast<uint16_t>(1 + pick(8));
      f.fragMore = pick(2) == 0;
    }
    Bytes in = f.build();
    if (next == 0) {  // another "next header" where the L4 one was
      const uint8_t other[] = {50, 59, 58, 2};
      auto p = testlib::parse6(in);
      if (p) {
        size_t nhOff = 20, off = 54;
        for (const auto& [t, len] : f.ext) {
          nhOff = off;
          off += len;
        }
        in[nhOff] = other[pick(4)];
      }
    }
    const uint32_t mutate = pick(10);
    if (mutate == 0 && in.size() > 14) {
      in.resize(14 + pick(static_cast<uint32_t>(in.size() - 14)));
    } else if (mutate == 1) {
      in[14 + pick(static_cast<uint32_t>(in.size() - 14))] ^= static_cast<uint8_t>(1 + pick(255));
    } else if (mutate == 2) {
      in[18] = static_cast<uint8_t>(pick(256));
      in[19] = static_cast<uint8_t>(pick(256));
    }

    auto r = testRun(progFd(Prog::Tc), in);
    // BPF_PROG_TEST_RUN refuses an IPv6 frame shorter than its IPv6 header
    // (the program never sees it).
    if (r.err == -EINVAL && in.size() < 54) {
      ++refused;
      continue;
    }
    ASSERT_EQ(r.err, 0) << "frame " << i << ": " << testlib::hex(in);
    auto acc = modelParse(in);
    Key6 addrs{};
    std::copy(in.begin() + 22, in.begin() + 38, addrs.first.begin());
    if (in.size() >= 54) std::copy(in.begin() + 38, in.begin() + 54, addrs.second.begin());
    if (acc && acc->later) {
      // Its ports from its first fragment; translated (the destination
      // address only) on that flow, else untouched.
      auto it = frags.find({addrs, acc->id, acc->proto});
      const bool nat = it != frags.end() &&
                       flows.count({addrs, it->second.first, it->second.second, acc->proto});
      EXPECT_EQ(r.retval, static_cast<uint32_t>(nat ? TC_ACT_OK : TC_ACT_UNSPEC)) << "frame " << i;
      if (!nat) {
        ASSERT_EQ(r.out, in) << "frame " << i << " (a later fragment, no flow) was changed";
        ++untouched;
        continue;
      }
      ASSERT_EQ(r.out.size(), in.size()) << "frame " << i;
      for (size_t b = 0; b < in.size(); ++b) {
        if (b < 38 || b >= 54) {
          ASSERT_EQ(r.out[b], in[b]) << "frame " << i << " byte " << b;
        }
      }
      Addr6 dst{};
      std::copy(r.out.begin() + 38, r.out.begin() + 54, dst.begin());
      EXPECT_EQ(dst, ip6(kBe)) << "frame " << i;
      ++laterTranslated;
      continue;
    }
    if (acc && acc->first)
      frags[{addrs, acc->id, acc->proto}] = {
          static_cast<uint16_t>(in[acc->l4Off] << 8 | in[acc->l4Off + 1]),
          static_cast<uint16_t>(in[acc->l4Off + 2] << 8 | in[acc->l4Off + 3])};
    bool ours = false;
    uint16_t port = 0, newPort = 0;
    if (acc) {
      port = static_cast<uint16_t>(in[acc->l4Off + 2] << 8 | in[acc->l4Off + 3]);
      Addr6 dst{};
      std::copy(in.begin() + 38, in.begin() + 54, dst.begin());
      ours =
          dst == ip6(kVip) && ((acc->proto == 6 && port == 80) || (acc->proto == 17 && port == 53));
      newPort = acc->proto == 6 ? 8080 : 5353;
    }
    if (ours)
      flows.insert({addrs, static_cast<uint16_t>(in[acc->l4Off] << 8 | in[acc->l4Off + 1]), port,
                    acc->proto});
    if (!ours) {
      EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_UNSPEC)) << "frame " << i;
      ASSERT_EQ(r.out, in) << "frame " << i << " (not ours) was changed: " << testlib::hex(in);
      ++untouched;
      continue;
    }
    EXPECT_EQ(r.retval, static_cast<uint32_t>(TC_ACT_OK)) << "frame " << i;
    ASSERT_EQ(r.out.size(), in.size()) << "frame " << i;
    const size_t csumOff = acc->l4Off + (acc->proto == 6 ? 16 : 6);
    for (size_t b = 0; b < in.size(); ++b) {
      const bool nat = (b >= 38 && b < 54) || b == acc->l4Off + 2 || b == acc->l4Off + 3 ||
                       b == csumOff || b == csumOff + 1;
      if (!nat) {
        ASSERT_EQ(r.out[b], in[b]) << "frame " << i << " byte " << b << " changed";
      }
    }
    Addr6 dst{};
    std::copy(r.out.begin() + 38, r.out.begin() + 54, dst.begin());
    EXPECT_EQ(dst, ip6(kBe)) << "frame " << i;
    EXPECT_EQ(r.out[acc->l4Off + 2] << 8 | r.out[acc->l4Off + 3], newPort) << "frame " << i;
    if (testlib::l4Checksum6Ok(in)) {
      EXPECT_TRUE(testlib::l4Checksum6Ok(r.out)) << "frame " << i;
    }
    if (in[csumOff] == 0 && in[csumOff + 1] == 0 && acc->proto == 17) {
      EXPECT_TRUE(r.out[csumOff] == 0 && r.out[csumOff + 1] == 0) << "UDP checksum 0 stays 0";
    }
    ++translated;
  }
  // The generator reaches both outcomes often.
  EXPECT_GT(translated, 150u);
  EXPECT_GT(untouched, 300u);
  EXPECT_GT(laterTranslated, 10u) << "later fragments on a flow";
  EXPECT_LT(refused, 500u);
}

}  // namespace
}  // namespace svclb::bpftest
