// The IPv6 counterpart of the ARP responder (issue 16, lib/l2.h ndp_answer)
// through BPF_PROG_TEST_RUN on both node-NIC programs: a Neighbor
// Solicitation for an address in l2_ndp_v1 on the NIC it arrives on becomes
// the Neighbor Advertisement, sent back out (XDP_TX / a redirect from
// svclb_tc_ext_in); every other frame is left untouched. Frames are built
// here byte by byte and the NA's checksum is computed here, independently
// of the program.
//
// XDP's and tc's test runs need the ingress interface to exist: the suite
// runs in the private "node" of tests/testlib/node_netns.h (nic0 announces,
// pod0 is another interface) and leaves it afterwards.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"
#include "tests/testlib/packet6.h"

namespace svclb::bpftest {
namespace {

using testlib::Addr6;
using testlib::ip6;
using Mac = std::array<uint8_t, 6>;

constexpr uint32_t kXdpPass = 2, kXdpTx = 3;
constexpr uint32_t kTcRedirect = 7;
constexpr uint32_t kTcUntouched = static_cast<uint32_t>(-1);  // TC_ACT_UNSPEC

const Mac kNicMac = {0x02, 0x77, 0, 0, 0, 0x02};    // what l2_ndp_v1 answers with
const Mac kAskerMac = {0x02, 0x77, 0, 0, 0, 0x64};  // the soliciting host
const std::string kVip6 = "fd00:77::200";           // announced on nic0
const std::string kAsker6 = "fd00:77::100";
const std::string kSolicitedNode = "ff02::1:ff00:200";  // of kVip6

testlib::NodeNetns& netns() {
  static testlib::NodeNetns n;
  return n;
}

uint16_t be16at(const Bytes& f, size_t off) {
  return static_cast<uint16_t>(f.at(off) << 8 | f.at(off + 1));
}
Mac macAt(const Bytes& f, size_t off) {
  Mac m{};
  for (size_t i = 0; i < 6; ++i) m[i] = f.at(off + i);
  return m;
}
Addr6 addrAt(const Bytes& f, size_t off) {
  Addr6 a{};
  for (size_t i = 0; i < 16; ++i) a[i] = f.at(off + i);
  return a;
}

// RFC 4443 2.3: the one's complement of the one's complement sum of the
// pseudo-header (source, destination, upper-layer length, next header 58)
// and the ICMPv6 message at `l4` of `len` bytes (checksum field included:
// a correct message then sums to 0).
uint16_t icmp6Checksum(const Bytes& f, size_t l4, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i < 32; i += 2) sum += be16at(f, 14 + 8 + i);  // source, destination
  sum += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff) + 58;
  for (size_t i = 0; i < len; i += 2)
    sum += static_cast<uint32_t>(f.at(l4 + i) << 8) + (i + 1 < len ? f.at(l4 + i + 1) : 0u);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

Bytes sllaOption(const Mac& m) {
  Bytes o = {1, 1};
  o.insert(o.end(), m.begin(), m.end());
  return o;
}
// RFC 7527's nonce option (type 14), 6 bytes of nonce.
const Bytes kNonceOption = {14, 1, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6};

// A Neighbor Solicitation (or, with `type`, another ICMPv6 message of the
// same shape) in an Ethernet frame from the asker.
struct Ns {
  std::string src = kAsker6, dst = kSolicitedNode, target = kVip6;
  uint8_t type = 135, code = 0, hopLimit = 255;
  std::vector<Bytes> options = {sllaOption(kAskerMac)};
  bool hopByHop = false;     // an 8-byte hop-by-hop options header first
  bool badChecksum = false;  // the checksum off by one

