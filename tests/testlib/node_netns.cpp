#include "tests/testlib/node_netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

namespace svclb::testlib {
namespace {

int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool sameNetns(int fd, const char* path) {
  struct stat a {
  }, b{};
  return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

std::string NodeNetns::up(const std::vector<std::string>& extra) {
  origNs_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (origNs_ < 0) return "open own netns";
  if (unshare(CLONE_NEWNET) != 0) return "unshare(CLONE_NEWNET)";
  inside_ = true;
  // Never configure the namespace we came from.
  if (sameNetns(origNs_, "/proc/thread-self/ns/net"))
    return "still in the original netns after unshare";
  std::vector<std::string> cmds = {
      "ip link set lo up",
      "ip link add nic0 address 02:77:00:00:00:02 type veth peer name nic0p",
      "ip link add pod0 address 02:44:00:00:00:01 type veth peer name pod0p",
      "ip link set nic0 up",
      "ip link set nic0p up",
      "ip link set pod0 up",
      "ip link set pod0p up",
      "ip addr add 192.168.77.2/24 dev nic0",
      "ip neigh replace 192.168.77.1 lladdr 02:77:00:00:00:01 nud permanent dev nic0",
      "ip neigh replace 192.168.77.100 lladdr 02:77:00:00:00:64 nud permanent dev nic0",
      "ip route add 10.244.1.0/24 via 192.168.77.1 dev nic0",
      "ip route add 10.244.3.0/24 via 192.168.77.3 dev nic0",
      "ip route add 10.244.2.21/32 dev pod0",
      "ip neigh replace 10.244.2.21 lladdr 02:44:00:00:00:21 nud permanent dev pod0",
      "sysctl -qw net.ipv4.ip_forward=1",
  };
  cmds.insert(cmds.end(), extra.begin(), extra.end());
  for (const auto& c : cmds)
    if (sh(c) != 0) return "failed: " + c;
  nic0_ = if_nametoindex("nic0");
  pod0_ = if_nametoindex("pod0");
  return nic0_ && pod0_ ? "" : "no ifindex for nic0/pod0";
}

void NodeNetns::down() {
  if (inside_) {
    if (setns(origNs_, CLONE_NEWNET) != 0) std::abort();  // never go on in the wrong netns
    inside_ = false;
  }
  if (origNs_ >= 0) close(origNs_);
  origNs_ = -1;
}

}  // namespace svclb::testlib
