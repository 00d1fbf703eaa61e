// The cluster DNS server: one event-loop thread (epoll) owns the UDP and TCP
// sockets, the TCP connections, the c-ares channel and the cache, so none of
// them needs a lock; the counters are atomics the loop alone writes.
//
// A query: ldns parses it; the Authority answers it (Local: ldns builds the
// reply from the Records) or says Forward (the raw query goes to the
// upstreams through c-ares, answered from the cache when it can). Replies
// that are only patched (forwarded, cached) stay wire bytes (dns/wire.h).
#include "dns/server.h"

#include <ares.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <thread>
#include <unordered_map>

#include "dns/wire.h"

namespace svclb::dns {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint16_t kBadVers = 16;

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

// "IP:PORT", "[IPv6]:PORT", or (defaultPort >= 0) "IP" / "IPv6".
bool parseHostPort(const std::string& s, int defaultPort, SockAddr& out, std::string& hostOut,
                   int& portOut) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) return false;
    host = s.substr(1, close - 1);
    std::string rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
    }
  } else {
    auto colons = std::count(s.begin(), s.end(), ':');
    if (colons == 1) {
      auto c = s.find(':');
      host = s.substr(0, c);
      port = s.substr(c + 1);
    } else {
      host = s;  // IPv4 without a port, or a bare IPv6 address
    }
  }
  int p = defaultPort;
  if (!port.empty() || defaultPort < 0) {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    p = std::stoi(port);
    if (p < 1 || p > 65535) return false;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(uint16_t(p));
    out.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(uint16_t(p));
    out.len = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  hostOut = host;
  portOut = p;
  return true;
}

// A wire name (uncompressed, as ldns holds it) in presentation form for the
// Authority: labels joined by dots, '.' and '\' escaped, odd bytes \DDD.
std::string presentation(const uint8_t* d, size_t n) {
  std::string out;
  out.reserve(n);
  size_t off = 0;
  while (off < n && d[off] != 0) {
    uint8_t len = d[off++];
    for (size_t i = 0; i < len && off + i < n; ++i) {
      uint8_t c = d[off + i];
      if (c == '.' || c == '\\') {
        out += '\\';
        out += char(c);
      } else if (c <= 0x20 || c >= 0x7f) {
        out += fmt::format("\\{:03d}", c);
      } else {
        out += char(c);
      }
    }
    off += len;
    out += '.';
  }
  if (out.empty()) out = ".";
  return out;
}

// "a.b.c." -> wire labels; false if a label is empty or longer than 63.
bool toWireName(std::string_view name, std::string& out) {
  out.clear();
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  while (!name.empty()) {
    auto dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return false;
    out += char(label.size());
    out.append(label);
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out += '\0';
  return out.size() <= 255;
}

ldns_rdf* dnameRdf(std::string_view name) {
  std::string w;
  if (!toWireName(name, w)) return nullptr;
  return ldns_dname_new_frm_data(uint16_t(w.size()), w.data());
}

void lowerAscii(std::string& s, size_t n) {
  for (size_t i = 0; i < n && i < s.size(); ++i)
    if (s[i] >= 'A' && s[i] <= 'Z') s[i] = char(s[i] + 32);
}

// One Record as an ldns RR (from its fields, no text parsing); null for a
// type the server does not write or a bad name.
ldns_rr* toLdns(const Record& r) {
  ldns_rdf* owner = dnameRdf(r.name);
  if (!owner) return nullptr;
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, owner);
  ldns_rr_set_type(rr, ldns_rr_type(r.type));
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, r.ttl);
  bool ok = true;
  auto pushName = [&](std::string_view n) {
    ldns_rdf* d = dnameRdf(n);
    if (!d)
      ok = false;
    else
      ldns_rr_push_rdf(rr, d);
  };
  switch (r.type) {
    case kTypeA: {
      uint32_t be = htonl(r.ipv4);
      ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &be));
      break;
    }
    case kTypeAAAA:
      ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, r.ipv6.data()));
      break;
    case kTypeCNAME:
    case kTypePTR:
    case kTypeNS:
      pushName(r.target);
      break;
    case kTypeSRV:
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, r.priority));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, r.weight));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, r.port));
      pushName(r.target);
      break;
    case kTypeTXT: {
      // One character-string holds 255 bytes; a longer text is split.
      size_t off = 0;
      do {
        size_t n = std::min<size_t>(255, r.text.size() - off);
        std::string s(1, char(n));
        s.append(r.text, off, n);
        ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, s.size(), s.data()));
        off += n;
      } while (off < r.text.size());
      break;
    }
    case kTypeSOA:
      pushName(r.target);
      pushName(r.rname);
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, r.serial));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, r.refresh));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, r.retry));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, r.expire));
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, r.minimum));
      break;
    default:
      ok = false;
  }
  if (!ok) {
    ldns_rr_free(rr);
    return nullptr;
  }
  return rr;
}

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