  Bytes build() const {
    const Addr6 d = ip6(dst);
    Bytes f = {0x33, 0x33, d[12], d[13], d[14], d[15]};
    f.insert(f.end(), kAskerMac.begin(), kAskerMac.end());
    f.push_back(0x86);
    f.push_back(0xdd);
    f.resize(14 + 40, 0);
    f[14] = 0x60;
    f[14 + 6] = hopByHop ? 0 : 58;
    f[14 + 7] = hopLimit;
    const Addr6 s = ip6(src);
    std::copy(s.begin(), s.end(), f.begin() + 14 + 8);
    std::copy(d.begin(), d.end(), f.begin() + 14 + 24);
    if (hopByHop) f.insert(f.end(), {58, 0, 1, 4, 0, 0, 0, 0});  // PadN
    const size_t l4 = f.size();
    f.insert(f.end(), {type, code, 0, 0, 0, 0, 0, 0});
    const Addr6 t = ip6(target);
    f.insert(f.end(), t.begin(), t.end());
    for (const Bytes& o : options) f.insert(f.end(), o.begin(), o.end());
    const size_t plen = f.size() - 14 - 40;
    f[14 + 4] = static_cast<uint8_t>(plen >> 8);
    f[14 + 5] = static_cast<uint8_t>(plen);
    uint16_t c = icmp6Checksum(f, l4, f.size() - l4);
    if (badChecksum) c = static_cast<uint16_t>(c + 1);
    f[l4 + 2] = static_cast<uint8_t>(c >> 8);
    f[l4 + 3] = static_cast<uint8_t>(c);
    return f;
  }
};

// Which program, and what it returns for an answer / an untouched frame.
struct Path {
  const char* name;
  uint32_t answered, untouched;
};
const Path kXdp = {"xdp", kXdpTx, kXdpPass}, kTc = {"tc", kTcRedirect, kTcUntouched};

class Ndp : public BpfTestP<Path> {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    suiteErr_ = netns().up();
  }
  static void TearDownTestSuite() { netns().down(); }
  void SetUp() override {
    BpfTestP<Path>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(suiteErr_, "") << "setting up the test namespace";
    ASSERT_TRUE(dp().txPorts().update(netns().nic0(), netns().nic0()));
    announce(kVip6, netns().nic0());
  }
  void announce(const std::string& addr, uint32_t ifindex) {
    l2_ndp_key k{};
    const Addr6 a = ip6(addr);
    std::memcpy(&k.addr, a.data(), sizeof(k.addr));
    k.ifindex = ifindex;
    l2_arp_value v{};
    std::copy(kNicMac.begin(), kNicMac.end(), v.mac);
    ASSERT_TRUE(dp().l2Ndp().update(k, v));
  }
  RunResult run(const Bytes& in, uint32_t ifindex = 0) {
    if (ifindex == 0) ifindex = netns().nic0();
    return GetParam().answered == kXdpTx ? testRunXdp(dp().xdpProgFd(), in, ifindex)
                                         : testRunTc(dp().tcExtProgFd(), in, ifindex);
  }
  static std::string suiteErr_;
};
std::string Ndp::suiteErr_;

