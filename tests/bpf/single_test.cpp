// Single-entry ClusterIP flows (issue 15, be_rev_v1): a new flow of its
// backend's designated frontend takes one CT entry, and the backend's
// answers find it by rebuilding its key from the designation. These cases
// cover what the pair layout did not have to: a backend behind two
// frontends, the designation moving and surviving a restart, a removed
// backend, node-facing frontends.
#include <arpa/inet.h>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::ip4str;
using testlib::kTcpAck;
using testlib::kTcpSyn;

const std::string kVipA = "10.96.0.40", kVipB = "10.96.0.30", kBe = "10.244.1.11";

class Single : public BpfTestP<Prog> {
 protected:
  Prog prog() const { return GetParam(); }
  Frontend svc(const std::string& vip, std::vector<std::string> bes, const std::string& name) {
    std::vector<BackendSpec> bs;
    for (const auto& b : bes) bs.push_back(backend(b));
    return frontend(vip, 80, kTcp, std::move(bs), name);
  }
  // The client's SYN to vip:80 from `cport`: the backend it went to.
  std::optional<FiveTuple> open(const std::string& vip, uint16_t cport) {
    RunResult r = run(prog(), PacketBuilder::tcp(kClient, cport, vip, 80).build());
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass)) << verdictName(prog(), r.retval);
    return testlib::fiveTuple(r.out);
  }
  // The backend's SYN-ACK to the client's port, as it leaves the program.
  std::optional<FiveTuple> answer(uint16_t cport, uint16_t bport = 8080) {
    RunResult r =
        run(prog(), PacketBuilder::tcp(kBe, bport, kClient, cport, kTcpSyn | kTcpAck).build());
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass)) << verdictName(prog(), r.retval);
    return testlib::fiveTuple(r.out);
  }
  std::optional<ct_value> forward(const std::string& vip, uint16_t cport) {
    ct_key k{};
    k.saddr = htonl(ip4(kClient)), k.daddr = htonl(ip4(vip));
    k.sport = htons(cport), k.dport = htons(80), k.proto = kTcp;
    return dp().conntrack().lookup(k);
  }
  FrontendKey key(const std::string& vip) const { return {ip4(vip), 80, kTcp}; }
};

// Two ClusterIPs share a backend: the first synced is its designated
// frontend (single entries), the other's flows keep a pair; the answers of
// both come back from their own VIP.
TEST_P(Single, ABackendBehindTwoFrontendsHasOneDesignated) {
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a")}));
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a"), svc(kVipB, {kBe + ":8080"}, "b")}));
  auto des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(kVipA))) << "the designation moved to the newer frontend";
  EXPECT_EQ(des->svc_id, svcId(key(kVipA)));
  // Later syncs of both (B sorts first: afresh, it would be chosen) keep it.
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080", "10.244.1.12:8080"}, "a"),
                    svc(kVipB, {kBe + ":8080", "10.244.1.12:8080"}, "b")}));
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a"), svc(kVipB, {kBe + ":8080"}, "b")}));
  des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(kVipA))) << "a sync of both moved the designation";

  ASSERT_TRUE(open(kVipA, 41000));
  ASSERT_TRUE(open(kVipB, 41001));
  auto fa = forward(kVipA, 41000), fb = forward(kVipB, 41001);
  ASSERT_TRUE(fa && fb);
  EXPECT_TRUE(fa->flags & CT_F_SINGLE);
  EXPECT_FALSE(fb->flags & CT_F_SINGLE);
  EXPECT_EQ(ctEntries(), 3u) << "one entry for A's flow, two for B's";
  auto ra = answer(41000), rb = answer(41001);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(*ra, (FiveTuple{ip4(kVipA), ip4(kClient), 80, 41000, kTcp})) << toString(*ra);
  EXPECT_EQ(*rb, (FiveTuple{ip4(kVipB), ip4(kClient), 80, 41001, kTcp})) << toString(*rb);
}

// A new flow of the other frontend on the same client tuple owns it: the
// single entry whose key the backend's answers would rebuild goes.
TEST_P(Single, AnotherFrontendsNewFlowOnTheTupleTakesItOver) {
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a")}));
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a"), svc(kVipB, {kBe + ":8080"}, "b")}));
  ASSERT_TRUE(open(kVipA, 41010));
  ASSERT_TRUE(forward(kVipA, 41010));
  ASSERT_TRUE(open(kVipB, 41010));
  EXPECT_FALSE(forward(kVipA, 41010)) << "A's single entry would take B's answers";
  auto rb = answer(41010);
  ASSERT_TRUE(rb);
  EXPECT_EQ(*rb, (FiveTuple{ip4(kVipB), ip4(kClient), 80, 41010, kTcp})) << toString(*rb);
}

