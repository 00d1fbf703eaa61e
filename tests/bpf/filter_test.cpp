// lb_filter_v1 (issue 15): the bitmap of every frontend's and backend's
// {address, port} that lets a packet of neither pass without its CT and
// service lookups. The daemon's side keeps it equal to what the maps hold
// (set before the entries that need it, cleared after); the packet path
// takes the shortcut only for packets whose two ends both miss it.
#include <arpa/inet.h>

#include <chrono>
#include <map>

#include "loader/lb_filter.h"
#include "tests/bpf/bpf_fixture.h"

namespace svclb::bpftest {
namespace {

using testlib::ip4;
using testlib::kTcpAck;

LbFilter::Elem elem(const std::string& addr, uint16_t port, bool backend) {
  return LbFilter::ipv4(htonl(ip4(addr)), htons(port), backend);
}

bool bitInMap(const Dataplane& dp, LbFilter::Elem e) {
  const uint32_t bit = LbFilter::bitOf(e);
  const auto w = dp.lbFilter().lookup(bit / 64);
  return w && ((*w >> (bit % 64)) & 1);
}

// Every frontend and backend of `fs`, as elements.
std::vector<std::pair<std::string, LbFilter::Elem>> elementsOf(const std::vector<Frontend>& fs) {
  std::vector<std::pair<std::string, LbFilter::Elem>> out;
  for (const auto& f : fs) {
    out.emplace_back(f.name + " frontend",
                     LbFilter::ipv4(htonl(f.key.vip), htons(f.key.port), false));
    for (const auto& b : f.backends)
      out.emplace_back(f.name + " backend " + formatIPv4(b.ip) + ":" + std::to_string(b.port),
                       LbFilter::ipv4(htonl(b.ip), htons(b.port), true));
  }
  return out;
}

// The whole map, word by word.
std::vector<uint64_t> mapWords(const Dataplane& dp) {
  std::vector<uint64_t> out(2 * SVCLB_FILTER_WORDS);
  for (uint32_t i = 0; i < out.size(); ++i) out[i] = dp.lbFilter().lookup(i).value_or(0);
  return out;
}

// Two different elements on one bit (found by search: a fixed address,
// ports counted up until two share a bit; 2^21 bits make that quick).
std::pair<LbFilter::Elem, LbFilter::Elem> collidingPair() {
  std::map<uint32_t, LbFilter::Elem> seen;
  for (uint32_t i = 0;; ++i) {
    const auto e = LbFilter::ipv4(htonl(ip4("10.250.0.1") + i / 60000), htons(1 + i % 60000), true);
    auto [it, fresh] = seen.try_emplace(LbFilter::bitOf(e), e);
    if (!fresh) return {it->second, e};
  }
}

TEST(LbFilterCounts, ABitStaysSetWhileAnyOfItsElementsIsThere) {
  const auto [a, b] = collidingPair();
  ASSERT_FALSE(a == b);
  LbFilter f;
  f.add(a);
  f.add(b);
  EXPECT_TRUE(f.test(a));
  f.remove(a);
  EXPECT_TRUE(f.test(b)) << "removing one element cleared a bit another still needs";
  f.remove(b);
  EXPECT_FALSE(f.test(b));
  EXPECT_EQ(f.bitsSet(), 0u);
  // An element added twice (two frontends on one backend address) needs
  // two removals.
  f.add(a);
  f.add(a);
  f.remove(a);
  EXPECT_TRUE(f.test(a));
}

class Filter : public BpfTestP<Prog> {
 protected:
  Prog prog() const { return GetParam(); }

  // A hand-written FORWARD CT entry kClient:sport -> dst:dport naming
  // tcp-web's backend `backend`:8080, which the CT path would follow. A
  // non-opening segment of that tuple must pass untouched (`why` when it
  // does not); once dst:dport is marked a frontend, it takes the CT path and
  // goes to `backend`.
  void skippedUntilMarkedFrontend(const std::string& dst, uint16_t dport, uint16_t sport,
                                  const std::string& backend, const std::string& why) {
    ASSERT_TRUE(sync(standardFrontends()));
    const FrontendKey web{ip4(kVip), 80, IPPROTO_TCP};
    const uint32_t be = backendId(web, ip4(backend), 8080);
    ASSERT_NE(be, 0u);
    ct_key k{};
    k.saddr = htonl(ip4(kClient));
    k.daddr = htonl(ip4(dst));
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.proto = IPPROTO_TCP;
    ct_value v{};
    v.nat_addr = htonl(ip4(backend));
    v.nat_port = htons(8080);
    v.dir = CT_DIR_FORWARD;
    v.backend_id = be;
    v.svc_id = svcId(web);
    v.last_seen = dp().nowTicks();
    ASSERT_TRUE(dp().conntrack().update(k, v));

    const Bytes in = PacketBuilder::tcp(kClient, sport, dst, dport, kTcpAck).build();
    RunResult r = run(prog(), in);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Untouched));
    EXPECT_EQ(r.out, in) << why;

    addFilterElem(elem(dst, dport, false));
    r = run(prog(), in);
    EXPECT_EQ(r.retval, retvalOf(prog(), Verdict::Pass));
    auto t = testlib::fiveTuple(r.out);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->daddr, ip4(backend)) << "the CT path did not take the packet";
  }
};