// Every field of the NA the program made, and its checksum.
void expectNa(const Bytes& out, const Mac& ethDst, const std::string& ipDst, bool solicited) {
  ASSERT_EQ(out.size(), 14u + 40 + 32) << "Ethernet + IPv6 + NA + TLLA option";
  EXPECT_EQ(macAt(out, 0), ethDst) << "Ethernet destination";
  EXPECT_EQ(macAt(out, 6), kNicMac) << "Ethernet source: the announced MAC";
  EXPECT_EQ(be16at(out, 12), 0x86dd);
  EXPECT_EQ(out[14], 0x60) << "version 6, traffic class 0";
  EXPECT_EQ(out[15], 0);
  EXPECT_EQ(be16at(out, 16), 0) << "flow label 0";
  EXPECT_EQ(be16at(out, 18), 32) << "payload length";
  EXPECT_EQ(out[20], 58) << "next header ICMPv6";
  EXPECT_EQ(out[21], 255) << "hop limit";
  EXPECT_EQ(addrAt(out, 22), ip6(kVip6)) << "source: the target";
  EXPECT_EQ(addrAt(out, 38), ip6(ipDst)) << "destination";
  const size_t l4 = 54;
  EXPECT_EQ(out[l4], 136) << "type: Neighbor Advertisement";
  EXPECT_EQ(out[l4 + 1], 0) << "code";
  EXPECT_EQ(out[l4 + 4], solicited ? 0x60 : 0x20)
      << "flags: Router clear, Override set, Solicited " << (solicited ? "set" : "clear");
  EXPECT_EQ(out[l4 + 5], 0);
  EXPECT_EQ(out[l4 + 6], 0);
  EXPECT_EQ(out[l4 + 7], 0);
  EXPECT_EQ(addrAt(out, l4 + 8), ip6(kVip6)) << "target";
  EXPECT_EQ(out[l4 + 24], 2) << "option: Target Link-Layer Address";
  EXPECT_EQ(out[l4 + 25], 1) << "option length (8 bytes)";
  EXPECT_EQ(macAt(out, l4 + 26), kNicMac) << "target link-layer address";
  EXPECT_EQ(icmp6Checksum(out, l4, 32), 0) << "ICMPv6 checksum";
  // The checksum as a sender computes it (field zeroed), compared directly.
  Bytes z = out;
  z[l4 + 2] = z[l4 + 3] = 0;
  EXPECT_EQ(be16at(out, l4 + 2), icmp6Checksum(z, l4, 32));
}

struct AnsweredCase {
  std::string what;
  Ns ns;
  bool dad = false;
};

TEST_P(Ndp, SolicitationForAnnouncedAddressIsAnswered) {
  std::vector<AnsweredCase> cases;
  cases.push_back({"with SLLA (same length)", Ns{}});
  Ns noSlla;
  noSlla.options = {};
  cases.push_back({"without SLLA (the frame grows)", noSlla});
  Ns extra;
  extra.options = {sllaOption(kAskerMac), kNonceOption};
  cases.push_back({"SLLA and a nonce (the frame shrinks)", extra});
  Ns nonceFirst;
  nonceFirst.options = {kNonceOption, sllaOption(kAskerMac)};
  cases.push_back({"nonce before SLLA", nonceFirst});
  Ns unicast;  // neighbour unreachability detection: to the address itself
  unicast.dst = kVip6;
  unicast.options = {};
  cases.push_back({"unicast NUD probe", unicast});
  Ns dad;
  dad.src = "::";
  dad.options = {};
  cases.push_back({"DAD probe", dad, true});
  Ns dadNonce = dad;
  dadNonce.options = {kNonceOption};
  cases.push_back({"DAD probe with a nonce", dadNonce, true});

  for (const AnsweredCase& c : cases) {
    SCOPED_TRACE(c.what);
    const Bytes in = c.ns.build();
    auto r = run(in);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.retval, GetParam().answered)
        << verdictName(GetParam().answered == kXdpTx ? Prog::Xdp : Prog::Tc, r.retval);
    if (c.dad)
      expectNa(r.out, Mac{0x33, 0x33, 0, 0, 0, 1}, "ff02::1", false);
    else
      expectNa(r.out, kAskerMac, c.ns.src, true);
  }
  EXPECT_EQ(allDrops().packets, 0u);
}

