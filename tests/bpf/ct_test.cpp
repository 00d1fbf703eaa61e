// Connection tracking through both programs: replies are reverse translated
// from the CT entry the forward packet made; a flow stays on its backend
// while the backend set changes around it, stays on its own backend when
// that one is removed from the Service (a TCP flow, as kube-proxy's
// conntrack), and moves once the daemon freed the removed backend. Backend
// set changes go through planSync/Syncer::apply.
#include <arpa/inet.h>

#include <map>
#include <optional>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::ip4str;
using testlib::kTcpAck;
using testlib::kTcpFin;
using testlib::kTcpRst;
using testlib::kTcpSyn;

const FrontendKey kWeb{ip4(kVip), 80, kTcp};
const FrontendKey kDns{ip4(kVip), 53, kUdp};

// The CT layout a case runs with: tcp-web's and udp-dns's flows as single
// entries (each is its backends' designated frontend, be_rev_v1: the
// default), or as pairs (be_rev_v1 kept empty, as for a frontend that is
// not its backends' designated one, or source-NATed flows).
enum class Layout { Single, Pairs };
struct CtCase {
  Prog prog;
  Layout layout;
};
std::string caseName(const CtCase& c) {
  return std::string(progName(c.prog)) + (c.layout == Layout::Pairs ? "_Pairs" : "");
}

class Conntrack : public BpfTestP<CtCase> {
 protected:
  void SetUp() override {
    BpfTestP<CtCase>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (GetParam().layout == Layout::Pairs) pairsOnly();
    ASSERT_TRUE(sync(standardFrontends()));
  }
  Prog prog() const { return GetParam().prog; }
  // The backend entry state of `addr`:8080 (host order address) in frontend
  // `k`'s actual state (0: none).
  uint8_t stateOf(const FrontendKey& k, uint32_t addr) {
    const uint32_t id = backendId(k, addr, 8080);
    if (!id) return 0;
    auto v = dp().backends().lookup(id);
    return v ? v->state : 0;
  }
  // CT entries of one flow of the standard set.
  size_t perFlow() const { return GetParam().layout == Layout::Pairs ? 2 : 1; }

  // Sends `in`, expects a pass verdict and a translated frame; returns the
  // output tuple (nullopt on failure, with the failure recorded).
  std::optional<FiveTuple> send(const Bytes& in, bool dst = true) {
    RunResult r = run(prog(), in);
    EXPECT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass)) << verdictName(prog(), r.retval);
    EXPECT_TRUE(onlyNatFieldsChanged(in, r.out, dst));
    return testlib::fiveTuple(r.out);
  }

  // A TCP connection kClient:port -> tcp-web through its handshake (SYN,
  // the backend's SYN-ACK, the client's ACK: the flow is in ct_est_v2).
  // Returns the backend's address; a failed step is recorded (check
  // HasFailure()).
  std::string establish(uint16_t port) {
    auto fwd = send(PacketBuilder::tcp(kClient, port, kVip, 80).build());
    if (!fwd) {
      ADD_FAILURE() << "the SYN was not translated";
      return "";
    }
    const std::string b = ip4str(fwd->daddr);
    RunResult r =
        run(prog(), PacketBuilder::tcp(b, 8080, kClient, port, kTcpSyn | kTcpAck).build());
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    EXPECT_TRUE(send(PacketBuilder::tcp(kClient, port, kVip, 80, kTcpAck).build()));
    return b;
  }

  Frontend webWith(std::vector<std::string> addrs) {
    std::vector<BackendSpec> bs;
    for (const auto& a : addrs) bs.push_back(backend(a));
    return frontend(kVip, 80, kTcp, std::move(bs), "tcp-web");
  }
  // The standard set with tcp-web replaced.
  std::vector<Frontend> withWeb(const Frontend& web) {
    auto fs = standardFrontends();
    fs[0] = web;
    return fs;
  }
};

TEST_P(Conntrack, TcpReplyIsReverseTranslatedToVip) {
  const Bytes syn = PacketBuilder::tcp(kClient, 40000, kVip, 80).build();
  auto fwd = send(syn);
  ASSERT_TRUE(fwd);

  // The chosen backend answers the client directly.
  const Bytes synAck =
      PacketBuilder::tcp(ip4str(fwd->daddr), fwd->dport, kClient, 40000, kTcpSyn | kTcpAck)
          .payload(20)
          .build();
  RunResult r = run(prog(), synAck);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass)) << verdictName(prog(), r.retval);
  EXPECT_TRUE(onlyNatFieldsChanged(synAck, r.out, /*dst=*/false));
  auto rep = testlib::fiveTuple(r.out);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (FiveTuple{ip4(kVip), ip4(kClient), 80, 40000, kTcp})) << toString(*rep);

  const uint32_t be = backendId(kWeb, fwd->daddr, fwd->dport);
  EXPECT_EQ(counters(svcStats(kWeb)), (Counters{1, 40, 1, 60, 1}));
  EXPECT_EQ(counters(backendStats(be)), (Counters{1, 40, 1, 60, 1}));
  EXPECT_EQ(ctEntries(), perFlow()) << "a reply must not create CT entries";
}

