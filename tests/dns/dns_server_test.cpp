// dns::Server over real sockets. main() first moves the whole process into a
// new network namespace (before gtest or any thread starts), so the
// listeners on 127.0.0.1, the dnsmasq upstream on 127.0.0.2 and every
// packet stay in a namespace this binary created; nothing touches the root
// namespace. The Authority is a table (a test double of the interface; the
// real Zone has its own tests); the upstream is a real dnsmasq, started and
// killed by PID in each test's SetUp/TearDown (and killed by the kernel if
// this process dies: PR_SET_PDEATHSIG).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dns/server.h"

namespace svclb::dns {
namespace {

constexpr int kPort = 5300;          // the server under test, 127.0.0.1
constexpr int kUpstreamPort = 5353;  // dnsmasq, 127.0.0.2

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(tolower(static_cast<unsigned char>(c)));
  return out;
}

Record soa() {
  Record r;
  r.name = "cluster.local.";
  r.type = kTypeSOA;
  r.ttl = 5;
  r.target = "ns.dns.cluster.local.";
  r.rname = "hostmaster.cluster.local.";
  r.serial = 1;
  r.refresh = 7200;
  r.retry = 1800;
  r.expire = 86400;
  r.minimum = 5;
  return r;
}

Record a(const std::string& name, uint32_t ip, uint32_t ttl = 5) {
  Record r;
  r.name = name;
  r.type = kTypeA;
  r.ttl = ttl;
  r.ipv4 = ip;
  return r;
}

// The Authority double: names under cluster.local. from a table (NXDOMAIN
// or NODATA with the SOA otherwise), everything else Forward.
class TableAuthority : public Authority {
 public:
  TableAuthority() {
    add("web.default.svc.cluster.local.", kTypeA,
        {a("web.default.svc.cluster.local.", 0x0a600014)});
    Record srv;
    srv.name = "_http._tcp.web.default.svc.cluster.local.";
    srv.type = kTypeSRV;
    srv.ttl = 5;
    srv.priority = 0;
    srv.weight = 100;
    srv.port = 80;
    srv.target = "web.default.svc.cluster.local.";
    Answer& s = add(srv.name, kTypeSRV, {srv});
    s.additional = {a("web.default.svc.cluster.local.", 0x0a600014)};
    Record txt;
    txt.name = "dns-version.cluster.local.";
    txt.type = kTypeTXT;
    txt.ttl = 5;
    txt.text = "1.1.0";
    add(txt.name, kTypeTXT, {txt});
    std::vector<Record> many;
    for (uint32_t i = 1; i <= 60; ++i)
      many.push_back(a("big.default.svc.cluster.local.", 0x0a000000 + i));
    add("big.default.svc.cluster.local.", kTypeA, many);
    Record cname;
    cname.name = "ext.default.svc.cluster.local.";
    cname.type = kTypeCNAME;
    cname.ttl = 5;
    cname.target = "target.ext.example.";
    add(cname.name, kTypeA, {cname}).chase = "target.ext.example.";
  }

  Answer& add(const std::string& name, uint16_t type, std::vector<Record> answer) {
    Answer& x = table_[{name, type}];
    x.answer = std::move(answer);
    return x;
  }

  Answer lookup(std::string_view qname, uint16_t qtype) const override {
    std::string n = lower(qname);
    if (n.empty() || n.back() != '.') n += '.';
    const std::string zone = "cluster.local.";
    if (n.size() < zone.size() || n.compare(n.size() - zone.size(), zone.size(), zone) != 0 ||
        (n.size() > zone.size() && n[n.size() - zone.size() - 1] != '.')) {
      Answer f;
      f.kind = Answer::Kind::Forward;
      return f;
    }
    if (auto it = table_.find({n, qtype}); it != table_.end()) return it->second;
    bool exists = false;
    for (const auto& [k, v] : table_) exists |= k.first == n;
    Answer x;
    x.rcode = exists ? kNoError : kNXDomain;
    x.authority = {soa()};
    return x;
  }

 private:
  std::map<std::pair<std::string, uint16_t>, Answer> table_;
};

// ---- a small DNS client over ldns ----

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// ednsSize < 0: no OPT.
std::string query(const std::string& name, uint16_t type, uint16_t id, int ednsSize = -1,
                  uint16_t cls = LDNS_RR_CLASS_IN) {
  ldns_pkt* p = ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), ldns_rr_type(type),
                                   ldns_rr_class(cls), LDNS_RD);
  ldns_pkt_set_id(p, id);
  if (ednsSize >= 0) {
    ldns_pkt_set_edns_udp_size(p, uint16_t(ednsSize));
    p->_edns_present = 1;
  }
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, p, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(buf), size);
  free(buf);
  ldns_pkt_free(p);
  return out;
}