TEST_P(Ndp, EverythingElseIsUntouched) {
  std::vector<std::pair<std::string, Bytes>> cases;
  auto ns = [](auto change) {
    Ns n;
    change(n);
    return n.build();
  };
  cases.push_back({"unknown target", ns([](Ns& n) { n.target = "fd00:77::201"; })});
  cases.push_back({"hop limit 254", ns([](Ns& n) { n.hopLimit = 254; })});
  cases.push_back({"hop limit 64", ns([](Ns& n) { n.hopLimit = 64; })});
  cases.push_back({"code 1", ns([](Ns& n) { n.code = 1; })});
  cases.push_back({"multicast target", ns([](Ns& n) { n.target = "ff02::1"; })});
  cases.push_back({"bad checksum", ns([](Ns& n) { n.badChecksum = true; })});
  cases.push_back({"option of length 0", ns([](Ns& n) {
                     n.options = {{1, 0, 0, 0, 0, 0, 0, 0}};
                   })});
  cases.push_back({"option past the message", ns([](Ns& n) {
                     n.options = {{1, 2, 0x02, 0x77, 0, 0, 0, 0x64}};
                   })});
  cases.push_back({"trailing bytes short of an option", ns([](Ns& n) {
                     n.options = {sllaOption(kAskerMac), {14, 1, 0, 0}};
                   })});
  cases.push_back({"DAD probe with SLLA", ns([](Ns& n) { n.src = "::"; })});
  cases.push_back({"DAD probe not to the solicited-node group", ns([](Ns& n) {
                     n.src = "::";
                     n.dst = "ff02::1";
                     n.options = {};
                   })});
  cases.push_back({"multicast source", ns([](Ns& n) { n.src = "ff02::2"; })});
  cases.push_back(
      {"behind a hop-by-hop header (left to the stack)", ns([](Ns& n) { n.hopByHop = true; })});
  cases.push_back({"longer than NDP_NS_MAX (left to the stack)", ns([](Ns& n) {
                     n.options = {sllaOption(kAskerMac), kNonceOption, kNonceOption,
                                  kNonceOption,          kNonceOption, kNonceOption};
                   })});
  cases.push_back({"Neighbor Advertisement", ns([](Ns& n) { n.type = 136; })});
  cases.push_back({"Router Solicitation", ns([](Ns& n) { n.type = 133; })});
  cases.push_back({"Router Advertisement", ns([](Ns& n) { n.type = 134; })});
  cases.push_back({"echo request", ns([](Ns& n) { n.type = 128; })});
  Bytes truncated = Ns{}.build();
  truncated.resize(14 + 40 + 20);
  cases.push_back({"truncated message", truncated});
  // BPF_PROG_TEST_RUN refuses an IPv6 skb shorter than its header
  // (-EINVAL), so only XDP can be given one.
  if (GetParam().answered == kXdpTx) {
    Bytes shortHdr = Ns{}.build();
    shortHdr.resize(14 + 30);
    cases.push_back({"truncated IPv6 header", shortHdr});
  }
  testlib::Frame6 udp;
  udp.src = kAsker6;
  udp.dst = kVip6;
  udp.proto = 17;
  udp.dport = 53;
  cases.push_back({"UDP to the announced address", udp.build()});
  testlib::Frame6 echo = udp;
  echo.proto = 58;
  echo.hopLimit = 255;
  cases.push_back({"ICMPv6 echo to the announced address", echo.build()});

  for (const auto& [what, in] : cases) {
    auto r = run(in);
    EXPECT_EQ(r.err, 0) << what;
    EXPECT_EQ(r.retval, GetParam().untouched) << what;
    EXPECT_EQ(r.out, in) << what;
  }
  // The announced address, asked on another interface.
  const Bytes in = Ns{}.build();
  auto r = run(in, netns().pod0());
  EXPECT_EQ(r.retval, GetParam().untouched) << "wrong ifindex";
  EXPECT_EQ(r.out, in) << "wrong ifindex";
  // ... and answered there once announced there too.
  announce(kVip6, netns().pod0());
  r = run(in, netns().pod0());
  EXPECT_EQ(r.retval, GetParam().answered) << "announced on pod0 too";
  EXPECT_EQ(allDrops().packets, 0u);
}

// ARP keeps working beside NDP on the same programs.
TEST_P(Ndp, ArpStillAnswered) {
  l2_arp_key k{htonl(testlib::ip4("192.168.77.200")), netns().nic0()};
  l2_arp_value v{};
  std::copy(kNicMac.begin(), kNicMac.end(), v.mac);
  ASSERT_TRUE(dp().l2Arp().update(k, v));
  const Bytes req = PacketBuilder::arpRequest("192.168.77.100", "192.168.77.200").build();
  auto r = run(req);
  EXPECT_EQ(r.retval, GetParam().answered);
  EXPECT_EQ(be16at(r.out, 14 + 6), 2) << "ARP reply";
}

