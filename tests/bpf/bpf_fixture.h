// Shared fixture of the BPF packet tests: a freshly loaded Dataplane with
// private (unpinned) maps per test, frontends written through the real
// planSync/Syncer path, and BPF_PROG_TEST_RUN on the tc and XDP programs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "loader/dataplane.h"
#include "loader/syncer.h"
#include "model/model.h"
#include "tests/testlib/packet.h"

namespace svclb::bpftest {

using testlib::Bytes;
using testlib::FiveTuple;
using testlib::PacketBuilder;

constexpr uint8_t kTcp = 6, kUdp = 17;

// Which entry program a case runs through.
enum class Prog { Tc, Xdp };
const char* progName(Prog p);
inline void PrintTo(Prog p, std::ostream* os) { *os << progName(p); }

// The program-independent verdict and its return code per program:
// tc: TC_ACT_OK = 0, TC_ACT_SHOT = 2, TC_ACT_REDIRECT = 7 (reject sent back),
// TC_ACT_UNSPEC = -1 for a packet left untouched (tcx: the next program
// runs); XDP: XDP_PASS = 2 (translated or untouched), XDP_DROP = 1, XDP_TX = 3.
enum class Verdict { Pass, Drop, Reject, Untouched };
uint32_t retvalOf(Prog p, Verdict v);
std::string verdictName(Prog p, uint32_t retval);

// lb_stats in a comparable, printable form.
struct Counters {
  uint64_t packets = 0, bytes = 0, replyPackets = 0, replyBytes = 0, flows = 0, rejects = 0;
  bool operator==(const Counters&) const = default;
};
Counters counters(const lb_stats& s);
void PrintTo(const Counters& c, std::ostream* os);

struct RunResult {
  int err = 0;  // bpf_prog_test_run_opts() return value (0 or -errno)
  uint32_t retval = 0;
  Bytes out;
};
RunResult testRun(int progFd, const Bytes& in);
// The same, with the interface the packet arrives on in the context (the
// FIB lookups of the node-NIC, hairpin and ICMP paths start there): a tc
// program (__sk_buff.ifindex) or an XDP one (xdp_md.ingress_ifindex).
RunResult testRunTc(int progFd, const Bytes& in, uint32_t ifindex);
RunResult testRunXdp(int progFd, const Bytes& in, uint32_t ifindex);

// "10.244.1.11:8080" -> a Ready backend.
BackendSpec backend(const std::string& addrPort, EndpointState state = EndpointState::Ready,
                    bool serving = true);
Frontend frontend(const std::string& vip, uint16_t port, uint8_t proto,
                  std::vector<BackendSpec> backends, const std::string& name = "web");

// The standard service set of the tables.
//  tcp-web: TCP 10.96.0.10:80  -> 10.244.1.11:8080, 10.244.1.12:8080
//  udp-dns: UDP 10.96.0.10:53  -> 10.244.1.11:5353, 10.244.1.12:5353
//  tls:     TCP 10.96.0.11:443 -> 10.244.1.31:443  (same port: no port rewrite)
//  udp-one: UDP 10.96.0.12:53  -> 10.244.1.41:5353
//  empty:   TCP 10.96.0.13:80  -> (no endpoints)
//  empty-udp: UDP 10.96.0.13:53 -> (no endpoints)
std::vector<Frontend> standardFrontends();
inline const std::string kClient = "10.244.2.5";
inline const std::string kVip = "10.96.0.10";

class BpfEnv {
 public:
  // Loads a new Dataplane (private maps) and a Syncer over it; returns ""
  // or the error.
  // `csumHelpers`: the test build's CHECKSUM_COMPLETE path for every tc
  // rewrite (DataplaneConfig::testTcCsumHelpers).
  std::string load(bool csumHelpers = false);
  // The configuration load() uses: private (unpinned) small maps, so a
  // fresh Dataplane per test stays cheap.
  static DataplaneConfig smallConfig();
  // Plans and applies `desired` through the Syncer (the daemon's path).
  ::testing::AssertionResult sync(const std::vector<Frontend>& desired);

  int progFd(Prog p) const;
  RunResult run(Prog p, const Bytes& in) const { return testRun(progFd(p), in); }

  uint32_t svcId(const FrontendKey& k) const;
  // Backend id of addr:port in frontend k (0 if none).
  uint32_t backendId(const FrontendKey& k, uint32_t addr, uint16_t port) const;
  lb_stats svcStats(const FrontendKey& k) const;
  lb_stats backendStats(uint32_t id) const;
  drop_stats drops(uint32_t reason) const;
  // Sum over every drop reason.
  drop_stats allDrops() const;
  size_t ctEntries() const;
  // A new Syncer that keeps be_rev_v1 empty (SyncOptions::singleEntryFlows
  // false): every flow takes two CT entries. Before the first sync().
  void pairsOnly();
  // be_rev_v1's designation of backend addr:port (host order), if any.
  std::optional<be_rev_value> beRev(uint32_t addr, uint16_t port, uint8_t proto) const;
  // Sets lb_filter_v1's bit of an element, for tests that write svc6_v1 and
  // the backend maps by hand instead of through the Syncer (which keeps the
  // bitmap itself); bits the Syncer set stay.
  void addFilterElem(LbFilter::Elem e);

  Dataplane& dp() { return *dp_; }
  Syncer& syncer() { return *syncer_; }

 protected:
  std::unique_ptr<Dataplane> dp_;
  std::unique_ptr<Syncer> syncer_;
};

template <class Base>
class BpfTestBase : public Base, public BpfEnv {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "bpf_tests need root (map creation, BPF_PROG_TEST_RUN)";
    std::string err = load();
    ASSERT_EQ(err, "") << "loading the dataplane failed";
  }
};

using BpfTest = BpfTestBase<::testing::Test>;
template <class P>
using BpfTestP = BpfTestBase<::testing::TestWithParam<P>>;

// Checks a translated frame against its input: same length, only the
// rewritten address/port and the two checksums differ, both checksums
// verify (a UDP checksum of 0 must stay 0). `dst`: DNAT (else reverse NAT).
::testing::AssertionResult onlyNatFieldsChanged(const Bytes& in, const Bytes& out, bool dst);

// Test-name-safe form of a description.
std::string sanitize(const std::string& s);

}  // namespace svclb::bpftest
