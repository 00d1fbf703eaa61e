// Table: new flows to a Service without a usable endpoint, through both
// programs. TCP is answered with a RST and UDP with an ICMP port
// unreachable, sent back toward the client (tc: TC_ACT_REDIRECT, XDP:
// XDP_TX) and counted as svc_stats.rejects; what cannot be answered (a RST,
// a packet with IP options) is dropped and counted under its drop reason.
#include <tuple>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::be16;
using testlib::be32;
using testlib::ip4;
using testlib::kTcpAck;
using testlib::kTcpFin;
using testlib::kTcpRst;
using testlib::kTcpSyn;

const std::string kEmptyVip = "10.96.0.13";
constexpr uint8_t kRstAck = 0x14, kRst = 0x04;

struct RejectCase {
  std::string description;
  std::vector<Frontend> frontends;  // map setup
  Bytes input;
  FrontendKey svc;
  Verdict verdict;
  // Reject (TCP): the RST's seq, ack_seq and flag byte.
  uint32_t rstSeq = 0, rstAck = 0;
  uint8_t rstFlags = 0;
  // Drop: the reason counted.
  uint32_t dropReason = 0;
};

void PrintTo(const RejectCase& c, std::ostream* os) { *os << c.description; }

std::vector<Frontend> withNotReady() {
  auto fs = standardFrontends();
  fs.push_back(frontend("10.96.0.14", 80, kTcp,
                        {backend("10.244.1.51:80", EndpointState::NotReady, false),
                         backend("10.244.1.52:80", EndpointState::Terminating, false)},
                        "notready"));
  return fs;
}

std::vector<RejectCase> rejectCases() {
  const auto base = standardFrontends();
  const FrontendKey tcp{ip4(kEmptyVip), 80, kTcp}, udp{ip4(kEmptyVip), 53, kUdp};
  auto syn = [&] { return PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80).tcpSeq(1000); };
  Bytes padded = syn().build();
  padded.insert(padded.end(), 6, 0);
  return {
      {"TCP SYN", base, syn().build(), tcp, Verdict::Reject, 0, 1001, kRstAck},
      {"TCP SYN with payload", base, syn().payload(10).build(), tcp, Verdict::Reject, 0, 1011,
       kRstAck},
      {"TCP SYN with Ethernet padding", base, padded, tcp, Verdict::Reject, 0, 1001, kRstAck},
      {"TCP ACK with data", base,
       PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80, kTcpAck)
           .tcpSeq(5000)
           .tcpAckSeq(777)
           .payload(100)
           .build(),
       tcp, Verdict::Reject, 777, 0, kRst},
      {"TCP FIN without ACK", base,
       PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80, kTcpFin).tcpSeq(9).build(), tcp,
       Verdict::Reject, 0, 10, kRstAck},
      {"TCP SYN to a service with only NotReady and terminating endpoints", withNotReady(),
       PacketBuilder::tcp(kClient, 40000, "10.96.0.14", 80).tcpSeq(1000).build(),
       FrontendKey{ip4("10.96.0.14"), 80, kTcp}, Verdict::Reject, 0, 1001, kRstAck},
      {"UDP", base, PacketBuilder::udp(kClient, 40001, kEmptyVip, 53).payload(12).build(), udp,
       Verdict::Reject},
      {"UDP without payload", base, PacketBuilder::udp(kClient, 40001, kEmptyVip, 53).build(), udp,
       Verdict::Reject},
      {"UDP with 300 byte payload", base,
       PacketBuilder::udp(kClient, 40001, kEmptyVip, 53).payload(300).build(), udp,
       Verdict::Reject},
      {"UDP with checksum 0", base,
       PacketBuilder::udp(kClient, 40001, kEmptyVip, 53).payload(12).udpChecksumZero().build(), udp,
       Verdict::Reject},
      // Never answered: a RST; not answerable: IP options.
      {"TCP RST is dropped", base,
       PacketBuilder::tcp(kClient, 40000, kEmptyVip, 80, kTcpRst).build(), tcp, Verdict::Drop, 0, 0,
       0, DROP_NO_BACKEND},
      {"TCP SYN with IP options is dropped", base, syn().ipOptions(8).build(), tcp, Verdict::Drop,
       0, 0, 0, DROP_REJECT_FAILED},
      {"UDP with IP options is dropped", base,
       PacketBuilder::udp(kClient, 40001, kEmptyVip, 53).ipOptions(4).build(), udp, Verdict::Drop,
       0, 0, 0, DROP_REJECT_FAILED},
  };
}