sockaddr_in addr(const char* ip, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  inet_pton(AF_INET, ip, &sa.sin_addr);
  return sa;
}

// One UDP exchange; "" after `timeoutMs` without an answer.
std::string udpRaw(const std::string& msg, const char* ip = "127.0.0.1", int port = kPort,
                   int timeoutMs = 3000) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = addr(ip, port);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      send(fd, msg.data(), msg.size(), 0) == ssize_t(msg.size())) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeoutMs) == 1) {
      char buf[65536];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) out.assign(buf, size_t(n));
    }
  }
  close(fd);
  return out;
}

bool readFull(int fd, char* p, size_t n, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (n) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - std::chrono::steady_clock::now())
                       .count());
    pollfd pfd{fd, POLLIN, 0};
    if (left <= 0 || poll(&pfd, 1, left) != 1) return false;
    ssize_t got = recv(fd, p, n, 0);
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
  }
  return true;
}

// Sends every message (framed) in one write on one connection and reads as
// many answers; fewer on a timeout or a close.
std::vector<std::string> tcpRaw(const std::vector<std::string>& msgs, int timeoutMs = 3000) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = addr("127.0.0.1", kPort);
  std::vector<std::string> out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    std::string all;
    for (const auto& m : msgs) {
      all += char(m.size() >> 8);
      all += char(m.size() & 0xff);
      all += m;
    }
    if (send(fd, all.data(), all.size(), MSG_NOSIGNAL) == ssize_t(all.size())) {
      for (size_t i = 0; i < msgs.size(); ++i) {
        unsigned char len[2];
        if (!readFull(fd, reinterpret_cast<char*>(len), 2, timeoutMs)) break;
        std::string m(size_t(len[0] << 8 | len[1]), '\0');
        if (!readFull(fd, m.data(), m.size(), timeoutMs)) break;
        out.push_back(std::move(m));
      }
    }
  }
  close(fd);
  return out;
}

Pkt parse(const std::string& wire) {
  ldns_pkt* p = nullptr;
  if (wire.empty() || ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()),
                                    wire.size()) != LDNS_STATUS_OK)
    return nullptr;
  return Pkt(p);
}

Pkt udp(const std::string& name, uint16_t type, int ednsSize = -1, uint16_t id = 0x1234) {
  return parse(udpRaw(query(name, type, id, ednsSize)));
}

Pkt tcp(const std::string& name, uint16_t type, uint16_t id = 0x4321) {
  auto r = tcpRaw({query(name, type, id)});
  return r.empty() ? nullptr : parse(r[0]);
}

std::string str(const ldns_rdf* d) {
  char* s = ldns_rdf2str(d);
  std::string out = s ? s : "";
  free(s);
  return out;
}

// "TYPE rdata..." of each RR of a section, e.g. "A 10.96.0.20".
std::vector<std::string> rrs(const ldns_rr_list* l) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(l, i);
    char* t = ldns_rr_type2str(ldns_rr_get_type(rr));
    std::string s = t;
    free(t);
    for (size_t j = 0; j < ldns_rr_rd_count(rr); ++j) s += " " + str(ldns_rr_rdf(rr, j));
    out.push_back(s);
  }
  return out;
}

std::string qname(const ldns_pkt* p) {
  if (ldns_pkt_qdcount(p) != 1) return "<no question>";
  return str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
}

// ---- dnsmasq, the upstream ----

class Dnsmasq {
 public:
  ~Dnsmasq() { stop(); }
  bool start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
             "--conf-file=/dev/null", "--listen-address=127.0.0.2", "--bind-interfaces",
             ("--port=" + std::to_string(kUpstreamPort)).c_str(), "--address=/up.example/10.9.8.7",
             "--address=/target.ext.example/10.1.2.3", "--address=/nx.example/",
             ("--txt-record=bigtxt.up.example," + std::string(250, 'a') + "," +
              std::string(250, 'b') + "," + std::string(250, 'c'))
                 .c_str(),
             "--txt-record=txt.up.example,hello", "--local-ttl=600", "--pid-file=", "--user=root",
             "--log-facility=/dev/null", static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ < 0) return false;
    // Ready once it answers (bounded: 5 s).
    for (int i = 0; i < 50; ++i) {
      if (!udpRaw(query("up.example.", kTypeA, 1), "127.0.0.2", kUpstreamPort, 100).empty())
        return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(upstream_.start()) << "dnsmasq did not start on 127.0.0.2:" << kUpstreamPort;
    cfg_.listen = {"127.0.0.1:" + std::to_string(kPort)};
    cfg_.upstreams = {"127.0.0.2:" + std::to_string(kUpstreamPort)};
    cfg_.upstreamTimeoutMs = 300;
    cfg_.upstreamTries = 1;
  }
  void startServer() {
    server_ = std::make_unique<Server>(cfg_, zone_);
    auto st = server_->start();
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  void TearDown() override {
    if (server_) server_->stop();
    upstream_.stop();
  }

  TableAuthority zone_;
  Dnsmasq upstream_;
  ServerConfig cfg_;
  std::unique_ptr<Server> server_;
};