// What the server keeps of a query to answer it (now or when upstream
// answers).
struct Query {
  uint16_t id = 0;
  bool rd = false, cd = false;
  std::string question;  // wire: name as asked (case kept), type, class
  size_t nameLen = 0;    // of the name in `question`
  uint16_t qtype = 0, qclass = 0;
  bool edns = false, dnssecOk = false;
  uint16_t udpLimit = 512;
};

// Where the answer goes.
struct Origin {
  bool tcp = false;
  int fd = -1;          // UDP socket
  SockAddr peer;        // UDP client
  uint64_t connId = 0;  // TCP connection
};

struct Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string in, out;
  size_t outOff = 0;
  Clock::time_point last;
  int pending = 0;  // queries upstream
  bool eof = false, wantOut = false;
};

// Forwarded answers by (lowercase qname, qtype, qclass, EDNS/DO flags), LRU.
class Cache {
 public:
  explicit Cache(size_t cap) : cap_(cap) {}

  // The stored answer with `id` and TTLs decreased by its age; false on a
  // miss or an expired entry (dropped).
  bool get(const std::string& key, uint16_t id, Clock::time_point now, std::string& out) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    Entry& e = *it->second;
    auto age = uint32_t(std::chrono::duration_cast<std::chrono::seconds>(now - e.stored).count());
    if (age >= e.ttl) {
      lru_.erase(it->second);
      map_.erase(it);
      return false;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    out = e.wire;
    auto* p = reinterpret_cast<uint8_t*>(out.data());
    wire::put16(p, id);
    for (uint32_t off : e.ttlOffsets) wire::put32(p + off, wire::get32(p + off) - age);
    return true;
  }

  void put(const std::string& key, std::string_view reply, const wire::Layout& l, uint32_t ttl,
           Clock::time_point now) {
    if (cap_ == 0 || ttl == 0) return;
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.erase(it->second);
      map_.erase(it);
    }
    while (map_.size() >= cap_) {
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, std::string(reply), l.ttlOffsets, now, ttl});
    map_.emplace(key, lru_.begin());
  }

  size_t size() const { return map_.size(); }

 private:
  struct Entry {
    std::string key, wire;
    std::vector<uint32_t> ttlOffsets;
    Clock::time_point stored;
    uint32_t ttl;
  };
  size_t cap_;
  std::list<Entry> lru_;
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

// epoll data: kind in the top byte, fd or connection id below.
enum Kind : uint64_t { kWake = 1, kUdp = 2, kListen = 3, kConn = 4, kAres = 5 };
inline uint64_t tag(Kind k, uint64_t v) { return uint64_t(k) << 56 | v; }

struct AtomicCounters {
  std::atomic<uint64_t> queries{0}, udp{0}, tcp{0}, noerror{0}, nodata{0}, nxdomain{0}, servfail{0},
      refused{0}, formerr{0}, notimp{0}, forwarded{0}, cacheHits{0}, truncated{0}, coalesced{0};
};