class RejectTable : public BpfTestP<std::tuple<RejectCase, Prog>> {};

// The RST: from the service to the client, MACs swapped, full checksums.
void checkRst(const RejectCase& c, const Bytes& in, const Bytes& out) {
  ASSERT_EQ(out.size(), 54u) << testlib::hex(out);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 6, in.begin() + 6)) << "dst MAC";
  EXPECT_TRUE(std::equal(out.begin() + 6, out.begin() + 12, in.begin())) << "src MAC";
  auto p = testlib::parseIpv4(out);
  ASSERT_TRUE(p) << testlib::hex(out);
  auto inT = testlib::fiveTuple(in);
  EXPECT_EQ(p->tuple, (FiveTuple{inT->daddr, inT->saddr, inT->dport, inT->sport, kTcp}))
      << toString(p->tuple);
  EXPECT_EQ(p->ihl, 5);
  EXPECT_EQ(p->totLen, 40);
  EXPECT_TRUE(testlib::ipv4ChecksumOk(out)) << testlib::hex(out);
  EXPECT_TRUE(testlib::l4ChecksumOk(out)) << testlib::hex(out);
  EXPECT_EQ(be32(out, 38), c.rstSeq) << "seq";
  EXPECT_EQ(be32(out, 42), c.rstAck) << "ack_seq";
  EXPECT_EQ(out[46], 0x50) << "doff 5";
  EXPECT_EQ(out[47], c.rstFlags) << "flags";
}

// ICMP port unreachable quoting the original IP header and 8 bytes.
void checkIcmp(const Bytes& in, const Bytes& out) {
  ASSERT_EQ(out.size(), 70u) << testlib::hex(out);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 6, in.begin() + 6)) << "dst MAC";
  EXPECT_TRUE(std::equal(out.begin() + 6, out.begin() + 12, in.begin())) << "src MAC";
  auto p = testlib::parseIpv4(out);
  ASSERT_TRUE(p) << testlib::hex(out);
  auto inT = testlib::fiveTuple(in);
  EXPECT_EQ(p->proto, 1);
  EXPECT_EQ(p->tuple.saddr, inT->daddr);
  EXPECT_EQ(p->tuple.daddr, inT->saddr);
  EXPECT_EQ(p->totLen, 56);
  EXPECT_TRUE(testlib::ipv4ChecksumOk(out)) << testlib::hex(out);
  EXPECT_EQ(out[34], 3) << "type: destination unreachable";
  EXPECT_EQ(out[35], 3) << "code: port unreachable";
  EXPECT_EQ(be32(out, 38), 0u);
  EXPECT_EQ(testlib::inetChecksum(&out[34], 36), 0) << "ICMP checksum\n" << testlib::hex(out);
  EXPECT_TRUE(std::equal(out.begin() + 42, out.end(), in.begin() + 14))
      << "quote of the original IP header + 8 bytes\n"
      << testlib::hex(out);
}

TEST_P(RejectTable, AnswersOrDrops) {
  const auto& [c, prog] = GetParam();
  ASSERT_TRUE(sync(c.frontends));
  RunResult r = run(prog, c.input);
  ASSERT_EQ(r.err, 0) << "BPF_PROG_TEST_RUN failed";
  EXPECT_EQ(r.retval, retvalOf(prog, c.verdict)) << verdictName(prog, r.retval);

  if (c.verdict == Verdict::Reject) {
    if (c.svc.proto == kTcp)
      checkRst(c, c.input, r.out);
    else
      checkIcmp(c.input, r.out);
    EXPECT_EQ(counters(svcStats(c.svc)), (Counters{0, 0, 0, 0, 0, 1}));
    EXPECT_EQ(allDrops().packets, 0u);
  } else {
    const drop_stats d = drops(c.dropReason);
    EXPECT_EQ(d.packets, 1u) << "drop reason " << c.dropReason;
    EXPECT_EQ(d.bytes, c.input.size()) << "drop bytes are frame bytes";
    EXPECT_EQ(allDrops().packets, 1u) << "counted under another reason too";
    EXPECT_EQ(counters(svcStats(c.svc)), Counters{});
  }
  EXPECT_EQ(ctEntries(), 0u) << "a refused flow must leave no CT entry";
}

INSTANTIATE_TEST_SUITE_P(NoEndpoint, RejectTable,
                         ::testing::Combine(::testing::ValuesIn(rejectCases()),
                                            ::testing::Values(Prog::Tc, Prog::Xdp)),
                         [](const auto& info) {
                           return sanitize(std::get<0>(info.param).description) + "_" +
                                  progName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace svclb::bpftest