TEST_F(DnsServerTest, InZoneAOverUdpAndTcpKeepsQuestionCase) {
  startServer();
  for (bool overTcp : {false, true}) {
    SCOPED_TRACE(overTcp ? "tcp" : "udp");
    Pkt r = overTcp ? tcp("WeB.Default.svc.CLUSTER.local.", kTypeA, 0x4321)
                    : udp("WeB.Default.svc.CLUSTER.local.", kTypeA, -1, 0x1234);
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_id(r.get()), overTcp ? 0x4321 : 0x1234);
    EXPECT_TRUE(ldns_pkt_qr(r.get()));
    EXPECT_TRUE(ldns_pkt_aa(r.get()));
    EXPECT_TRUE(ldns_pkt_ra(r.get()));
    EXPECT_TRUE(ldns_pkt_rd(r.get()));
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
    EXPECT_EQ(qname(r.get()), "WeB.Default.svc.CLUSTER.local.");
    EXPECT_EQ(rrs(ldns_pkt_answer(r.get())), std::vector<std::string>{"A 10.96.0.20"});
    EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.get()), 0)), 5u);
    // The owner may be compressed to the question's name (case as asked).
    EXPECT_EQ(lower(str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(r.get()), 0)))),
              "web.default.svc.cluster.local.");
  }
  auto c = server_->counters();
  EXPECT_EQ(c.queries, 2u);
  EXPECT_EQ(c.udp, 1u);
  EXPECT_EQ(c.tcp, 1u);
  EXPECT_EQ(c.noerror, 2u);
  EXPECT_EQ(c.forwarded, 0u);
}

TEST_F(DnsServerTest, SrvWithAdditionalAndTxt) {
  startServer();
  Pkt r = udp("_http._tcp.web.default.svc.cluster.local.", kTypeSRV);
  ASSERT_TRUE(r);
  EXPECT_EQ(rrs(ldns_pkt_answer(r.get())),
            std::vector<std::string>{"SRV 0 100 80 web.default.svc.cluster.local."});
  EXPECT_EQ(rrs(ldns_pkt_additional(r.get())), std::vector<std::string>{"A 10.96.0.20"});
  Pkt t = udp("dns-version.cluster.local.", kTypeTXT);
  ASSERT_TRUE(t);
  EXPECT_EQ(rrs(ldns_pkt_answer(t.get())), std::vector<std::string>{"TXT \"1.1.0\""});
}