// The same answers taken by a real kernel: svclb_tc_ext_in on the tc
// ingress of nic0 (a veth, where svclbd runs no XDP) answers for kVip6,
// and the host on its peer nic0p (fd00:77::100) resolves the address to
// nic0's MAC; adding kVip6 to nic0p itself fails DAD (our answer to its
// probe). Without the program neither happens: nic0 does not own kVip6.
std::string shOut(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof(buf), p)) out += buf;
    pclose(p);
  }
  return out;
}

class NdpKernel : public BpfTest {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    suiteErr_ = netns().up({"ip -6 addr add fd00:77::100/64 dev nic0p nodad"});
  }
  static void TearDownTestSuite() { netns().down(); }
  void SetUp() override {
    BpfTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_EQ(suiteErr_, "") << "setting up the test namespace";
    l2_ndp_key k{};
    const Addr6 a = ip6(kVip6);
    std::memcpy(&k.addr, a.data(), sizeof(k.addr));
    k.ifindex = netns().nic0();
    l2_arp_value v{};
    std::copy(kNicMac.begin(), kNicMac.end(), v.mac);
    ASSERT_TRUE(dp().l2Ndp().update(k, v));
    hook_.sz = sizeof(hook_);
    hook_.ifindex = static_cast<int>(netns().nic0());
    hook_.attach_point = BPF_TC_INGRESS;
    int err = bpf_tc_hook_create(&hook_);
    ASSERT_TRUE(err == 0 || err == -EEXIST) << "clsact on nic0: " << err;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = dp().tcExtProgFd());
    ASSERT_EQ(bpf_tc_attach(&hook_, &opts), 0) << "svclb_tc_ext_in on nic0";
    attached_ = true;
  }
  void TearDown() override {
    if (attached_) {
      hook_.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook_);  // the clsact qdisc and our filter with it
    }
    std::system("ip -6 neigh flush dev nic0p >/dev/null 2>&1");
    std::system("ip -6 addr del fd00:77::200/64 dev nic0p >/dev/null 2>&1");
  }
  // `ip -6 <what> show ...` polled until it contains `want` (bounded: 3 s).
  static std::string waitFor(const std::string& cmd, const std::string& want) {
    std::string out;
    for (int i = 0; i < 150; ++i) {
      out = shOut(cmd);
      if (out.find(want) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return out;
  }
  static std::string suiteErr_;
  bpf_tc_hook hook_{};
  bool attached_ = false;
};
std::string NdpKernel::suiteErr_;

TEST_F(NdpKernel, PeerResolvesTheAnnouncedAddress) {
  // A datagram to kVip6 from nic0p's host makes its kernel solicit it.
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(9);
  const Addr6 a = ip6(kVip6);
  std::memcpy(&to.sin6_addr, a.data(), 16);
  EXPECT_EQ(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1)
      << std::strerror(errno);
  close(fd);
  const std::string out = waitFor("ip -6 neigh show " + kVip6 + " dev nic0p", "REACHABLE");
  EXPECT_NE(out.find("lladdr 02:77:00:00:00:02"), std::string::npos) << out;
  EXPECT_NE(out.find("REACHABLE"), std::string::npos) << "a solicited NA confirms: " << out;
}

TEST_F(NdpKernel, PeerDadForTheAnnouncedAddressFails) {
  ASSERT_EQ(std::system(("ip -6 addr add " + kVip6 + "/64 dev nic0p").c_str()), 0);
  const std::string out = waitFor("ip -6 addr show dev nic0p", "dadfailed");
  EXPECT_NE(out.find("dadfailed"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Programs, Ndp, ::testing::Values(kXdp, kTc),
                         [](const ::testing::TestParamInfo<Path>& i) {
                           return std::string(i.param.name);
                         });

}  // namespace
}  // namespace svclb::bpftest