// Only the loop thread writes: a relaxed load + store, no locked add.
inline void bump(std::atomic<uint64_t>& c) {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

struct Server::Impl {
  struct Pending {
    Impl* impl;
    Origin origin;
    Query q;
    std::string key;  // cache key
    bool chase = false;
    Answer answer;  // the local part of a chased answer
    // The same question asked again while this one is upstream: answered
    // from this one's reply (one upstream query for a burst).
    std::vector<std::unique_ptr<Pending>> followers;
  };
  std::unordered_map<std::string, Pending*> asking;  // by cache key

  const ServerConfig& cfg;
  const Authority& zone;
  std::vector<int> udpFds, tcpFds;
  int ep = -1, wakeFd = -1;
  ares_channel ch = nullptr;
  bool aresInit = false;
  std::thread thread;
  std::atomic<bool> stopping{false};
  bool running = false;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  uint64_t nextConn = 1;
  size_t inFlight = 0;
  Cache cache;
  AtomicCounters n;
  Clock::time_point now;
  std::string rbuf = std::string(65536, '\0');  // TCP reads
  static constexpr int kBatch = 32;
  static constexpr size_t kUdpBuf = 4096;  // one UDP query (they are small)
  std::vector<char> ubuf = std::vector<char>(kBatch * kUdpBuf);
  struct UdpOut {
    int fd;
    SockAddr peer;
    std::string data;
  };
  std::vector<UdpOut> udpOut;
  Conn* batching = nullptr;  // the TCP connection whose queries are being answered

  Impl(const ServerConfig& c, const Authority& z) : cfg(c), zone(z), cache(c.cacheEntries) {}
  ~Impl() { shutdown(); }

  void shutdown() {
    if (running) {
      stopping = true;
      uint64_t one = 1;
      (void)!write(wakeFd, &one, sizeof one);
      thread.join();
      running = false;
    }
    // c-ares calls every pending callback with ARES_EDESTRUCTION (they free
    // their Pending) and closes its sockets through sockState.
    if (ch) ares_destroy(ch);
    ch = nullptr;
    if (aresInit) ares_library_cleanup();
    aresInit = false;
    for (auto& [id, c] : conns) close(c->fd);
    conns.clear();
    for (int fd : udpFds) close(fd);
    for (int fd : tcpFds) close(fd);
    udpFds.clear();
    tcpFds.clear();
    if (wakeFd >= 0) close(wakeFd);
    if (ep >= 0) close(ep);
    wakeFd = ep = -1;
  }

  Status open() {
    for (const auto& l : cfg.listen) {
      SockAddr sa;
      std::string host;
      int port;
      if (!parseHostPort(l, -1, sa, host, port))
        return Error{EINVAL, fmt::format("bad DNS listen address \"{}\": want IP:PORT", l)};
      for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        const char* proto = type == SOCK_DGRAM ? "udp" : "tcp";
        int fd = socket(sa.ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return Error::fromErrno(errno, fmt::format("cannot listen on {}/{}", l, proto));
        (type == SOCK_DGRAM ? udpFds : tcpFds).push_back(fd);
        int on = 1;
        if (sa.ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        if (type == SOCK_STREAM) {
          setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // restart past TIME_WAIT
        } else {
          int rcv = 4 << 20;  // absorb bursts while the loop is busy
          setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        }
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa.ss), sa.len) != 0 ||
            (type == SOCK_STREAM && listen(fd, 128) != 0))
          return Error::fromErrno(errno, fmt::format("cannot listen on {}/{}", l, proto));
      }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    wakeFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep < 0 || wakeFd < 0) return Error::fromErrno(errno, "DNS server: epoll/eventfd");
    add(wakeFd, EPOLLIN, tag(kWake, 0));
    for (int fd : udpFds) add(fd, EPOLLIN, tag(kUdp, uint64_t(fd)));
    for (int fd : tcpFds) add(fd, EPOLLIN, tag(kListen, uint64_t(fd)));
    return openUpstreams();
  }

  Status openUpstreams() {
    if (cfg.upstreams.empty()) return {};  // Forward answers SERVFAIL
    std::string csv;
    for (const auto& u : cfg.upstreams) {
      SockAddr sa;
      std::string host;
      int port;
      if (!parseHostPort(u, 53, sa, host, port))
        return Error{EINVAL, fmt::format("bad DNS upstream \"{}\": want IP or IP:PORT", u)};
      if (!csv.empty()) csv += ',';
      csv += sa.ss.ss_family == AF_INET6 ? fmt::format("[{}]:{}", host, port)
                                         : fmt::format("{}:{}", host, port);
    }
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) return Error{EIO, fmt::format("c-ares: {}", ares_strerror(rc))};
    aresInit = true;
    ares_options o{};
    o.sock_state_cb = &Impl::sockState;
    o.sock_state_cb_data = this;
    o.timeout = std::max(1, cfg.upstreamTimeoutMs);
    o.tries = std::max(1, cfg.upstreamTries);
    // STAYOPEN: keep a TCP connection upstream once opened. NOCHECKRESP: an
    // upstream's REFUSED / SERVFAIL / NOTIMP is its answer, passed on (as
    // CoreDNS's forward does); c-ares would otherwise drop it, try the
    // next upstream and report a bare error. A server that does not answer
    // at all is still skipped for the next one.
    o.flags = ARES_FLAG_STAYOPEN | ARES_FLAG_NOCHECKRESP;
    // NOROTATE: the upstreams in the given order, whatever resolv.conf's
    // "options rotate" says (c-ares reads it for what we leave unset).
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
               ARES_OPT_NOROTATE;
    rc = ares_init_options(&ch, &o, mask);
    if (rc != ARES_SUCCESS) return Error{EIO, fmt::format("c-ares: {}", ares_strerror(rc))};
    rc = ares_set_servers_ports_csv(ch, csv.c_str());
    if (rc != ARES_SUCCESS)
      return Error{EINVAL, fmt::format("DNS upstreams \"{}\": {}", csv, ares_strerror(rc))};
    return {};
  }

  void add(int fd, uint32_t events, uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  static void sockState(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    if (self->ep < 0) return;
    if (!readable && !writable) {
      epoll_ctl(self->ep, EPOLL_CTL_DEL, fd, nullptr);
      return;
    }
    epoll_event ev{};
    ev.events = (readable ? uint32_t(EPOLLIN) : 0u) | (writable ? uint32_t(EPOLLOUT) : 0u);
    ev.data.u64 = tag(kAres, uint64_t(fd));
    if (epoll_ctl(self->ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
      epoll_ctl(self->ep, EPOLL_CTL_ADD, fd, &ev);
  }

  // ---- the loop ----

  void run() {
    epoll_event evs[64];
    auto lastSweep = Clock::now();
    while (!stopping.load(std::memory_order_relaxed)) {
      int timeoutMs = 1000;
      if (ch) {
        timeval tv{}, *t = ares_timeout(ch, nullptr, &tv);
        if (t)
          timeoutMs = std::min<int>(timeoutMs, int(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000));
      }
      int k = epoll_wait(ep, evs, 64, timeoutMs);
      now = Clock::now();
      for (int i = 0; i < k; ++i) {
        uint64_t d = evs[i].data.u64;
        uint64_t v = d & ((uint64_t(1) << 56) - 1);
        switch (Kind(d >> 56)) {
          case kWake:
            break;
          case kUdp:
            readUdp(int(v));
            break;
          case kListen:
            acceptTcp(int(v));
            break;
          case kConn:
            connEvent(v, evs[i].events);
            break;
          case kAres: {
            bool r = evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP);
            bool w = evs[i].events & EPOLLOUT;
            ares_process_fd(ch, r ? ares_socket_t(v) : ARES_SOCKET_BAD,
                            w ? ares_socket_t(v) : ARES_SOCKET_BAD);
            break;
          }
        }
      }
      if (ch && inFlight) ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      if (!udpOut.empty()) flushUdp();
      if (now - lastSweep >= std::chrono::seconds(1)) {
        sweep();
        lastSweep = now;
      }
    }
  }

  // UDP in batches: recvmmsg fills kBatch buffers; the replies queue in
  // udpOut and leave with one sendmmsg after the batch (and after each loop
  // turn, for answers from upstream). Two syscalls per batch, not per query.
  void readUdp(int fd) {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    SockAddr peers[kBatch];
    // Bounded per wake-up (8 x 32) so TCP and upstream replies get a turn.
    for (int round = 0; round < 8; ++round) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {ubuf.data() + size_t(i) * kUdpBuf, kUdpBuf};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_name = &peers[i].ss;
        msgs[i].msg_hdr.msg_namelen = sizeof peers[i].ss;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (got <= 0) break;
      for (int i = 0; i < got; ++i) {
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // > 4 KB: not a query we take
        Origin o;
        o.fd = fd;
        o.peer = peers[i];
        o.peer.len = msgs[i].msg_hdr.msg_namelen;
        handle(std::string_view(ubuf.data() + size_t(i) * kUdpBuf, msgs[i].msg_len), o);
      }
      flushUdp();
      if (got < kBatch) break;
    }
  }

  void flushUdp() {
    mmsghdr m[kBatch];
    iovec v[kBatch];
    size_t i = 0;
    while (i < udpOut.size()) {
      int fd = udpOut[i].fd;
      int k = 0;
      for (; k < kBatch && i + size_t(k) < udpOut.size() && udpOut[i + size_t(k)].fd == fd; ++k) {
        UdpOut& u = udpOut[i + size_t(k)];
        v[k] = {u.data.data(), u.data.size()};
        m[k] = {};
        m[k].msg_hdr.msg_name = &u.peer.ss;
        m[k].msg_hdr.msg_namelen = u.peer.len;
        m[k].msg_hdr.msg_iov = &v[k];
        m[k].msg_hdr.msg_iovlen = 1;
      }
      // A message the kernel refuses (full buffer, unreachable peer) is
      // dropped, as a UDP answer may be; the client asks again.
      for (int off = 0; off < k;) {
        int sent = sendmmsg(fd, m + off, unsigned(k - off), MSG_DONTWAIT);
        off += sent > 0 ? sent : 1;
      }
      i += size_t(k);
    }
    udpOut.clear();
  }

  void acceptTcp(int lfd) {
    for (int i = 0; i < 64; ++i) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      if (conns.size() >= cfg.maxTcpConnections) {
        close(fd);
        continue;
      }
      int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      auto c = std::make_unique<Conn>();
      c->id = nextConn++;
      c->fd = fd;
      c->last = now;
      add(fd, EPOLLIN | EPOLLRDHUP, tag(kConn, c->id));
      conns.emplace(c->id, std::move(c));
    }
  }

  void closeConn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, it->second->fd, nullptr);
    close(it->second->fd);
    conns.erase(it);
  }

  void connEvent(uint64_t id, uint32_t events) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn* c = it->second.get();
    if (events & EPOLLOUT) {
      if (!flush(c)) return closeConn(id);
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      for (int i = 0; i < 16; ++i) {  // at most 1 MB per wake-up
        ssize_t got = read(c->fd, rbuf.data(), rbuf.size());
        if (got > 0) {
          c->in.append(rbuf.data(), size_t(got));
          c->last = now;
          continue;
        }
        if (got == 0)
          c->eof = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
          return closeConn(id);
        break;
      }
      // Every complete frame (2-byte length, RFC 1035 4.2.2) is a query;
      // answers may go out of order (RFC 7766 7).
      // The answers made now leave in one write after the loop.
      size_t off = 0;
      batching = c;
      while (c->in.size() - off >= 2) {
        size_t len = wire::get16(reinterpret_cast<const uint8_t*>(c->in.data()) + off);
        if (c->in.size() - off - 2 < len) break;
        Origin o;
        o.tcp = true;
        o.connId = id;
        std::string msg = c->in.substr(off + 2, len);
        off += 2 + len;
        handle(msg, o);
        if (!conns.count(id)) {  // cut off while answering (too much unread)
          batching = nullptr;
          return;
        }
      }
      batching = nullptr;
      c->in.erase(0, off);
      if (!flush(c)) return closeConn(id);
      if (c->eof && c->pending == 0 && c->out.size() == c->outOff) return closeConn(id);
    }
  }

  // Writes what is queued; false on a write error.
  bool flush(Conn* c) {
    while (c->outOff < c->out.size()) {
      ssize_t w = ::send(c->fd, c->out.data() + c->outOff, c->out.size() - c->outOff, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      c->outOff += size_t(w);
    }
    if (c->outOff == c->out.size()) {
      c->out.clear();
      c->outOff = 0;
    }
    bool want = !c->out.empty();
    if (want != c->wantOut) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? uint32_t(EPOLLOUT) : 0u);
      ev.data.u64 = tag(kConn, c->id);
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      c->wantOut = want;
    }
    if (!want && c->eof && c->pending == 0) return false;  // done: close
    return true;
  }

  void sweep() {
    auto idle = std::chrono::milliseconds(cfg.tcpIdleTimeoutMs);
    std::vector<uint64_t> drop;
    for (auto& [id, c] : conns) {
      bool busy = c->pending > 0 || !c->out.empty();
      if (now - c->last > (busy ? 3 * idle : idle)) drop.push_back(id);
    }
    for (uint64_t id : drop) closeConn(id);
  }

  // ---- answering ----

  void count(std::string_view reply) {
    switch (wire::rcode(reply)) {
      case kNoError:
        bump(wire::count(reply, 1) ? n.noerror : n.nodata);
        break;
      case kFormErr:
        bump(n.formerr);
        break;
      case kNXDomain:
        bump(n.nxdomain);
        break;
      case kNotImp:
        bump(n.notimp);
        break;
      case kRefused:
        bump(n.refused);
        break;
      default:
        bump(n.servfail);
    }
  }

  // Counts, truncates to the client's limit and sends.
  void send(const Origin& o, std::string reply, const Query* q,
            std::atomic<uint64_t>* counter = nullptr) {
    if (counter)
      bump(*counter);
    else
      count(reply);
    size_t limit = o.tcp ? 65535 : (q ? q->udpLimit : 512);
    if (reply.size() > limit) {
      wire::Layout l;
      if (!wire::walk(reply, l)) return;
      reply = wire::truncated(reply, l);
      bump(n.truncated);
    }
    if (!o.tcp) {
      udpOut.push_back(UdpOut{o.fd, o.peer, std::move(reply)});
      return;
    }
    auto it = conns.find(o.connId);
    if (it == conns.end()) return;  // the client went away meanwhile
    Conn* c = it->second.get();
    uint8_t len[2];
    wire::put16(len, uint16_t(reply.size()));
    c->out.append(reinterpret_cast<char*>(len), 2);
    c->out.append(reply);
    c->last = now;
    // A client that sends and never reads gets cut off, not buffered for.
    if (c->out.size() - c->outOff > (4u << 20) || (c != batching && !flush(c))) closeConn(c->id);
  }

  void sendError(const Origin& o, uint16_t id, uint8_t opcode, bool rd, uint8_t rcode,
                 const Query* q) {
    send(o,
         wire::errorReply(id, opcode, rd, rcode,
                          q ? std::string_view(q->question) : std::string_view(), q && q->edns,
                          cfg.ednsUdpSize),
         q);
  }

  void handle(std::string_view msg, const Origin& o) {
    if (msg.size() < wire::kHeader) return;  // not even a header: nothing to answer
    const auto* h = reinterpret_cast<const uint8_t*>(msg.data());
    if (h[2] & 0x80) return;  // a response: never answered (no loops)
    bump(n.queries);
    bump(o.tcp ? n.tcp : n.udp);
    Query q;
    q.id = wire::get16(h);
    q.rd = h[2] & 0x01;
    q.cd = h[3] & 0x10;
    uint8_t opcode = (h[2] >> 3) & 0x0f;
    if (opcode != 0) return sendError(o, q.id, opcode, q.rd, kNotImp, nullptr);
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, h, msg.size()) != LDNS_STATUS_OK)
      return sendError(o, q.id, opcode, q.rd, kFormErr, nullptr);
    PktPtr pkt(raw);
    if (ldns_pkt_qdcount(pkt.get()) != 1 || ldns_pkt_ancount(pkt.get()) != 0)
      return sendError(o, q.id, opcode, q.rd, kFormErr, nullptr);
    const ldns_rr* qr = ldns_rr_list_rr(ldns_pkt_question(pkt.get()), 0);
    const ldns_rdf* owner = ldns_rr_owner(qr);
    q.question.assign(reinterpret_cast<const char*>(ldns_rdf_data(owner)), ldns_rdf_size(owner));
    q.nameLen = q.question.size();
    q.qtype = uint16_t(ldns_rr_get_type(qr));
    q.qclass = uint16_t(ldns_rr_get_class(qr));
    uint8_t tc[4];
    wire::put16(tc, q.qtype);
    wire::put16(tc + 2, q.qclass);
    q.question.append(reinterpret_cast<char*>(tc), 4);
    q.edns = pkt->_edns_present;
    if (q.edns) {
      q.dnssecOk = ldns_pkt_edns_do(pkt.get());
      q.udpLimit = std::max<uint16_t>(512, ldns_pkt_edns_udp_size(pkt.get()));
    }
    // EDNS version 1+ is unknown to us: BADVERS (RFC 6891 6.1.3), counted
    // with the malformed queries.
    if (q.edns && ldns_pkt_edns_version(pkt.get()) != 0)
      return send(o, wire::errorReply(q.id, 0, q.rd, kBadVers, q.question, true, cfg.ednsUdpSize),
                  &q, &n.formerr);
    if (q.qclass != LDNS_RR_CLASS_IN) return sendError(o, q.id, 0, q.rd, kRefused, &q);
    if (q.qtype == LDNS_RR_TYPE_AXFR || q.qtype == LDNS_RR_TYPE_IXFR)
      return sendError(o, q.id, 0, q.rd, kRefused, &q);  // no zone transfers

    Answer a = zone.lookup(presentation(ldns_rdf_data(owner), ldns_rdf_size(owner)), q.qtype);
    if (a.kind == Answer::Kind::Forward) return forward(o, std::move(q), msg);
    if (!a.chase.empty()) return chase(o, std::move(q), std::move(a));
    send(o, buildLocal(q, a, a.rcode, nullptr), &q);
  }

  // The answer to `q` from the zone's records (plus `extra`, an upstream
  // answer section, after them) with `rcode`.
  std::string buildLocal(const Query& q, const Answer& a, uint8_t rcode,
                         const ldns_rr_list* extra) {
    PktPtr r(ldns_pkt_new());
    ldns_pkt* p = r.get();
    ldns_pkt_set_id(p, q.id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_aa(p, true);
    ldns_pkt_set_ra(p, true);
    ldns_pkt_set_rd(p, q.rd);
    ldns_pkt_set_cd(p, q.cd);
    ldns_pkt_set_opcode(p, LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(p, rcode);
    ldns_rr* qr = ldns_rr_new();
    ldns_rr_set_owner(qr, ldns_dname_new_frm_data(uint16_t(q.nameLen), q.question.data()));
    ldns_rr_set_type(qr, ldns_rr_type(q.qtype));
    ldns_rr_set_class(qr, ldns_rr_class(q.qclass));
    ldns_rr_set_question(qr, true);
    ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, qr);
    auto push = [&](const std::vector<Record>& recs, ldns_pkt_section s) {
      for (const auto& rec : recs)
        if (ldns_rr* rr = toLdns(rec)) ldns_pkt_push_rr(p, s, rr);
    };
    push(a.answer, LDNS_SECTION_ANSWER);
    if (extra)
      for (size_t i = 0; i < ldns_rr_list_rr_count(extra); ++i)
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(extra, i)));
    push(a.authority, LDNS_SECTION_AUTHORITY);
    push(a.additional, LDNS_SECTION_ADDITIONAL);
    if (q.edns) {
      ldns_pkt_set_edns_udp_size(p, cfg.ednsUdpSize);
      ldns_pkt_set_edns_do(p, q.dnssecOk);
      p->_edns_present = 1;
    }
    uint8_t* buf = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&buf, p, &size) != LDNS_STATUS_OK)
      return wire::errorReply(q.id, 0, q.rd, kServFail, q.question, q.edns, cfg.ednsUdpSize);
    std::string out(reinterpret_cast<char*>(buf), size);
    free(buf);
    return out;
  }

  std::string cacheKey(const Query& q, bool chased) const {
    std::string k = q.question;
    lowerAscii(k, q.nameLen);
    k += char((q.edns ? 1 : 0) | (q.dnssecOk ? 2 : 0) | (chased ? 4 : 0));
    return k;
  }

  // The forwarded reply for this client: its ID, RA, its RD, and the
  // question's name in the case it asked.
  std::string forClient(std::string reply, const Query& q) const {
    auto* p = reinterpret_cast<uint8_t*>(reply.data());
    wire::put16(p, q.id);
    p[2] = uint8_t((p[2] & ~0x01) | (q.rd ? 1 : 0));
    p[3] |= 0x80;
    if (wire::count(reply, 0) == 1 && reply.size() >= wire::kHeader + q.nameLen &&
        strncasecmp(reply.data() + wire::kHeader, q.question.data(), q.nameLen) == 0)
      memcpy(p + wire::kHeader, q.question.data(), q.nameLen);
    return reply;
  }

  void forward(const Origin& o, Query q, std::string_view msg) {
    std::string key = cacheKey(q, false);
    std::string hit;
    if (cache.get(key, q.id, now, hit)) {
      bump(n.cacheHits);
      return send(o, forClient(std::move(hit), q), &q);
    }
    if (auto it = asking.find(key); it != asking.end())
      return join(it->second, new Pending{this, o, std::move(q), std::move(key), false, {}, {}});
    if (!ch || inFlight >= cfg.maxInFlight) return sendError(o, q.id, 0, q.rd, kServFail, &q);
    bump(n.forwarded);
    auto* pd = new Pending{this, o, std::move(q), std::move(key), false, {}, {}};
    startUpstream(pd, msg);
  }

  void chase(const Origin& o, Query q, Answer a) {
    Query cq;
    cq.edns = true;
    std::string name;
    if (!toWireName(a.chase, name)) return sendError(o, q.id, 0, q.rd, kServFail, &q);
    cq.question = name;
    cq.nameLen = name.size();
    uint8_t tc[4];
    wire::put16(tc, q.qtype);
    wire::put16(tc + 2, LDNS_RR_CLASS_IN);
    cq.question.append(reinterpret_cast<char*>(tc), 4);
    std::string key = cacheKey(cq, true);
    std::string hit;
    if (cache.get(key, 0, now, hit)) {
      bump(n.cacheHits);
      return finishChase(o, q, a, hit);
    }
    if (auto it = asking.find(key); it != asking.end())
      return join(it->second,
                  new Pending{this, o, std::move(q), std::move(key), true, std::move(a), {}});
    if (!ch || inFlight >= cfg.maxInFlight) return sendError(o, q.id, 0, q.rd, kServFail, &q);
    // The upstream query: RD, EDNS (our size) so big answers come over UDP.
    std::string msg(wire::kHeader, '\0');
    msg[2] = 0x01;  // RD
    msg[5] = 1;     // QDCOUNT
    msg[11] = 1;    // ARCOUNT: OPT
    msg += cq.question;
    uint8_t opt[11] = {0, 0, wire::kTypeOPT, 0, 0, 0, 0, 0, 0, 0, 0};
    wire::put16(opt + 3, cfg.ednsUdpSize);
    msg.append(reinterpret_cast<char*>(opt), sizeof opt);
    bump(n.forwarded);
    auto* pd = new Pending{this, o, std::move(q), std::move(key), true, std::move(a), {}};
    startUpstream(pd, msg);
  }

  void join(Pending* leader, Pending* pd) {
    bump(n.coalesced);
    if (pd->origin.tcp) {
      auto it = conns.find(pd->origin.connId);
      if (it != conns.end()) it->second->pending++;
    }
    leader->followers.emplace_back(pd);
  }

  void startUpstream(Pending* pd, std::string_view msg) {
    asking[pd->key] = pd;  // before ares_send: it may call back at once
    ++inFlight;
    if (pd->origin.tcp) {
      auto it = conns.find(pd->origin.connId);
      if (it != conns.end()) it->second->pending++;
    }
    ares_send(ch, reinterpret_cast<const unsigned char*>(msg.data()), int(msg.size()),
              &Impl::onUpstream, pd);
  }

  static void onUpstream(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<Pending> pd(static_cast<Pending*>(arg));
    Impl* self = pd->impl;
    self->inFlight--;
    if (auto it = self->asking.find(pd->key); it != self->asking.end() && it->second == pd.get())
      self->asking.erase(it);
    if (status == ARES_EDESTRUCTION) return;
    self->now = Clock::now();
    wire::Layout l;
    std::string_view reply(reinterpret_cast<const char*>(abuf), abuf ? size_t(alen) : 0);
    // An upstream's answer, whatever its rcode (ARES_FLAG_NOCHECKRESP), goes
    // back as it came; store() caches NOERROR and NXDOMAIN only. No answer
    // at all (timeouts, unreachable) is our SERVFAIL.
    bool ok = status == ARES_SUCCESS && abuf && wire::walk(reply, l);
    if (ok) self->store(pd->key, reply, l);  // even if the asker is gone
    self->complete(*pd, ok, reply);
    for (auto& f : pd->followers) self->complete(*f, ok, reply);
  }

  // Answers one asker of an upstream query.
  void complete(const Pending& pd, bool ok, std::string_view reply) {
    const Origin& o = pd.origin;
    const Query& q = pd.q;
    if (o.tcp) {
      auto it = conns.find(o.connId);
      if (it == conns.end()) return;  // the client went away
      it->second->pending--;
    }
    if (!ok) return sendError(o, q.id, 0, q.rd, kServFail, &q);
    if (pd.chase) return finishChase(o, q, pd.answer, reply);
    send(o, forClient(std::string(reply), q), &q);
  }

  // Caches an upstream answer: NOERROR and NXDOMAIN only (a SERVFAIL is
  // asked again), for the smallest TTL in it, or per RFC 2308 for a
  // negative one, capped.
  void store(const std::string& key, std::string_view reply, const wire::Layout& l) {
    uint8_t rc = wire::rcode(reply);
    if ((rc != kNoError && rc != kNXDomain) || (reply[2] & 0x02)) return;
    uint32_t ttl;
    if (rc == kNXDomain || wire::count(reply, 1) == 0)
      ttl = l.hasSoa ? l.soaNegativeTtl : cfg.negativeCacheTtl;
    else
      ttl = l.minTtl;
    cache.put(key, reply, l, std::min(ttl, cfg.maxCacheTtl), now);
  }

  void finishChase(const Origin& o, const Query& q, const Answer& a, std::string_view reply) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(reply.data()), reply.size()) !=
        LDNS_STATUS_OK)
      return sendError(o, q.id, 0, q.rd, kServFail, &q);
    PktPtr up(raw);
    send(o, buildLocal(q, a, wire::rcode(reply), ldns_pkt_answer(up.get())), &q);
  }
};