TEST_F(DnsServerTest, NxdomainAndNodataCarryTheSoa) {
  startServer();
  Pkt nx = udp("nope.default.svc.cluster.local.", kTypeA);
  ASSERT_TRUE(nx);
  EXPECT_EQ(ldns_pkt_get_rcode(nx.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(ldns_pkt_aa(nx.get()));
  EXPECT_EQ(ldns_pkt_ancount(nx.get()), 0);
  EXPECT_EQ(rrs(ldns_pkt_authority(nx.get())),
            std::vector<std::string>{
                "SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"});
  Pkt nodata = tcp("web.default.svc.cluster.local.", kTypeTXT);
  ASSERT_TRUE(nodata);
  EXPECT_EQ(ldns_pkt_get_rcode(nodata.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(nodata.get()), 0);
  EXPECT_EQ(ldns_pkt_nscount(nodata.get()), 1);
  auto c = server_->counters();
  EXPECT_EQ(c.nxdomain, 1u);
  EXPECT_EQ(c.nodata, 1u);
  EXPECT_EQ(c.noerror, 0u);
}

TEST_F(DnsServerTest, FormerrNotimpRefused) {
  startServer();
  // A header that promises a question and ends.
  std::string garbage("\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07garb", 17);
  Pkt f = parse(udpRaw(garbage));
  ASSERT_TRUE(f);
  EXPECT_EQ(ldns_pkt_id(f.get()), 0xbeef);
  EXPECT_TRUE(ldns_pkt_qr(f.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(f.get()), LDNS_RCODE_FORMERR);
  // Two questions.
  std::string two = query("web.default.svc.cluster.local.", kTypeA, 7);
  two[5] = 2;
  two += two.substr(12);
  Pkt f2 = parse(udpRaw(two));
  ASSERT_TRUE(f2);
  EXPECT_EQ(ldns_pkt_get_rcode(f2.get()), LDNS_RCODE_FORMERR);
  // Opcode NOTIFY (4).
  std::string notify = query("web.default.svc.cluster.local.", kTypeA, 8);
  notify[2] = char((notify[2] & 0x87) | (4 << 3));
  Pkt ni = parse(udpRaw(notify));
  ASSERT_TRUE(ni);
  EXPECT_EQ(ldns_pkt_get_rcode(ni.get()), LDNS_RCODE_NOTIMPL);
  // Class CHAOS.
  Pkt ch = parse(udpRaw(query("version.bind.", kTypeTXT, 9, -1, LDNS_RR_CLASS_CH)));
  ASSERT_TRUE(ch);
  EXPECT_EQ(ldns_pkt_get_rcode(ch.get()), LDNS_RCODE_REFUSED);
  EXPECT_EQ(qname(ch.get()), "version.bind.");
  // A response is never answered.
  std::string resp = query("web.default.svc.cluster.local.", kTypeA, 10);
  resp[2] = char(resp[2] | 0x80);
  EXPECT_EQ(udpRaw(resp, "127.0.0.1", kPort, 300), "");
  auto c = server_->counters();
  EXPECT_EQ(c.formerr, 2u);
  EXPECT_EQ(c.notimp, 1u);
  EXPECT_EQ(c.refused, 1u);
  EXPECT_EQ(c.queries, 4u);
}

TEST_F(DnsServerTest, ForwardsToTheUpstreamAndCaches) {
  startServer();
  Pkt r = udp("Up.Example.", kTypeA, 1232, 0x0101);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_id(r.get()), 0x0101);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_ra(r.get()));
  EXPECT_EQ(qname(r.get()), "Up.Example.");
  EXPECT_EQ(rrs(ldns_pkt_answer(r.get())), std::vector<std::string>{"A 10.9.8.7"});
  uint32_t ttl0 = ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.get()), 0));
  EXPECT_EQ(ttl0, 600u);
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.cacheHits, 0u);

  // The same question in another case (with EDNS as before: that is part
  // of the key) comes from the cache, even with the upstream gone,
  // its TTL decreased by the age.
  upstream_.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  Pkt h = udp("uP.eXample.", kTypeA, 1232, 0x0202);
  ASSERT_TRUE(h);
  EXPECT_EQ(ldns_pkt_id(h.get()), 0x0202);
  EXPECT_EQ(qname(h.get()), "uP.eXample.");
  EXPECT_TRUE(ldns_pkt_ra(h.get()));
  EXPECT_EQ(rrs(ldns_pkt_answer(h.get())), std::vector<std::string>{"A 10.9.8.7"});
  uint32_t ttl1 = ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(h.get()), 0));
  EXPECT_GE(ttl0 - ttl1, 2u);
  EXPECT_LE(ttl0 - ttl1, 3u);
  c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.cacheHits, 1u);
  EXPECT_EQ(c.noerror, 2u);
}

// An upstream that refuses (dnsmasq without servers of its own, for a name
// it does not know) is answered as it said, REFUSED, not turned into our
// SERVFAIL, and not cached.
TEST_F(DnsServerTest, AnUpstreamRefusalIsPassedOnUncached) {
  startServer();
  for (int i = 0; i < 2; ++i) {
    Pkt r = udp("unknown.elsewhere.", kTypeA, 1232, 0x0303);
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_REFUSED);
  }
  auto c = server_->counters();
  EXPECT_EQ(c.refused, 2u);
  EXPECT_EQ(c.servfail, 0u);
  EXPECT_EQ(c.forwarded, 2u);
  EXPECT_EQ(c.cacheHits, 0u);
}

TEST_F(DnsServerTest, ForwardedTxtOverTcp) {
  startServer();
  Pkt r = tcp("txt.up.example.", kTypeTXT);
  ASSERT_TRUE(r);
  EXPECT_EQ(rrs(ldns_pkt_answer(r.get())), std::vector<std::string>{"TXT \"hello\""});
}

TEST_F(DnsServerTest, BigForwardedAnswerTruncatedForUdpFullOverTcp) {
  startServer();
  // 3 x 250 bytes of TXT: over 512. Forwarded without EDNS, dnsmasq sets
  // TC over UDP, c-ares asks again over TCP; the client gets TC (512).
  Pkt u = udp("bigtxt.up.example.", kTypeTXT);
  ASSERT_TRUE(u);
  EXPECT_TRUE(ldns_pkt_tc(u.get()));
  EXPECT_EQ(ldns_pkt_ancount(u.get()), 0);
  EXPECT_EQ(qname(u.get()), "bigtxt.up.example.");
  // Over TCP, the whole answer (from the cache: c-ares had it in full).
  Pkt t = tcp("bigtxt.up.example.", kTypeTXT);
  ASSERT_TRUE(t);
  EXPECT_FALSE(ldns_pkt_tc(t.get()));
  ASSERT_EQ(ldns_pkt_ancount(t.get()), 1);
  EXPECT_EQ(ldns_rr_rd_count(ldns_rr_list_rr(ldns_pkt_answer(t.get()), 0)), 3u);
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.cacheHits, 1u);
  EXPECT_EQ(c.truncated, 1u);
}