TEST_P(Conntrack, UdpReplyIsReverseTranslatedAndKeepsChecksumZero) {
  const Bytes q = PacketBuilder::udp(kClient, 40001, kVip, 53).payload(30).build();
  auto fwd = send(q);
  ASSERT_TRUE(fwd);

  const Bytes answer =
      PacketBuilder::udp(ip4str(fwd->daddr), fwd->dport, kClient, 40001).payload(50).build();
  auto rep = send(answer, /*dst=*/false);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (FiveTuple{ip4(kVip), ip4(kClient), 53, 40001, kUdp})) << toString(*rep);

  const Bytes answerNoCsum = PacketBuilder::udp(ip4str(fwd->daddr), fwd->dport, kClient, 40001)
                                 .payload(50)
                                 .udpChecksumZero()
                                 .build();
  RunResult r = run(prog(), answerNoCsum);
  ASSERT_EQ(r.err, 0);
  EXPECT_TRUE(onlyNatFieldsChanged(answerNoCsum, r.out, /*dst=*/false));
  EXPECT_EQ(testlib::l4ChecksumField(r.out), 0);

  const uint32_t be = backendId(kDns, fwd->daddr, fwd->dport);
  EXPECT_EQ(counters(svcStats(kDns)), (Counters{1, 58, 2, 156, 1}));
  EXPECT_EQ(counters(backendStats(be)), (Counters{1, 58, 2, 156, 1}));
}

TEST_P(Conntrack, FlowStaysOnItsBackendWhileOthersChangeThenMoves) {
  const Bytes syn = PacketBuilder::tcp(kClient, 40000, kVip, 80).build();
  const Bytes ack = PacketBuilder::tcp(kClient, 40000, kVip, 80, kTcpAck).payload(10).build();
  auto first = send(syn);
  ASSERT_TRUE(first);
  const std::string mine = ip4str(first->daddr) + ":" + std::to_string(first->dport);
  const std::string other = mine == "10.244.1.11:8080" ? "10.244.1.12:8080" : "10.244.1.11:8080";
  const uint32_t mineId = backendId(kWeb, first->daddr, first->dport);
  ASSERT_NE(mineId, 0u);

  // Add a third backend and remove the other one: the flow's backend keeps
  // its id and entry, so the CT entry stays valid.
  ASSERT_TRUE(sync(withWeb(webWith({mine, "10.244.1.13:8080"}))));
  ASSERT_EQ(backendId(kWeb, first->daddr, first->dport), mineId)
      << "unchanged backend got a new id";
  EXPECT_EQ(stateOf(kWeb, backend(other).ip), BE_STATE_REMOVED)
      << "a removed TCP endpoint is kept for its connections";
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("packet " + std::to_string(i));
    auto t = send(ack);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr) + ":" + std::to_string(t->dport), mine);
  }
  EXPECT_EQ(counters(svcStats(kWeb)), (Counters{51, 40 + 50 * 50, 0, 0, 1}));
  EXPECT_EQ(counters(backendStats(mineId)), (Counters{51, 40 + 50 * 50, 0, 0, 1}));

  // Now remove the flow's own backend from the Service: the connection
  // goes on with it (kube-proxy keeps a TCP flow whose endpoint is gone),
  // its replies still translated; new connections go to the one left.
  ASSERT_TRUE(sync(withWeb(webWith({"10.244.1.13:8080"}))));
  const uint32_t thirdId = backendId(kWeb, ip4("10.244.1.13"), 8080);
  ASSERT_NE(thirdId, 0u);
  ASSERT_EQ(stateOf(kWeb, first->daddr), BE_STATE_REMOVED);
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("after its endpoint's removal, packet " + std::to_string(i));
    auto t = send(ack);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr) + ":" + std::to_string(t->dport), mine);
  }
  {
    const Bytes rep =
        PacketBuilder::tcp(ip4str(first->daddr), first->dport, kClient, 40000, kTcpAck).build();
    auto t = send(rep, /*dst=*/false);
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, (FiveTuple{ip4(kVip), ip4(kClient), 80, 40000, kTcp})) << toString(*t);
  }
  for (uint16_t sport = 45000; sport < 45020; ++sport) {
    auto t = send(PacketBuilder::tcp(kClient, sport, kVip, 80).build());
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr), "10.244.1.13") << "a new connection sent to a removed endpoint";
  }
  // A walk that finds the flow alive keeps the entry ...
  const auto later = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto kept = syncer().freeDrained({mineId}, later);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, 1u) << "only the other removed endpoint (no flow) is freed";
  EXPECT_EQ(stateOf(kWeb, first->daddr), BE_STATE_REMOVED);
  // ... one that finds it no more frees it (the daemon's DrainKeeper, once
  // the connection ended; here the entry is still there, so the flow is
  // balanced again onto the one that remains, with a new CT entry).
  auto freed = syncer().freeDrained({}, later);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1u);
  EXPECT_EQ(backendId(kWeb, first->daddr, first->dport), 0u);
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("after removal, packet " + std::to_string(i));
    auto t = send(ack);
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr) + ":" + std::to_string(t->dport), "10.244.1.13:8080");
  }
  ct_key fk{};
  fk.saddr = htonl(ip4(kClient));
  fk.daddr = htonl(ip4(kVip));
  fk.sport = htons(40000);
  fk.dport = htons(80);
  fk.proto = kTcp;
  // Promoted to the established map by its ACKs, or still in ct_v2.
  auto ct = dp().conntrackEst().lookup(fk);
  if (!ct) ct = dp().conntrack().lookup(fk);
  ASSERT_TRUE(ct);
  EXPECT_EQ(ct->backend_id, thirdId);
  EXPECT_EQ(ct->nat_addr, htonl(ip4("10.244.1.13")));
  EXPECT_EQ(counters(backendStats(thirdId)), (Counters{25, 5 * 50 + 20 * 40, 0, 0, 21}))
      << "the moved flow counts as one new flow on its new backend";
  EXPECT_EQ(counters(svcStats(kWeb)).flows, 22u);

  // Replies of the new backend are translated back to the VIP.
  const Bytes rep = PacketBuilder::tcp("10.244.1.13", 8080, kClient, 40000, kTcpAck).build();
  auto t = send(rep, /*dst=*/false);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (FiveTuple{ip4(kVip), ip4(kClient), 80, 40000, kTcp})) << toString(*t);
}