TEST_P(Filter, SyncSetsEveryFrontendAndBackendAndClearsWhatGoes) {
  auto fs = standardFrontends();
  ASSERT_TRUE(sync(fs));
  for (const auto& [what, e] : elementsOf(fs)) EXPECT_TRUE(bitInMap(dp(), e)) << what;
  auto sharedWithOthers = [&](const LbFilter::Elem& e, const std::vector<Frontend>& now) {
    for (const auto& [w, o] : elementsOf(now))
      if (LbFilter::bitOf(o) == LbFilter::bitOf(e)) return true;
    return false;
  };

  // Service "tls" (10.96.0.11:443 -> 10.244.1.31:443) goes; udp-one's
  // endpoint 10.244.1.41:5353 is replaced by 10.244.1.42:5353.
  std::vector<Frontend> next;
  for (auto f : fs) {
    if (f.name == "tls") continue;
    if (f.name == "udp-one") f.backends = {backend("10.244.1.42:5353")};
    next.push_back(f);
  }
  ASSERT_TRUE(sync(next));
  for (const auto& [what, e] : elementsOf(next)) EXPECT_TRUE(bitInMap(dp(), e)) << what;
  // udp-one's old endpoint goes at once; "tls", a TCP Service, is retired
  // (its connections go on): its frontend's and backend's bits stay ...
  if (!sharedWithOthers(elem("10.244.1.41", 5353, true), next)) {
    EXPECT_FALSE(bitInMap(dp(), elem("10.244.1.41", 5353, true)))
        << "a removed UDP backend's bit stayed set";
  }
  const auto tls = {elem("10.96.0.11", 443, false), elem("10.244.1.31", 443, true)};
  for (const auto& e : tls) EXPECT_TRUE(bitInMap(dp(), e)) << "a retired frontend's bit cleared";
  // ... until its connections ended (the daemon's conntrack walk finds none).
  auto freed = syncer().freeDrained({}, std::chrono::steady_clock::now() + std::chrono::seconds(1));
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(*freed, 1u);
  for (const auto& gone : tls) {
    if (sharedWithOthers(gone, next)) continue;  // its bit is another element's too
    EXPECT_FALSE(bitInMap(dp(), gone)) << "a removed frontend's or backend's bit stayed set";
  }

  // What a restarted daemon does: adopt the maps and rebuild the bitmap.
  // Cleared first, the map comes back word for word.
  const auto before = mapWords(dp());
  for (uint32_t i = 0; i < before.size(); ++i) {
    if (before[i]) {
      ASSERT_TRUE(dp().lbFilter().update(i, 0));
    }
  }
  Syncer again(dp());
  ASSERT_TRUE(again.adopt());
  EXPECT_EQ(mapWords(dp()), before);
}

// A packet whose ends are neither frontends nor backends passes before any
// CT lookup: a CT entry for its tuple (here written by hand, naming a live
// backend, which the CT path would follow) is not consulted. Once its
// destination is in the bitmap, the same packet takes the CT path and is
// translated: so the first verdict came from the filter.
TEST_P(Filter, PacketOfNeitherEndSkipsTheConntrackLookup) {
  skippedUntilMarkedFrontend("10.96.0.99", 80, 41000, "10.244.1.11",
                             "translated by a CT entry the filter should have skipped");
}

// A backend as DESTINATION (a direct or socket-balanced flow's packet) is
// not a reason for the CT path: no CT key has a backend as destination.
// Only the bitmaps' split says so: a hand-written CT entry keyed
// client -> backend, which the CT path would follow, is not consulted for
// a non-opening segment; with the same address:port marked a frontend, it
// is. (Opening packets toward a backend still run ct_take_over_tuple:
// Conntrack/port reuse tests.)
TEST_P(Filter, APacketToABackendIsNotLookedUpInConntrack) {
  ASSERT_TRUE(sync(standardFrontends()));
  ASSERT_TRUE(bitInMap(dp(), elem("10.244.1.11", 8080, true)));
  skippedUntilMarkedFrontend("10.244.1.11", 8080, 41001, "10.244.1.12",
                             "a packet to a backend took the CT path");
}

// From the load until the Syncer adopts the maps (the daemon's restore),
// the bitmap is all ones: every packet takes the full path. A restart from
// a build without lb_filter_v1 finds a new, empty map, which would pass
// Service packets untranslated until the restore wrote it.
TEST(FilterLoad, EveryBitIsSetUntilTheSyncerAdoptsTheMaps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (map creation)";
  DataplaneConfig cfg = BpfEnv::smallConfig();
  auto dp = Dataplane::load(cfg);
  ASSERT_TRUE(dp) << dp.error().message;
  for (uint32_t w : {0u, 1u, SVCLB_FILTER_WORDS, 2 * SVCLB_FILTER_WORDS - 1})
    EXPECT_EQ((*dp)->lbFilter().lookup(w).value_or(0), ~uint64_t{0}) << "word " << w;
  Syncer s(**dp);
  ASSERT_TRUE(s.adopt());
  for (uint32_t w : {0u, 1u, SVCLB_FILTER_WORDS, 2 * SVCLB_FILTER_WORDS - 1})
    EXPECT_EQ((*dp)->lbFilter().lookup(w).value_or(1), 0u) << "word " << w;
}

INSTANTIATE_TEST_SUITE_P(Both, Filter, ::testing::Values(Prog::Tc, Prog::Xdp),
                         [](const auto& info) { return progName(info.param); });

}  // namespace
}  // namespace svclb::bpftest