TEST_F(DnsServerTest, ServfailWhenTheUpstreamIsDown) {
  upstream_.stop();
  startServer();
  // An answer at all (udp() waits 3 s; the one try gives up after 300 ms).
  Pkt r = udp("down.example.", kTypeA);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(qname(r.get()), "down.example.");
  // Not cached: asked upstream again.
  Pkt r2 = udp("down.example.", kTypeA);
  ASSERT_TRUE(r2);
  EXPECT_EQ(ldns_pkt_get_rcode(r2.get()), LDNS_RCODE_SERVFAIL);
  auto c = server_->counters();
  EXPECT_EQ(c.servfail, 2u);
  EXPECT_EQ(c.forwarded, 2u);
  EXPECT_EQ(c.cacheHits, 0u);
}

TEST_F(DnsServerTest, FallsBackToTheNextUpstream) {
  // Nothing listens on 127.0.0.4:53 (port unreachable); dnsmasq is second.
  cfg_.upstreams = {"127.0.0.4", "127.0.0.2:" + std::to_string(kUpstreamPort)};
  startServer();
  Pkt r = udp("up.example.", kTypeA);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(rrs(ldns_pkt_answer(r.get())), std::vector<std::string>{"A 10.9.8.7"});
}

TEST_F(DnsServerTest, ServfailWithoutUpstreams) {
  cfg_.upstreams.clear();
  startServer();
  Pkt r = udp("up.example.", kTypeA);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_SERVFAIL);
}

TEST_F(DnsServerTest, BigAnswerTruncatedOverUdpFullOverTcp) {
  startServer();
  // Without EDNS the limit is 512: TC, no records, the question kept.
  Pkt small = udp("big.default.svc.cluster.local.", kTypeA);
  ASSERT_TRUE(small);
  EXPECT_TRUE(ldns_pkt_tc(small.get()));
  EXPECT_EQ(ldns_pkt_ancount(small.get()), 0);
  EXPECT_EQ(ldns_pkt_qdcount(small.get()), 1);
  EXPECT_EQ(qname(small.get()), "big.default.svc.cluster.local.");
  // EDNS with 4096: all 60 fit.
  Pkt edns = udp("big.default.svc.cluster.local.", kTypeA, 4096);
  ASSERT_TRUE(edns);
  EXPECT_FALSE(ldns_pkt_tc(edns.get()));
  EXPECT_EQ(ldns_pkt_ancount(edns.get()), 60);
  // EDNS with 512 (less than what fits): TC, the OPT kept.
  Pkt edns512 = udp("big.default.svc.cluster.local.", kTypeA, 512);
  ASSERT_TRUE(edns512);
  EXPECT_TRUE(ldns_pkt_tc(edns512.get()));
  EXPECT_EQ(ldns_pkt_ancount(edns512.get()), 0);
  EXPECT_EQ(ldns_pkt_edns_udp_size(edns512.get()), 1232);
  // TCP: the whole answer.
  Pkt full = tcp("big.default.svc.cluster.local.", kTypeA);
  ASSERT_TRUE(full);
  EXPECT_FALSE(ldns_pkt_tc(full.get()));
  EXPECT_EQ(ldns_pkt_ancount(full.get()), 60);
  EXPECT_EQ(server_->counters().truncated, 2u);
}

