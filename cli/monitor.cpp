// `svcctl monitor [--type drop|reject] [-o json]`: svclbd's drop and reject
// events as they happen (docs/api.md "monitor"), one line each, until
// Ctrl-C, SIGTERM, a closed output pipe or the daemon going away.
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"

namespace svclb::cli {
namespace {

volatile sig_atomic_t gStopMonitor = 0;
void onStopSignal(int) { gStopMonitor = 1; }

std::string localClock(long long wallNs) {
  time_t secs = static_cast<time_t>(wallNs / 1000000000);
  tm t{};
  localtime_r(&secs, &t);
  char buf[16];
  strftime(buf, sizeof(buf), "%H:%M:%S", &t);
  return fmt::format("{}.{:03}", buf, (wallNs % 1000000000) / 1000000);
}

}  // namespace

std::string renderMonitorLine(const Json& ev) {
  const std::string type = str(at(ev, {"type"}));
  if (type == "lost")
    return fmt::format(
        "-- {} events lost (rate limit {}, ring buffer full {}, this reader too slow {})",
        num(at(ev, {"lost"})), num(at(ev, {"rateLimited"})), num(at(ev, {"ringFull"})),
        num(at(ev, {"slowClient"})));
  std::string svc = "-";
  if (const Json& s = at(ev, {"service"}); s.is_object()) {
    svc = fmt::format("{}/{}", str(at(s, {"namespace"})), str(at(s, {"name"})));
    if (std::string port = str(at(s, {"port"})); !port.empty()) svc += ":" + port;
  } else if (num(at(ev, {"svcId"})) != 0) {
    svc = fmt::format("id {}", num(at(ev, {"svcId"})));
  }
  std::string where = str(at(ev, {"interface"}));
  if (where.empty())
    where = num(at(ev, {"ifindex"})) ? fmt::format("ifindex {}", num(at(ev, {"ifindex"})))
                                     : str(at(ev, {"hook"}), "-");
  std::string upper = type;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return fmt::format("{} {:<6} {:<20} {:<3} {} -> {}  svc {}  if {}",
                     localClock(num(at(ev, {"timestampNs"}))), upper, str(at(ev, {"reason"})),
                     str(at(ev, {"protocol"})), str(at(ev, {"src"})), str(at(ev, {"dst"})), svc,
                     where);
}

int runMonitor(Context& ctx, const MonitorOptions& opts) {
  if (!opts.output.empty() && opts.output != "json") {
    ctx.err << fmt::format("error: unknown output format \"{}\" (monitor supports: json)\n",
                           opts.output);
    return 1;
  }
  Json req = {{"op", "monitor"}};
  if (!opts.type.empty()) {
    if (opts.type != "drop" && opts.type != "reject") {
      ctx.err << fmt::format("error: unknown event type \"{}\" (expected drop or reject)\n",
                             opts.type);
      return 1;
    }
    req["type"] = opts.type;
  }
  Json first;
  auto sock = openStream(ctx.socketPath, req, first, ctx.timeout);
  if (!sock) {
    ctx.err << sock.error().message << "\n";
    return 1;
  }
  const int fd = *sock;
  // Ctrl-C and SIGTERM end the loop (exit 0); a closed output pipe is seen
  // as a failed write, not a SIGPIPE.
  struct sigaction sa {
  }, oldInt{}, oldTerm{}, oldPipe{};
  sa.sa_handler = onStopSignal;
  sigaction(SIGINT, &sa, &oldInt);
  sigaction(SIGTERM, &sa, &oldTerm);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &oldPipe);
  gStopMonitor = 0;
  ctx.err << fmt::format("Listening for {} events (Ctrl-C to stop)\n",
                         opts.type.empty() ? "drop and reject" : opts.type);
  ctx.err.flush();

  int rc = 0;
  std::string buf;
  char chunk[65536];
  while (!gStopMonitor) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      ctx.err << "svcctl: svclbd closed the monitor stream\n";
      rc = 1;
      break;
    }
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (opts.output == "json") {
        ctx.out << line << "\n";
      } else {
        Json ev = Json::parse(line, nullptr, false);
        if (ev.is_discarded()) continue;
        ctx.out << renderMonitorLine(ev) << "\n";
      }
    }
    ctx.out.flush();
    if (!ctx.out) break;  // the reader went away (a closed pipe): done
  }
  close(fd);
  // SIGINT/SIGTERM keep our handler until exit: a stop signal often comes
  // twice (timeout(1) signals its child, then its process group), and the
  // second one, with the default action back, would end us with 143 after
  // a clean stop (seen in e2e.monitor).
  (void)oldInt;
  (void)oldTerm;
  sigaction(SIGPIPE, &oldPipe, nullptr);
  return rc;
}

}  // namespace svclb::cli