// A deleted Service's TCP connections go on, as kube-proxy's conntrack
// keeps translating them: its frontend is retired (no master, its backends
// held as removed, its key still in lb_filter_v1, its designations kept)
// until a conntrack walk finds its flows ended.
TEST_P(Conntrack, DeletedServiceKeepsItsTcpFlowsUntilTheyEnd) {
  const std::string b = establish(40100);
  ASSERT_FALSE(HasFailure());
  const uint32_t id = backendId(kWeb, ip4(b), 8080);
  ASSERT_NE(id, 0u);
  auto fs = standardFrontends();
  fs.erase(fs.begin());  // tcp-web deleted
  ASSERT_TRUE(sync(fs));
  ASSERT_TRUE(syncer().actual().frontends.count(kWeb));
  EXPECT_TRUE(syncer().actual().frontends.at(kWeb).retired);
  EXPECT_EQ(stateOf(kWeb, ip4(b)), BE_STATE_REMOVED);

  const Bytes ack = PacketBuilder::tcp(kClient, 40100, kVip, 80, kTcpAck).payload(10).build();
  const Bytes rep = PacketBuilder::tcp(b, 8080, kClient, 40100, kTcpAck).payload(10).build();
  // The client's packet goes to b, b's answer comes back from the VIP.
  auto flowTranslated = [&] {
    auto t = send(ack);
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, (FiveTuple{ip4(kClient), ip4(b), 40100, 8080, kTcp})) << toString(*t);
    auto r = send(rep, /*dst=*/false);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (FiveTuple{ip4(kVip), ip4(kClient), 80, 40100, kTcp})) << toString(*r);
  };
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("after the Service's deletion, packet " + std::to_string(i));
    flowTranslated();
  }
  // No Service any more: a new connection passes untouched.
  const Bytes syn = PacketBuilder::tcp(kClient, 40101, kVip, 80).build();
  RunResult r = run(prog(), syn);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched)) << verdictName(prog(), r.retval);
  EXPECT_EQ(r.out, syn) << "a new connection to a deleted Service was translated";

  // A restarted daemon finds held backends of no frontend: kept, retired
  // under the address their live flows were sent to, whose lb_filter_v1 bit
  // it rebuilds with the rest (cleared here first).
  for (uint32_t i = 0; i < 2 * SVCLB_FILTER_WORDS; ++i) {
    ASSERT_TRUE(dp().lbFilter().update(i, 0));
  }
  {
    Syncer again(dp());
    ASSERT_TRUE(again.adopt());
    ASSERT_TRUE(again.actual().frontends.count(kWeb));
    const ActualFrontend& f = again.actual().frontends.at(kWeb);
    EXPECT_TRUE(f.retired);
    EXPECT_EQ(f.backends.size(), 2u);
    EXPECT_EQ(again.removedBackends(), 2u);
    for (const auto& [k, live] : again.actual().frontends)
      EXPECT_EQ(live.retired, k == kWeb) << k.address() << ":" << k.port;
  }
  {
    SCOPED_TRACE("after a restart");
    flowTranslated();
  }

  // A walk that finds the flow alive frees the other backend only; one that
  // finds none frees it too, and the frontend goes with it.
  const auto later = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  auto kept = syncer().freeDrained({id}, later);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, 1u);
  ASSERT_TRUE(syncer().actual().frontends.count(kWeb));
  EXPECT_TRUE(send(ack));
  auto freed = syncer().freeDrained({}, later);
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1u);
  EXPECT_FALSE(syncer().actual().frontends.count(kWeb));
  EXPECT_EQ(syncer().removedBackends(), 0u);
  r = run(prog(), ack);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched)) << verdictName(prog(), r.retval);
  EXPECT_EQ(r.out, ack) << "the freed flow's packet was still translated";

  // The Service made again: balanced anew, replies translated.
  ASSERT_TRUE(sync(standardFrontends()));
  EXPECT_FALSE(syncer().actual().frontends.at(kWeb).retired);
  EXPECT_FALSE(establish(40102).empty());
}