TEST_F(DnsServerTest, EdnsOptEchoedOnlyWhenAsked) {
  startServer();
  std::string withOpt = udpRaw(query("web.default.svc.cluster.local.", kTypeA, 1, 4096));
  Pkt r = parse(withOpt);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->_edns_present);
  EXPECT_EQ(ldns_pkt_edns_udp_size(r.get()), 1232);
  EXPECT_EQ(withOpt[11], 1);  // ARCOUNT: the OPT
  std::string without = udpRaw(query("web.default.svc.cluster.local.", kTypeA, 2));
  ASSERT_GE(without.size(), 12u);
  EXPECT_EQ(without[11], 0);
  // EDNS version 1: BADVERS (extended rcode 16: 1 in the OPT, 0 in the
  // header), our OPT (version 0) back.
  std::string v1 = query("web.default.svc.cluster.local.", kTypeA, 4, 1232);
  ASSERT_GE(v1.size(), 12u + 11u);
  v1[v1.size() - 11 + 6] = 1;  // the OPT's TTL: ext rcode, VERSION, flags
  Pkt bv = parse(udpRaw(v1));
  ASSERT_TRUE(bv);
  EXPECT_EQ(ldns_pkt_get_rcode(bv.get()), 0);
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(bv.get()), 1);
  EXPECT_EQ(ldns_pkt_edns_version(bv.get()), 0);
  EXPECT_EQ(ldns_pkt_ancount(bv.get()), 0);
  EXPECT_EQ(server_->counters().formerr, 1u);
  // Errors keep the OPT too.
  Pkt err = parse(udpRaw(query("version.bind.", kTypeTXT, 3, 1232, LDNS_RR_CLASS_CH)));
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->_edns_present);
}

TEST_F(DnsServerTest, SeveralQueriesOnOneTcpConnection) {
  startServer();
  auto replies = tcpRaw({query("web.default.svc.cluster.local.", kTypeA, 11),
                         query("up.example.", kTypeA, 12),  // forwarded: may come last
                         query("nope.default.svc.cluster.local.", kTypeA, 13)});
  ASSERT_EQ(replies.size(), 3u);
  std::map<uint16_t, ldns_pkt_rcode> got;
  std::vector<Pkt> keep;
  for (const auto& w : replies) {
    keep.push_back(parse(w));
    ASSERT_TRUE(keep.back());
    got[ldns_pkt_id(keep.back().get())] = ldns_pkt_get_rcode(keep.back().get());
  }
  EXPECT_EQ(got,
            (std::map<uint16_t, ldns_pkt_rcode>{
                {11, LDNS_RCODE_NOERROR}, {12, LDNS_RCODE_NOERROR}, {13, LDNS_RCODE_NXDOMAIN}}));
  EXPECT_EQ(server_->counters().tcp, 3u);
}

TEST_F(DnsServerTest, ChasesAnOutOfZoneCnameThroughTheUpstream) {
  startServer();
  for (int i = 0; i < 2; ++i) {  // the second from the cache
    SCOPED_TRACE(i);
    Pkt r = udp("Ext.default.svc.cluster.local.", kTypeA);
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NOERROR);
    EXPECT_EQ(qname(r.get()), "Ext.default.svc.cluster.local.");
    EXPECT_EQ(rrs(ldns_pkt_answer(r.get())),
              (std::vector<std::string>{"CNAME target.ext.example.", "A 10.1.2.3"}));
  }
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.cacheHits, 1u);
  EXPECT_EQ(c.noerror, 2u);
}

TEST_F(DnsServerTest, ChaseFailsWithServfailWhenTheUpstreamIsDown) {
  upstream_.stop();
  startServer();
  Pkt r = udp("ext.default.svc.cluster.local.", kTypeA);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_SERVFAIL);
}

TEST_F(DnsServerTest, DigAgreesOverUdpTcpAndBufsize) {
  startServer();
  auto dig = [](std::vector<std::string> extra) {
    std::vector<std::string> argv = {"dig",     "@127.0.0.1", "-p", std::to_string(kPort),
                                     "+time=2", "+tries=1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    int pipefd[2];
    EXPECT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(pipefd[1], STDOUT_FILENO);
      std::vector<char*> args;
      for (auto& s : argv) args.push_back(s.data());
      args.push_back(nullptr);
      execvp("dig", args.data());
      _exit(127);
    }
    close(pipefd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    close(pipefd[0]);
    waitpid(pid, nullptr, 0);
    return out;
  };
  std::string a = dig({"+tcp", "+noall", "+answer", "web.default.svc.cluster.local", "A"});
  EXPECT_NE(a.find("10.96.0.20"), std::string::npos) << a;
  // dig falls back to TCP on TC by itself: all 60 records.
  std::string big = dig({"+noedns", "+noall", "+answer", "big.default.svc.cluster.local", "A"});
  EXPECT_NE(big.find("10.0.0.60"), std::string::npos) << big;
  std::string tc = dig({"+noedns", "+ignore", "big.default.svc.cluster.local", "A"});
  EXPECT_NE(tc.find(" tc"), std::string::npos) << tc;
  std::string fwd = dig({"+bufsize=1232", "+noall", "+answer", "up.example", "A"});
  EXPECT_NE(fwd.find("10.9.8.7"), std::string::npos) << fwd;
}

TEST_F(DnsServerTest, NegativeAnswersCachedForTheNegativeTtl) {
  cfg_.negativeCacheTtl = 1;  // dnsmasq's NXDOMAIN for nx.example has no SOA
  startServer();
  for (int i = 0; i < 2; ++i) {
    Pkt r = udp("nx.example.", kTypeA);
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NXDOMAIN);
  }
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.cacheHits, 1u);
  EXPECT_EQ(c.nxdomain, 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // expired
  Pkt r = udp("nx.example.", kTypeA);
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(server_->counters().forwarded, 2u);
}