Server::Server(ServerConfig cfg, const Authority& zone) : cfg_(std::move(cfg)), zone_(zone) {}

Server::~Server() { stop(); }

Status Server::start() {
  if (impl_ && impl_->running) return Error{EALREADY, "the DNS server is already running"};
  auto im = std::make_unique<Impl>(cfg_, zone_);
  if (auto st = im->open(); !st) return st;  // ~Impl closes what was bound
  im->running = true;
  im->thread = std::thread([p = im.get()] { p->run(); });
  impl_ = std::move(im);
  return {};
}

void Server::stop() {
  if (impl_) impl_->shutdown();  // counters stay readable until the next start()
}

ServerCounters Server::counters() const {
  ServerCounters c;
  if (!impl_) return c;
  const auto& n = impl_->n;
  auto r = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  c.queries = r(n.queries);
  c.udp = r(n.udp);
  c.tcp = r(n.tcp);
  c.noerror = r(n.noerror);
  c.nodata = r(n.nodata);
  c.nxdomain = r(n.nxdomain);
  c.servfail = r(n.servfail);
  c.refused = r(n.refused);
  c.formerr = r(n.formerr);
  c.notimp = r(n.notimp);
  c.forwarded = r(n.forwarded);
  c.cacheHits = r(n.cacheHits);
  c.truncated = r(n.truncated);
  c.coalesced = r(n.coalesced);
  return c;
}

}  // namespace svclb::dns