TEST_P(Conntrack, TerminatingBackendKeepsItsFlowsButTakesNoNewOnes) {
  // Put each of 20 flows somewhere, then mark .11 terminating (not serving).
  std::map<uint16_t, std::string> placed;
  for (uint16_t sport = 41000; sport < 41020; ++sport) {
    auto t = send(PacketBuilder::tcp(kClient, sport, kVip, 80).build());
    ASSERT_TRUE(t);
    placed[sport] = ip4str(t->daddr);
  }
  auto web = webWith({"10.244.1.12:8080"});
  web.backends.insert(web.backends.begin(),
                      backend("10.244.1.11:8080", EndpointState::Terminating, false));
  ASSERT_TRUE(sync(withWeb(web)));

  for (const auto& [sport, addr] : placed) {
    auto t = send(PacketBuilder::tcp(kClient, sport, kVip, 80, kTcpAck).build());
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr), addr) << "established flow from port " << sport << " moved";
  }
  for (uint16_t sport = 42000; sport < 42040; ++sport) {
    auto t = send(PacketBuilder::tcp(kClient, sport, kVip, 80).build());
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr), "10.244.1.12") << "new flow sent to a terminating backend";
  }
}

TEST_P(Conntrack, TerminatingServingBackendTakesNoNewFlowsWhileReadyOnesExist) {
  auto web = webWith({"10.244.1.12:8080"});
  web.backends.insert(web.backends.begin(),
                      backend("10.244.1.11:8080", EndpointState::Terminating, true));
  ASSERT_TRUE(sync(withWeb(web)));
  for (uint16_t sport = 43000; sport < 43040; ++sport) {
    auto t = send(PacketBuilder::tcp(kClient, sport, kVip, 80).build());
    ASSERT_TRUE(t);
    EXPECT_EQ(ip4str(t->daddr), "10.244.1.12") << "new flow sent to a terminating backend";
  }
}

// KEP-1669: terminating-but-serving endpoints take new flows when no ready
// one is left (the daemon puts them in slots 1..total, count 0).
TEST_P(Conntrack, OnlyTerminatingServingBackendsTakeNewFlows) {
  ASSERT_TRUE(sync(withWeb(frontend(kVip, 80, kTcp,
                                    {backend("10.244.1.11:8080", EndpointState::Terminating, true)},
                                    "tcp-web"))));
  auto t = send(PacketBuilder::tcp(kClient, 44000, kVip, 80).build());
  ASSERT_TRUE(t);
  EXPECT_EQ(ip4str(t->daddr), "10.244.1.11");
  EXPECT_EQ(drops(DROP_NO_BACKEND).packets, 0u);
}

// Known gap, disabled until the dataplane decides on it; run it with
// --gtest_also_run_disabled_tests.
// CT entries never expire: after a service flow client:P -> VIP -> B ends,
// a later DIRECT connection client:P -> B (same source port, e.g. a
// headless service or a pod IP) has its replies B -> client:P rewritten to
// come from the VIP by the stale REPLY entry, which breaks that connection.
// CT lifetimes. Time is driven by ageing the entries' last_seen (CT ticks,
// jiffies >> CT_TICK_SHIFT): the programs compare it with bpf_jiffies64().
class CtLifetime : public Conntrack {
 protected:
  // Moves every CT entry `ticks` into the past.
  void age(uint32_t ticks) {
    size_t n = 0;
    for (auto ct : {dp().conntrack(), dp().conntrackEst()}) {
      std::vector<std::pair<ct_key, ct_value>> all;
      ct.forEach([&](const ct_key& k, const ct_value& v) { all.emplace_back(k, v); });
      n += all.size();
      for (auto& [k, v] : all) {
        v.last_seen -= ticks;
        ASSERT_TRUE(ct.update(k, v).ok());
      }
    }
    ASSERT_GT(n, 0u);
  }
  std::vector<ct_value> entries() {
    std::vector<ct_value> out;
    for (auto ct : {dp().conntrack(), dp().conntrackEst()})
      ct.forEach([&](const ct_key&, const ct_value& v) { out.push_back(v); });
    return out;
  }
};

TEST_P(CtLifetime, ClosedFlowDoesNotRewriteALaterDirectConnection) {
  auto fwd = send(PacketBuilder::tcp(kClient, 45000, kVip, 80).build());
  ASSERT_TRUE(fwd);
  const std::string b = ip4str(fwd->daddr);
  // The connection ends: FIN both ways.
  ASSERT_TRUE(send(PacketBuilder::tcp(kClient, 45000, kVip, 80, kTcpFin | kTcpAck).build()));
  RunResult r = run(prog(), PacketBuilder::tcp(b, 8080, kClient, 45000, kTcpFin | kTcpAck).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  for (const auto& v : entries()) EXPECT_TRUE(v.flags & CT_F_CLOSING) << "dir " << int(v.dir);
  age(dp().ctLifetimes().closing + 1);
  // Later the client talks to B directly from the same port: untouched.
  const Bytes directSyn = PacketBuilder::tcp(kClient, 45000, b, 8080).build();
  r = run(prog(), directSyn);
  EXPECT_EQ(r.out, directSyn);
  const Bytes synAck = PacketBuilder::tcp(b, 8080, kClient, 45000, kTcpSyn | kTcpAck).build();
  r = run(prog(), synAck);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.out, synAck) << "reply of a direct connection rewritten to "
                           << toString(*testlib::fiveTuple(r.out));
}