TEST_F(DnsServerTest, CacheEvictsTheLeastRecentlyUsed) {
  cfg_.cacheEntries = 2;
  startServer();
  for (const char* n : {"a.up.example.", "b.up.example.", "a.up.example.", "c.up.example.",
                        "a.up.example.", "b.up.example."})
    ASSERT_TRUE(udp(n, kTypeA)) << n;
  // a, b miss; a hits; c evicts b (a was used last); a hits; b misses.
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 4u);
  EXPECT_EQ(c.cacheHits, 2u);
}

TEST_F(DnsServerTest, TcpIdleTimeoutConnectionCapAndNoStallOnASlowClient) {
  cfg_.maxTcpConnections = 2;
  cfg_.tcpIdleTimeoutMs = 300;
  startServer();
  auto connectTcp = [] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa = addr("127.0.0.1", kPort);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  };
  auto closedWithin = [](int fd, int ms) {  // EOF from the server
    pollfd pfd{fd, POLLIN, 0};
    char b;
    return poll(&pfd, 1, ms) == 1 && recv(fd, &b, 1, 0) <= 0;
  };
  // Two clients that send half a frame and stall; the loop goes on.
  int slow1 = connectTcp(), slow2 = connectTcp();
  ASSERT_EQ(send(slow1, "\x00", 1, 0), 1);
  ASSERT_EQ(send(slow2,
                 "\x00\x30"
                 "ab",
                 4, 0),
            4);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(udp("web.default.svc.cluster.local.", kTypeA));
  // A third connection is over the cap: closed at once (well before the
  // 300 ms idle timeout could).
  int third = connectTcp();
  EXPECT_TRUE(closedWithin(third, 200));
  close(third);
  // The stalled ones are closed after the idle timeout (swept each second).
  EXPECT_TRUE(closedWithin(slow1, 2500));
  EXPECT_TRUE(closedWithin(slow2, 2500));
  close(slow1);
  close(slow2);
  // And the slots are free again.
  EXPECT_TRUE(tcp("web.default.svc.cluster.local.", kTypeA));
}

TEST_F(DnsServerTest, StartFailsWhenThePortIsTakenAndLeavesNothingBound) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = addr("127.0.0.1", kPort + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  cfg_.listen = {"127.0.0.1:" + std::to_string(kPort), "127.0.0.1:" + std::to_string(kPort + 1)};
  Server s(cfg_, zone_);
  auto st = s.start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "cannot listen on 127.0.0.1:5301/udp: Address already in use");
  close(fd);
  // The first address was released: a server can take it now.
  cfg_.listen = {"127.0.0.1:" + std::to_string(kPort)};
  startServer();
  EXPECT_TRUE(udp("web.default.svc.cluster.local.", kTypeA));

  ServerConfig bad = cfg_;
  bad.listen = {"10.96.0.10"};
  Server b(bad, zone_);
  auto bst = b.start();
  ASSERT_FALSE(bst.ok());
  EXPECT_EQ(bst.error().message, "bad DNS listen address \"10.96.0.10\": want IP:PORT");
  bad.listen = {"127.0.0.1:5399"};
  bad.upstreams = {"dns.example"};
  Server u(bad, zone_);
  auto ust = u.start();
  ASSERT_FALSE(ust.ok());
  EXPECT_EQ(ust.error().message, "bad DNS upstream \"dns.example\": want IP or IP:PORT");
}