// The designated frontend drops the backend: the backend stays its (removed,
// for the flows it has: kube-proxy keeps a TCP connection whose endpoint
// left the Service), so does the designation and its flow's answers are
// translated; once the daemon frees the removed backend (its flows ended),
// the other frontend is designated and its new flows take a single entry.
TEST_P(Single, TheDesignationMovesWhenItsFrontendDropsTheBackend) {
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a"), svc(kVipB, {kBe + ":8080"}, "b")}));
  auto des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  const bool aFirst = des->vip == htonl(ip4(kVipA));
  const std::string first = aFirst ? kVipA : kVipB, second = aFirst ? kVipB : kVipA;
  ASSERT_TRUE(open(first, 41020));
  ASSERT_TRUE(forward(first, 41020) && (forward(first, 41020)->flags & CT_F_SINGLE));

  ASSERT_TRUE(sync({svc(first, {"10.244.1.12:8080"}, aFirst ? "a" : "b"),
                    svc(second, {kBe + ":8080"}, aFirst ? "b" : "a")}));
  des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(first))) << "the removed backend's live flows lost their answers";
  auto late = answer(41020);
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, (FiveTuple{ip4(first), ip4(kClient), 80, 41020, kTcp})) << toString(*late);

  // Its flows ended (a walk found none alive): freed, the designation moves.
  auto freed = syncer().freeDrained({}, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1u);
  des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(second)));
  EXPECT_EQ(des->svc_id, svcId(key(second)));
  const Bytes stale = PacketBuilder::tcp(kBe, 8080, kClient, 41020, kTcpAck).payload(10).build();
  RunResult r = run(prog(), stale);
  EXPECT_EQ(r.out, stale) << "a freed backend's answer was rewritten";

  ASSERT_TRUE(open(second, 41021));
  auto f = forward(second, 41021);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->flags & CT_F_SINGLE);
  auto ra = answer(41021);
  ASSERT_TRUE(ra);
  EXPECT_EQ(*ra, (FiveTuple{ip4(second), ip4(kClient), 80, 41021, kTcp})) << toString(*ra);
}

// A backend that leaves every frontend leaves be_rev_v1 too, once freed.
TEST_P(Single, ARemovedBackendLosesItsDesignation) {
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a")}));
  ASSERT_TRUE(beRev(ip4(kBe), 8080, kTcp));
  ASSERT_TRUE(sync({svc(kVipA, {"10.244.1.12:8080"}, "a")}));
  EXPECT_TRUE(beRev(ip4(kBe), 8080, kTcp)) << "removed, kept for its connections";
  auto freed = syncer().freeDrained({}, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1u);
  EXPECT_FALSE(beRev(ip4(kBe), 8080, kTcp));
  EXPECT_TRUE(beRev(ip4("10.244.1.12"), 8080, kTcp));
  EXPECT_EQ(dp().beRev().count(), 1u);
}

// A restarted daemon (a new Syncer adopting the maps) keeps the
// designation the map holds, though it would pick another one afresh: the
// live single-entry flows keep their answers.
TEST_P(Single, ARestartKeepsTheDesignationsOfTheMap) {
  // B (10.96.0.30) sorts before A (10.96.0.40): afresh, B is chosen.
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a")}));
  ASSERT_TRUE(sync({svc(kVipA, {kBe + ":8080"}, "a"), svc(kVipB, {kBe + ":8080"}, "b")}));
  ASSERT_TRUE(open(kVipA, 41030));
  syncer_ = std::make_unique<Syncer>(*dp_);
  ASSERT_TRUE(syncer_->adopt().ok());
  auto des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(kVipA)));
  auto ra = answer(41030);
  ASSERT_TRUE(ra);
  EXPECT_EQ(*ra, (FiveTuple{ip4(kVipA), ip4(kClient), 80, 41030, kTcp})) << toString(*ra);
  // A stale designation (a frontend the maps no longer hold) is replaced.
  be_rev_key bk{};
  bk.addr = htonl(ip4(kBe)), bk.port = htons(8080), bk.proto = kTcp;
  be_rev_value bogus{};
  bogus.vip = htonl(ip4("10.96.9.9")), bogus.port = htons(80), bogus.svc_id = 999;
  ASSERT_TRUE(dp().beRev().update(bk, bogus).ok());
  syncer_ = std::make_unique<Syncer>(*dp_);
  ASSERT_TRUE(syncer_->adopt().ok());
  des = beRev(ip4(kBe), 8080, kTcp);
  ASSERT_TRUE(des);
  EXPECT_EQ(des->vip, htonl(ip4(kVipB)));
}

// A node-facing frontend (NodePort, LoadBalancer, externalIP) designates
// nothing: its flows keep two entries.
TEST_P(Single, NodeFacingFrontendsAreNeverDesignated) {
  Frontend np = svc("10.96.0.50", {kBe + ":8080"}, "np");
  np.flags |= SVC_F_EXTERNAL;
  ASSERT_TRUE(sync({np}));
  EXPECT_FALSE(beRev(ip4(kBe), 8080, kTcp));
  EXPECT_EQ(dp().beRev().count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Ct, Single, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return progName(info.param); });

}  // namespace
}  // namespace svclb::bpftest