// Port reuse right after a Service flow closed (well within the closing
// lifetime): the backend's SYN-ACK to a new, direct connection from the same
// client port must not be rewritten to come from the VIP, even when the
// client's SYN did not pass through svclb (a closing flow cannot receive a
// SYN-ACK of its own).
TEST_P(CtLifetime, SynAckOnAClosedFlowsTupleStartsANewFlow) {
  const std::string b = establish(45010);
  ASSERT_FALSE(HasFailure());
  RunResult r;
  // The backend resets the connection: both entries closing, not yet expired.
  r = run(prog(), PacketBuilder::tcp(b, 8080, kClient, 45010, kTcpRst | kTcpAck).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  const Bytes synAck = PacketBuilder::tcp(b, 8080, kClient, 45010, kTcpSyn | kTcpAck).build();
  r = run(prog(), synAck);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
  EXPECT_EQ(r.out, synAck) << "SYN-ACK of a new connection rewritten to "
                           << toString(*testlib::fiveTuple(r.out));
}

// A direct connection's first packet (the client's SYN to the backend's own
// address, from the port an old Service flow used) clears that flow: the
// backend's answers are not rewritten to the VIP, whatever the old flow's
// state (here established, never closed: a 6 h lifetime).
TEST_P(CtLifetime, DirectSynClearsTheOldFlowOnItsTuple) {
  const std::string b = establish(45011);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(dp().conntrackEst().count(), perFlow());
  // An unrelated flow's entries must survive.
  ASSERT_TRUE(send(PacketBuilder::tcp(kClient, 45012, kVip, 80).build()));
  ASSERT_EQ(dp().conntrack().count(), perFlow());

  const Bytes directSyn = PacketBuilder::tcp(kClient, 45011, b, 8080).build();
  RunResult r = run(prog(), directSyn);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
  EXPECT_EQ(r.out, directSyn);
  const Bytes synAck = PacketBuilder::tcp(b, 8080, kClient, 45011, kTcpSyn | kTcpAck).build();
  r = run(prog(), synAck);
  EXPECT_EQ(r.out, synAck) << "SYN-ACK of a direct connection rewritten to "
                           << toString(*testlib::fiveTuple(r.out));
  const Bytes data = PacketBuilder::tcp(b, 8080, kClient, 45011, kTcpAck).payload(30).build();
  r = run(prog(), data);
  EXPECT_EQ(r.out, data);
  EXPECT_EQ(dp().conntrackEst().count(), 0u) << "the old flow's entries live on";
  EXPECT_EQ(dp().conntrack().count(), perFlow()) << "another flow's entries were touched";
}

// UDP has no opening packet: any datagram that is not a Service's and finds
// a Service flow's REPLY entry on its reversed tuple takes the tuple over.
TEST_P(CtLifetime, DirectUdpDatagramTakesTheTupleOverFromAnIdleFlow) {
  const Bytes q = PacketBuilder::udp(kClient, 53010, kVip, 53).payload(20).build();
  RunResult r = run(prog(), q);
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  const auto be = testlib::fiveTuple(r.out);
  ASSERT_TRUE(be);
  ASSERT_EQ(dp().conntrack().count(), perFlow());
  const Bytes direct =
      PacketBuilder::udp(kClient, 53010, ip4str(be->daddr), be->dport).payload(20).build();
  r = run(prog(), direct);
  EXPECT_EQ(r.out, direct);
  const Bytes answer =
      PacketBuilder::udp(ip4str(be->daddr), be->dport, kClient, 53010).payload(40).build();
  r = run(prog(), answer);
  EXPECT_EQ(r.out, answer) << "answer to a direct datagram rewritten to "
                           << toString(*testlib::fiveTuple(r.out));
  EXPECT_EQ(dp().conntrack().count(), 0u);
  // The client's next datagram to the Service is a new flow again.
  const FrontendKey dns{ip4(kVip), 53, kUdp};
  const uint64_t flows = svcStats(dns).flows;
  r = run(prog(), q);
  EXPECT_EQ(svcStats(dns).flows, flows + 1);
}

TEST_P(CtLifetime, WithinTheLifetimeRepliesAreStillTranslated) {
  auto fwd = send(PacketBuilder::tcp(kClient, 45001, kVip, 80).build());
  ASSERT_TRUE(fwd);
  age(dp().ctLifetimes().tcp - 5);  // idle ~6 h minus a few seconds: still alive
  const Bytes reply = PacketBuilder::tcp(ip4str(fwd->daddr), 8080, kClient, 45001, kTcpAck).build();
  RunResult r = run(prog(), reply);
  EXPECT_TRUE(onlyNatFieldsChanged(reply, r.out, false));
  // ...and the hit refreshed the last_seen of both entries of the flow (a
  // flow lives while either direction has packets).
  const uint32_t now = dp().nowTicks();
  for (const auto& v : entries())
    EXPECT_LE(now - v.last_seen, 1u) << "entry dir " << int(v.dir) << " was not refreshed";
}

TEST_P(CtLifetime, RstClosesBothDirections) {
  auto fwd = send(PacketBuilder::tcp(kClient, 45002, kVip, 80).build());
  ASSERT_TRUE(fwd);
  RunResult r =
      run(prog(), PacketBuilder::tcp(ip4str(fwd->daddr), 8080, kClient, 45002, kTcpRst).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  auto es = entries();
  ASSERT_EQ(es.size(), perFlow());
  for (const auto& v : es) EXPECT_TRUE(v.flags & CT_F_CLOSING) << "dir " << int(v.dir);
}

TEST_P(CtLifetime, SynOnAClosingTupleIsANewConnection) {
  auto fwd = send(PacketBuilder::tcp(kClient, 45003, kVip, 80).build());
  ASSERT_TRUE(fwd);
  ASSERT_TRUE(send(PacketBuilder::tcp(kClient, 45003, kVip, 80, kTcpFin | kTcpAck).build()));
  const uint64_t flowsBefore = svcStats(kWeb).flows;
  // Port reuse right after close: balanced again, fresh entries.
  ASSERT_TRUE(send(PacketBuilder::tcp(kClient, 45003, kVip, 80).build()));
  EXPECT_EQ(svcStats(kWeb).flows, flowsBefore + 1);
  for (const auto& v : entries()) EXPECT_FALSE(v.flags & CT_F_CLOSING);
}

TEST_P(CtLifetime, IdleUdpFlowIsBalancedAgain) {
  const Bytes q = PacketBuilder::udp(kClient, 53000, kVip, 53).payload(20).build();
  RunResult r = run(prog(), q);
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  const auto be = testlib::fiveTuple(r.out);
  ASSERT_TRUE(be);
  age(dp().ctLifetimes().nontcp + 1);
  // A late reply on the stale flow is not ours any more: untouched.
  const Bytes late = PacketBuilder::udp(ip4str(be->daddr), be->dport, kClient, 53000).build();
  r = run(prog(), late);
  EXPECT_EQ(r.out, late);
  // The next datagram of the client is a new flow.
  const FrontendKey dns{ip4(kVip), 53, kUdp};
  const uint64_t flows = svcStats(dns).flows;
  r = run(prog(), q);
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_EQ(svcStats(dns).flows, flows + 1);
}

TEST_P(CtLifetime, HandshakeMovesTheFlowToTheEstablishedMap) {
  auto fwd = send(PacketBuilder::tcp(kClient, 45004, kVip, 80).build());
  ASSERT_TRUE(fwd);
  const std::string b = ip4str(fwd->daddr);
  RunResult r = run(prog(), PacketBuilder::tcp(b, 8080, kClient, 45004, kTcpSyn | kTcpAck).build());
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_EQ(dp().conntrack().count(), perFlow());
  EXPECT_EQ(dp().conntrackEst().count(), 0u);
  ASSERT_TRUE(send(PacketBuilder::tcp(kClient, 45004, kVip, 80, kTcpAck).build()));
  EXPECT_EQ(dp().conntrack().count(), 0u);
  EXPECT_EQ(dp().conntrackEst().count(), perFlow());
  // Both directions keep working from the established map.
  const Bytes data = PacketBuilder::tcp(kClient, 45004, kVip, 80, kTcpAck).payload(50).build();
  r = run(prog(), data);
  EXPECT_TRUE(onlyNatFieldsChanged(data, r.out, true));
  EXPECT_EQ(ip4str(testlib::fiveTuple(r.out)->daddr), b);
  const Bytes reply = PacketBuilder::tcp(b, 8080, kClient, 45004, kTcpAck).payload(70).build();
  r = run(prog(), reply);
  EXPECT_TRUE(onlyNatFieldsChanged(reply, r.out, false));
}

TEST_P(CtLifetime, FloodOfNewFlowsCannotEvictAnEstablishedConnection) {
  const std::string b = establish(45005);
  ASSERT_FALSE(HasFailure());
  // Many more new flows (UDP and SYNs) than the new-flow map holds.
  const size_t cap = dp().config().maxCtEntries;
  for (size_t i = 0; i < 2 * cap; ++i) {
    const std::string src =
        "10.250." + std::to_string(i / 250 % 250) + "." + std::to_string(1 + i % 250);
    run(prog(), i % 2 ? PacketBuilder::udp(src, uint16_t(1000 + i % 60000), kVip, 53).build()
                      : PacketBuilder::tcp(src, uint16_t(1000 + i % 60000), kVip, 80).build());
  }
  EXPECT_GE(dp().conntrack().count(), cap * 9 / 10) << "the flood should have filled ct_v2";
  const Bytes data = PacketBuilder::tcp(kClient, 45005, kVip, 80, kTcpAck).payload(10).build();
  RunResult r = run(prog(), data);
  EXPECT_TRUE(onlyNatFieldsChanged(data, r.out, true));
  EXPECT_EQ(ip4str(testlib::fiveTuple(r.out)->daddr), b);
  const Bytes reply = PacketBuilder::tcp(b, 8080, kClient, 45005, kTcpAck).payload(10).build();
  r = run(prog(), reply);
  EXPECT_TRUE(onlyNatFieldsChanged(reply, r.out, false))
      << "the established flow lost its reply entry";
}

// Issue 18: a flow's two CT entries live and die together. The LRU may
// evict one of them; the next packet of either direction rebuilds it.
class CtPair : public CtLifetime {
 protected:
  uint64_t event(uint32_t ev) { return sumCounts(dp().ctEvents().lookup(ev)); }
  static ct_key key(const std::string& sa, uint16_t sp, const std::string& da, uint16_t dp,
                    uint8_t proto) {
    ct_key k{};
    k.saddr = htonl(ip4(sa));
    k.daddr = htonl(ip4(da));
    k.sport = htons(sp);
    k.dport = htons(dp);
    k.proto = proto;
    return k;
  }
};

TEST_P(CtPair, EvictedReplyEntryIsRebuiltByTheNextForwardPacket) {
  const Bytes q = PacketBuilder::udp(kClient, 53100, kVip, 53).payload(20).build();
  auto fwd = send(q);
  ASSERT_TRUE(fwd);
  const std::string b = ip4str(fwd->daddr);
  const ct_key rk = key(b, fwd->dport, kClient, 53100, kUdp);
  const auto before = dp().conntrack().lookup(rk);
  ASSERT_TRUE(before && before->dir == CT_DIR_REPLY);
  ASSERT_TRUE(dp().conntrack().erase(rk).ok());  // what the LRU does under pressure
  ASSERT_EQ(event(CT_EV_RELINKED), 0u);

  auto again = send(q);
  ASSERT_TRUE(again);
  EXPECT_EQ(ip4str(again->daddr), b) << "the flow moved";
  EXPECT_EQ(event(CT_EV_RELINKED), 1u);
  const auto rebuilt = dp().conntrack().lookup(rk);
  ASSERT_TRUE(rebuilt) << "REPLY entry not rebuilt";
  EXPECT_EQ(rebuilt->dir, CT_DIR_REPLY);
  EXPECT_EQ(rebuilt->nat_addr, before->nat_addr);
  EXPECT_EQ(rebuilt->nat_port, before->nat_port);
  EXPECT_EQ(rebuilt->backend_id, before->backend_id);
  EXPECT_EQ(rebuilt->svc_id, before->svc_id);
  EXPECT_EQ(rebuilt->flags, before->flags);

  const Bytes answer = PacketBuilder::udp(b, fwd->dport, kClient, 53100).payload(40).build();
  auto rep = send(answer, /*dst=*/false);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (FiveTuple{ip4(kVip), ip4(kClient), 53, 53100, kUdp})) << toString(*rep);
  EXPECT_EQ(event(CT_EV_RELINKED), 1u) << "a whole flow counted as relinked";
  EXPECT_EQ(svcStats(kDns).flows, 1u) << "the flow was balanced twice";
}

TEST_P(CtPair, EvictedForwardEntryIsRebuiltByTheNextReply) {
  const std::string b = establish(45100);
  ASSERT_FALSE(HasFailure());
  RunResult r;
  ASSERT_EQ(dp().conntrackEst().count(), 2u);
  const ct_key fk = key(kClient, 45100, kVip, 80, kTcp);
  ASSERT_TRUE(dp().conntrackEst().erase(fk).ok());

  // The backend's data still comes from the Service, and the client's next
  // segment stays on its backend (a new balancing would send it to a
  // backend that never saw the handshake).
  const Bytes reply = PacketBuilder::tcp(b, 8080, kClient, 45100, kTcpAck).payload(70).build();
  r = run(prog(), reply);
  EXPECT_TRUE(onlyNatFieldsChanged(reply, r.out, false));
  EXPECT_EQ(event(CT_EV_RELINKED), 1u);
  const auto f = dp().conntrackEst().lookup(fk);
  ASSERT_TRUE(f) << "FORWARD entry not rebuilt in the established map";
  EXPECT_EQ(f->dir, CT_DIR_FORWARD);
  EXPECT_EQ(ip4str(ntohl(f->nat_addr)), b);
  EXPECT_EQ(ntohs(f->nat_port), 8080);
  for (int i = 0; i < 8; ++i) {
    auto d = send(PacketBuilder::tcp(kClient, 45100, kVip, 80, kTcpAck).payload(10).build());
    ASSERT_TRUE(d);
    EXPECT_EQ(ip4str(d->daddr), b);
  }
  EXPECT_EQ(svcStats(kWeb).flows, 1u);
  EXPECT_EQ(dp().conntrack().count(), 0u) << "entries leaked into the new-flow map";
}

// The other entry's key now belongs to another flow: this entry is an
// orphan. It is dropped (counted) and the packet is a new flow, so two
// flows never share a tuple.
TEST_P(CtPair, EntryWhoseOtherKeyBelongsToAnotherFlowIsDropped) {
  const Bytes q = PacketBuilder::udp(kClient, 53200, kVip, 53).payload(20).build();
  auto fwd = send(q);
  ASSERT_TRUE(fwd);
  const ct_key rk = key(ip4str(fwd->daddr), fwd->dport, kClient, 53200, kUdp);
  auto other = dp().conntrack().lookup(rk);
  ASSERT_TRUE(other);
  other->nat_addr = htonl(ip4("10.96.0.99"));  // another flow's: client -> 10.96.0.99:53
  ASSERT_TRUE(dp().conntrack().update(rk, *other).ok());

  RunResult r = run(prog(), q);
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
  EXPECT_TRUE(onlyNatFieldsChanged(q, r.out, true));
  EXPECT_EQ(event(CT_EV_ORPHANED), 1u);
  EXPECT_EQ(event(CT_EV_RELINKED), 0u);
  EXPECT_EQ(svcStats(kDns).flows, 2u) << "the orphan's packet was not balanced as a new flow";
}

// A TCP flow's stale REPLY entry in ct_est_v2 whose client tuple now
// belongs to a newer flow in ct_v2: not rebuilt over it (that would give one
// client tuple two FORWARD entries, one per map), but dropped as an orphan.
// Found by the 10M fuzz run (seed 5108) and reproduced with its --replay.
TEST_P(CtPair, StaleReplyDoesNotRebuildOverANewerFlowInTheOtherMap) {
  const std::string old = establish(45200);
  ASSERT_FALSE(HasFailure());
  const ct_key fk = key(kClient, 45200, kVip, 80, kTcp);
  ASSERT_TRUE(dp().conntrackEst().lookup(fk));
  ASSERT_TRUE(dp().conntrackEst().erase(fk).ok());  // the LRU took the FORWARD entry
  // Its backend leaves; the client's next segment is a new flow (ct_v2),
  // necessarily to the other backend.
  const std::string other = old == "10.244.1.11" ? "10.244.1.12" : "10.244.1.11";
  // The old pod still backs another Service, so its address stays in
  // lb_filter_v1 and its stale answer reaches the CT lookup, which must see
  // the orphan (without that Service the filter alone passes it untouched).
  auto fs = withWeb(webWith({other + ":8080"}));
  fs.push_back(frontend("10.96.0.99", 80, kTcp, {backend(old + ":8080")}, "keeps-old"));
  ASSERT_TRUE(sync(fs));
  auto y = send(PacketBuilder::tcp(kClient, 45200, kVip, 80, kTcpAck).payload(10).build());
  ASSERT_TRUE(y);
  ASSERT_EQ(ip4str(y->daddr), other);

  // The old backend answers on the old flow: its REPLY entry is an orphan.
  const Bytes stale = PacketBuilder::tcp(old, 8080, kClient, 45200, kTcpAck).payload(20).build();
  RunResult r = run(prog(), stale);
  ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
  EXPECT_EQ(r.out, stale) << "a stale flow's reply was translated: "
                          << toString(*testlib::fiveTuple(r.out));
  EXPECT_EQ(event(CT_EV_ORPHANED), 1u);
  EXPECT_EQ(event(CT_EV_RELINKED), 0u);
  EXPECT_FALSE(dp().conntrackEst().lookup(fk)) << "a second FORWARD entry for the client tuple";
  // The newer flow is intact both ways.
  const Bytes reply = PacketBuilder::tcp(other, 8080, kClient, 45200, kTcpAck).payload(30).build();
  r = run(prog(), reply);
  auto rep = testlib::fiveTuple(r.out);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (FiveTuple{ip4(kVip), ip4(kClient), 80, 45200, kTcp})) << toString(*rep);
  auto again = send(PacketBuilder::tcp(kClient, 45200, kVip, 80, kTcpAck).payload(10).build());
  ASSERT_TRUE(again);
  EXPECT_EQ(ip4str(again->daddr), other);
}