TEST_F(DnsServerTest, OneUpstreamQueryForABurstOfTheSameQuestion) {
  // The test is the upstream here: it sees what is sent and answers by hand.
  int up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = addr("127.0.0.3", 5353);
  ASSERT_EQ(bind(up, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  cfg_.upstreams = {"127.0.0.3:5353"};
  cfg_.upstreamTimeoutMs = 3000;
  startServer();
  std::vector<int> clients;
  sockaddr_in srv = addr("127.0.0.1", kPort);
  for (uint16_t i = 0; i < 5; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&srv), sizeof srv), 0);
    std::string q = query("Burst.Example.", kTypeA, uint16_t(100 + i));
    ASSERT_EQ(send(fd, q.data(), q.size(), 0), ssize_t(q.size()));
    clients.push_back(fd);
  }
  // Exactly one query reaches the upstream.
  char buf[4096];
  sockaddr_in from{};
  socklen_t fromLen = sizeof from;
  pollfd pfd{up, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 2000), 1);
  ssize_t n = recvfrom(up, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromLen);
  ASSERT_GT(n, 12);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(recv(up, buf + 2048, 2048, MSG_DONTWAIT), -1) << "a second query went upstream";
  // Its answer: the query + one A record (name: a pointer to the question).
  std::string ans(buf, size_t(n));
  ans[2] = char(ans[2] | 0x80);  // QR
  ans[7] = 1;                    // ANCOUNT
  ans += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04", 16);
  ASSERT_EQ(sendto(up, ans.data(), ans.size(), 0, reinterpret_cast<sockaddr*>(&from), fromLen),
            ssize_t(ans.size()));
  for (uint16_t i = 0; i < 5; ++i) {
    pollfd c{clients[i], POLLIN, 0};
    ASSERT_EQ(poll(&c, 1, 2000), 1) << "client " << i;
    ssize_t got = recv(clients[i], buf, sizeof buf, 0);
    Pkt r = parse(std::string(buf, size_t(std::max<ssize_t>(got, 0))));
    ASSERT_TRUE(r);
    EXPECT_EQ(ldns_pkt_id(r.get()), 100 + i);
    EXPECT_EQ(qname(r.get()), "Burst.Example.");
    EXPECT_EQ(rrs(ldns_pkt_answer(r.get())), std::vector<std::string>{"A 1.2.3.4"});
    close(clients[i]);
  }
  auto c = server_->counters();
  EXPECT_EQ(c.forwarded, 1u);
  EXPECT_EQ(c.coalesced, 4u);
  EXPECT_EQ(c.noerror, 5u);
  close(up);
}

TEST_F(DnsServerTest, StopsPromptlyWithAQueryUpstream) {
  // An upstream that never answers: the query is in flight when stop() runs.
  int silent = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = addr("127.0.0.3", 5353);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  cfg_.upstreams = {"127.0.0.3:5353"};
  cfg_.upstreamTimeoutMs = 5000;
  startServer();
  std::thread asker([] { udpRaw(query("slow.example.", kTypeA, 1), "127.0.0.1", kPort, 500); });
  asker.join();
  pollfd pfd{silent, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 1000), 1);  // it did go upstream
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  // A stop that waited for the query would take its 5 s timeout: half of it
  // tells the two apart on a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_EQ(server_->counters().forwarded, 1u);
  close(silent);
}

}  // namespace

// `dns_server_tests --dnsperf ARGS...`: not a test. Serves the table zone
// (upstream dnsmasq) on 127.0.0.1:5300 in this binary's namespace, runs
// `dnsperf -s 127.0.0.1 -p 5300 ARGS...` (its child, so in the same
// namespace) and prints the server's counters: how qps is measured.
int dnsperfMain(int argc, char** argv) {
  TableAuthority zone;
  Dnsmasq upstream;
  if (!upstream.start()) {
    fprintf(stderr, "dnsmasq did not start\n");
    return 1;
  }
  ServerConfig cfg;
  cfg.listen = {"127.0.0.1:" + std::to_string(kPort)};
  cfg.upstreams = {"127.0.0.2:" + std::to_string(kUpstreamPort)};
  Server server(cfg, zone);
  if (auto st = server.start(); !st) {
    fprintf(stderr, "%s\n", st.error().message.c_str());
    return 1;
  }
  std::vector<std::string> args = {"dnsperf", "-s", "127.0.0.1", "-p", std::to_string(kPort)};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> a;
    for (auto& x : args) a.push_back(x.data());
    a.push_back(nullptr);
    execvp("dnsperf", a.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  server.stop();
  auto c = server.counters();
  printf(
      "server counters: queries %lu udp %lu tcp %lu noerror %lu nodata %lu nxdomain %lu servfail "
      "%lu "
      "forwarded %lu cacheHits %lu truncated %lu\n",
      c.queries, c.udp, c.tcp, c.noerror, c.nodata, c.nxdomain, c.servfail, c.forwarded,
      c.cacheHits, c.truncated);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace svclb::dns

int main(int argc, char** argv) {
  // Listing the tests (ctest's discovery at build time) needs no namespace.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]) == "--gtest_list_tests";
  if (listing) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
  }
  // First of all, before any thread exists: a network namespace of our own
  // with only `lo`, up. Everything after this stays in it.
  if (unshare(CLONE_NEWNET) != 0) {
    fprintf(stderr, "dns_server_tests: unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
    return 1;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr)) != 0) {
    fprintf(stderr, "dns_server_tests: bringing up lo: %s\n", strerror(errno));
    return 1;
  }
  close(fd);
  if (argc >= 2 && std::string(argv[1]) == "--dnsperf") return svclb::dns::dnsperfMain(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
