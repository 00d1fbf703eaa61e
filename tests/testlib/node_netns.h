// A "node" for BPF_PROG_TEST_RUN of the node-NIC paths, whose FIB lookups
// need real routes and neighbours: a network namespace of the calling
// thread's own (unshare(CLONE_NEWNET)); commands run by children of this
// thread (std::system) inherit it. Nothing is created in the namespace the
// process started in. Leaving it (down(), or the destructor) returns the
// thread and drops the namespace's last reference, which removes its links.
//
//   nic0  192.168.77.2/24, MAC 02:77:00:00:00:02 (a node NIC)
//         neighbours 192.168.77.1 (node1, 02:77:00:00:00:01) and
//         192.168.77.100 (a client, 02:77:00:00:00:64), permanent
//         10.244.1.0/24 via 192.168.77.1 (pods of node1)
//         10.244.3.0/24 via 192.168.77.3 (no neighbour: the tc slow path)
//   pod0  MAC 02:44:00:00:00:01; 10.244.2.21/32 (a local pod, neighbour
//         02:44:00:00:00:21)
//   net.ipv4.ip_forward = 1
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace svclb::testlib {

class NodeNetns {
 public:
  NodeNetns() = default;
  NodeNetns(const NodeNetns&) = delete;
  NodeNetns& operator=(const NodeNetns&) = delete;
  ~NodeNetns() { down(); }

  // Enters a new namespace and builds the node; `extra` commands run after
  // the standard ones. Returns "" or what failed.
  std::string up(const std::vector<std::string>& extra = {});
  void down();

  uint32_t nic0() const { return nic0_; }
  uint32_t pod0() const { return pod0_; }

 private:
  int origNs_ = -1;
  bool inside_ = false;
  uint32_t nic0_ = 0, pod0_ = 0;
};

}  // namespace svclb::testlib