// Under LRU pressure (many more new flows than the map holds) a flow that
// only sends keeps its REPLY entry: every forward packet touches it.
TEST_P(CtPair, OneWayFlowKeepsItsReplyEntryUnderPressure) {
  const Bytes q = PacketBuilder::udp(kClient, 53300, kVip, 53).payload(20).build();
  auto fwd = send(q);
  ASSERT_TRUE(fwd);
  const size_t cap = dp().config().maxCtEntries;
  for (size_t i = 0; i < 2 * cap; ++i) {
    const std::string src =
        "10.250." + std::to_string(i / 250 % 250) + "." + std::to_string(1 + i % 250);
    // Each flood flow sends twice: the kernel's LRU evicts a never-reused
    // entry from its CPU's pending list first, reused ones age globally.
    const Bytes other = PacketBuilder::udp(src, uint16_t(1000 + i % 60000), kVip, 53).build();
    run(prog(), other);
    run(prog(), other);
    if (i % 64 == 0) {
      auto d = send(q);
      ASSERT_TRUE(d);
      ASSERT_EQ(d->daddr, fwd->daddr) << "the flow moved after " << i << " new flows";
    }
  }
  EXPECT_GE(dp().conntrack().count(), cap * 9 / 10) << "the flood should have filled ct_v2";
  const Bytes answer = PacketBuilder::udp(ip4str(fwd->daddr), fwd->dport, kClient, 53300).build();
  RunResult r = run(prog(), answer);
  EXPECT_TRUE(onlyNatFieldsChanged(answer, r.out, false));
  auto rep = testlib::fiveTuple(r.out);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (FiveTuple{ip4(kVip), ip4(kClient), 53, 53300, kUdp}))
      << "the one-way flow lost its REPLY entry: " << toString(*rep);
}

const CtCase kPairs[] = {{Prog::Tc, Layout::Pairs}, {Prog::Xdp, Layout::Pairs}};
const CtCase kBoth[] = {{Prog::Tc, Layout::Single},
                        {Prog::Xdp, Layout::Single},
                        {Prog::Tc, Layout::Pairs},
                        {Prog::Xdp, Layout::Pairs}};

INSTANTIATE_TEST_SUITE_P(Ct, CtPair, ::testing::ValuesIn(kPairs),
                         [](const auto& info) { return caseName(info.param); });

INSTANTIATE_TEST_SUITE_P(Ct, CtLifetime, ::testing::ValuesIn(kBoth),
                         [](const auto& info) { return caseName(info.param); });

INSTANTIATE_TEST_SUITE_P(Ct, Conntrack, ::testing::ValuesIn(kBoth),
                         [](const auto& info) { return caseName(info.param); });

}  // namespace
}  // namespace svclb::bpftest
