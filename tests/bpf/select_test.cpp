// Backend selection for new flows: endpoint conditions (KEP-1669), ClientIP
// session affinity (kernel timestamps, survives CT, follows removals) and
// Maglev (the same flow picks the same backend on every node, without CT).
#include <arpa/inet.h>
#include <time.h>

#include <map>
#include <set>

#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::ip4str;
using testlib::kTcpAck;

const FrontendKey kWeb{ip4(kVip), 80, kTcp};

uint64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns() is CLOCK_MONOTONIC
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

class Select : public BpfTestP<Prog> {
 protected:
  Prog prog() const { return GetParam(); }

  // Sends a SYN from client:sport to the VIP; returns the backend address
  // ("" if not DNAT'ed) — and the retval through *retval.
  std::string syn(const std::string& client, uint16_t sport, uint32_t* retval = nullptr) {
    RunResult r = run(prog(), PacketBuilder::tcp(client, sport, kVip, 80).build());
    EXPECT_EQ(r.err, 0);
    if (retval) *retval = r.retval;
    auto t = testlib::fiveTuple(r.out);
    if (!t || r.retval != retvalOf(prog(), Verdict::Pass) || t->daddr == ip4(kVip)) return "";
    return ip4str(t->daddr);
  }
  std::map<std::string, int> spread(const std::string& client, uint16_t first, int n) {
    std::map<std::string, int> m;
    for (int i = 0; i < n; ++i) m[syn(client, uint16_t(first + i))]++;
    return m;
  }
};

Frontend web(std::vector<BackendSpec> bs) { return frontend(kVip, 80, kTcp, std::move(bs)); }

TEST_P(Select, ReadyTakeNewFlowsTerminatingOnlyWhenNoneReady) {
  ASSERT_TRUE(sync({web({backend("10.244.1.11:8080"),
                         backend("10.244.1.12:8080", EndpointState::Terminating, true)})}));
  auto m = spread(kClient, 41000, 60);
  EXPECT_EQ(m["10.244.1.11"], 60) << "a terminating endpoint took a new flow while one is ready";

  // No ready endpoint: the terminating one that is still serving takes them.
  ASSERT_TRUE(sync({web({backend("10.244.1.11:8080", EndpointState::NotReady),
                         backend("10.244.1.12:8080", EndpointState::Terminating, true)})}));
  m = spread(kClient, 42000, 30);
  EXPECT_EQ(m["10.244.1.12"], 30);

  // Terminating and not serving, nothing ready: rejected.
  ASSERT_TRUE(sync({web({backend("10.244.1.12:8080", EndpointState::Terminating, false)})}));
  uint32_t rv = 0;
  EXPECT_EQ(syn(kClient, 43000, &rv), "");
  EXPECT_NE(rv, retvalOf(prog(), Verdict::Pass));
  EXPECT_EQ(svcStats(kWeb).rejects, 1u);
}

TEST_P(Select, TerminatingBackendKeepsItsEstablishedFlow) {
  ASSERT_TRUE(sync({web({backend("10.244.1.12:8080")})}));
  ASSERT_EQ(syn(kClient, 44000), "10.244.1.12");
  ASSERT_TRUE(sync({web({backend("10.244.1.11:8080"),
                         backend("10.244.1.12:8080", EndpointState::Terminating, false)})}));
  for (int i = 0; i < 20; ++i) {
    RunResult r =
        run(prog(), PacketBuilder::tcp(kClient, 44000, kVip, 80, kTcpAck).payload(10).build());
    ASSERT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    EXPECT_EQ(ip4str(testlib::fiveTuple(r.out)->daddr), "10.244.1.12");
  }
  EXPECT_EQ(spread(kClient, 45000, 30)["10.244.1.11"], 30);
}

Frontend affine(std::vector<BackendSpec> bs, uint32_t timeout, bool maglev = false) {
  Frontend f = web(std::move(bs));
  f.affinity = true;
  f.affinityTimeout = timeout;
  if (maglev) f.annotations["svclb.io/lb-algorithm"] = "maglev";
  return f;
}

TEST_P(Select, AffinityPinsAClientAcrossConnectionsAndCtLoss) {
  ASSERT_TRUE(sync({affine({backend("10.244.1.11:8080"), backend("10.244.1.12:8080"),
                            backend("10.244.1.13:8080"), backend("10.244.1.14:8080")},
                           10800)}));
  auto m = spread(kClient, 46000, 50);
  ASSERT_EQ(m.size(), 1u) << "50 connections of one client went to several backends";
  const std::string chosen = m.begin()->first;
  ASSERT_NE(chosen, "");

  // Affinity outlives conntrack.
  for (auto ct : {dp().conntrack(), dp().conntrackEst()}) {
    std::vector<ct_key> keys;
    ct.forEach([&](const ct_key& k, const ct_value&) { keys.push_back(k); });
    for (const auto& k : keys) ASSERT_TRUE(ct.erase(k).ok());
  }
  ASSERT_EQ(ctEntries(), 0u);
  EXPECT_EQ(spread(kClient, 47000, 20)[chosen], 20);

  // Other clients are balanced independently: over 40 clients, more than
  // one backend is used.
  std::set<std::string> seen;
  for (int c = 0; c < 40; ++c) seen.insert(syn("10.244.3." + std::to_string(c + 1), 40000));
  EXPECT_GT(seen.size(), 1u);

  // Removing the chosen backend moves the client, and the new choice sticks.
  std::vector<BackendSpec> rest;
  for (auto ip : {"10.244.1.11", "10.244.1.12", "10.244.1.13", "10.244.1.14"})
    if (chosen != ip) rest.push_back(backend(std::string(ip) + ":8080"));
  ASSERT_TRUE(sync({affine(rest, 10800)}));
  auto after = spread(kClient, 48000, 20);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after.begin()->first, chosen);
}

TEST_P(Select, AffinityExpiresAfterTheIdleTimeout) {
  // Maglev makes the fresh choice deterministic: whatever the affinity entry
  // says, an expired one must give way to the Maglev pick.
  const std::vector<BackendSpec> bs = {backend("10.244.1.11:8080"), backend("10.244.1.12:8080"),
                                       backend("10.244.1.13:8080")};
  ASSERT_TRUE(sync({affine(bs, 2, /*maglev=*/true)}));
  const std::string fresh = syn(kClient, 49000);
  ASSERT_NE(fresh, "");
  const std::string other = fresh == "10.244.1.11" ? "10.244.1.12" : "10.244.1.11";
  const uint32_t sid = svcId(kWeb);
  const uint32_t otherId = backendId(kWeb, ip4(other), 8080);
  affinity_key key{sid, htonl(ip4(kClient))};
  auto aff = dp().affinity();

  // Within the timeout (used 1 s ago), the remembered backend wins.
  ASSERT_TRUE(aff.update(key, affinity_value{otherId, 0, monoNs() - 1'000'000'000ull}).ok());
  EXPECT_EQ(syn(kClient, 49001), other);
  auto v = aff.lookup(key);
  ASSERT_TRUE(v);
  EXPECT_GT(v->last_used_ns, monoNs() - 500'000'000ull) << "a hit must refresh the timestamp";

  // Idle for longer than the timeout (3 s > 2 s): a new choice is made.
  ASSERT_TRUE(aff.update(key, affinity_value{otherId, 0, monoNs() - 3'000'000'000ull}).ok());
  EXPECT_EQ(syn(kClient, 49002), fresh);
  v = aff.lookup(key);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->backend_id, backendId(kWeb, ip4(fresh), 8080));
}

TEST_P(Select, MaglevPicksTheSameBackendOnEveryNodeWithoutCt) {
  std::vector<BackendSpec> bs;
  for (int i = 1; i <= 7; ++i)
    bs.push_back(backend("10.244.1." + std::to_string(10 + i) + ":8080"));
  Frontend f = web(bs);
  f.annotations["svclb.io/lb-algorithm"] = "maglev";
  ASSERT_TRUE(sync({f}));

  // A second "node": its own dataplane, the backends given in another order
  // (so its backend ids differ).
  BpfEnv node2;
  ASSERT_EQ(node2.load(), "");
  Frontend f2 = f;
  std::reverse(f2.backends.begin(), f2.backends.end());
  std::vector<BackendSpec> decoy = {backend("10.244.9.9:8080")};
  ASSERT_TRUE(node2.sync({frontend("10.96.0.99", 80, kTcp, decoy, "decoy"), f2}));
  ASSERT_NE(node2.backendId(kWeb, ip4("10.244.1.11"), 8080),
            backendId(kWeb, ip4("10.244.1.11"), 8080))
      << "the test wants different ids on the two nodes";

  std::map<std::string, int> used;
  for (int i = 0; i < 200; ++i) {
    const std::string client = "10.244." + std::to_string(2 + i % 3) + "." + std::to_string(1 + i);
    const Bytes in = PacketBuilder::tcp(client, uint16_t(30000 + i * 7), kVip, 80).build();
    RunResult a = run(prog(), in), b = node2.run(prog(), in);
    ASSERT_EQ(a.retval, retvalOf(prog(), Verdict::Pass));
    ASSERT_EQ(b.retval, retvalOf(prog(), Verdict::Pass));
    const auto ta = testlib::fiveTuple(a.out), tb = testlib::fiveTuple(b.out);
    ASSERT_EQ(ta->daddr, tb->daddr) << "flow " << i << " went to different backends";
    used[ip4str(ta->daddr)]++;
    // And again on node 1 after forgetting all CT state: same backend.
    if (i % 50 == 0) {
      for (auto ct : {dp().conntrack(), dp().conntrackEst()}) {
        std::vector<ct_key> keys;
        ct.forEach([&](const ct_key& k, const ct_value&) { keys.push_back(k); });
        for (const auto& k : keys) ASSERT_TRUE(ct.erase(k).ok());
      }
      RunResult again = run(prog(), in);
      EXPECT_EQ(testlib::fiveTuple(again.out)->daddr, ta->daddr);
    }
  }
  EXPECT_EQ(used.size(), 7u) << "every backend should get some of 200 flows";
}

INSTANTIATE_TEST_SUITE_P(Both, Select, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& i) { return std::string(progName(i.param)); });

}  // namespace
}  // namespace svclb::bpftest
