// The node-facing frontends: Store::externalFrontends() (NodePorts, MetalLB
// ingress IPs, externalIPs) turned into dataplane Frontends for this node,
// and the LoadBalancer IPs this node answers ARP for. Pure (no kernel, no
// sockets), so both are unit-tested on their own; the daemon supplies the
// node's addresses, name and external NICs.
//
// Flags on every frontend made here (maps/svclb_abi.h):
//   SVC_F_EXTERNAL      always;
//   SVC_F_LOCAL_ONLY    externalTrafficPolicy: Local. The backends are then
//                       this node's only: kube-proxy's rule, an endpoint is
//                       local iff its nodeName equals the node's name (an
//                       empty nodeName is never local);
//   SVC_F_NO_LOCAL_EPS  with LOCAL_ONLY: no local endpoint takes new flows
//                       (ready, or terminating-serving) while the Service has
//                       one elsewhere: the packet is dropped, not rejected
//                       (kube-proxy's "has no local endpoints" DROP); with no
//                       usable endpoint anywhere it is rejected as usual;
//   SVC_F_SRC_RANGES    loadBalancerSourceRanges is set (LoadBalancer IPs
//                       only, as in kube-proxy); the CIDRs of the
//                       frontend's family become sourceRanges. Fails closed:
//                       a list with no entry of that family admits no
//                       client of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/model.h"

namespace svclb {

struct ExternalFrontends {
  std::vector<Frontend> frontends;  // sorted by key
  // One line per frontend left out because its key was taken, e.g.
  //   externalIP 10.0.0.5:80/TCP of Service default/b (port "http") is
  //   ignored: the same address, port and protocol belong to NodePort ...
  std::vector<std::string> warnings;
};

// Expands NodePort entries (ip 0) to one Frontend per node address of the
// entry's family (`nodeAddrs`, host order, or `nodeAddrs6`; 0 / :: and
// duplicates are ignored) and maps each
// LoadBalancer IP and externalIP to one Frontend. `clusterFrontends`
// (Store::frontends()) are the keys already taken, and give each Service's
// annotations (svclb.io/lb-algorithm, weights come with the backends).
// Key clashes: the first claimant wins — ClusterIP frontends, then NodePorts,
// then LoadBalancer IPs, then externalIPs, each by (address, port, protocol,
// namespace, name, port name) — whatever the order of `ext`; every loser is
// a warning.
ExternalFrontends externalToFrontends(const std::vector<ExternalFrontend>& ext,
                                      const std::vector<uint32_t>& nodeAddrs,
                                      const std::string& nodeName,
                                      const std::vector<Frontend>& clusterFrontends = {},
                                      const std::vector<Ip6>& nodeAddrs6 = {});

// Parses one loadBalancerSourceRanges entry ("192.0.2.0/24" or
// "2001:db8::/64", surrounding spaces allowed; host bits are cleared).
// nullopt for anything that is not a CIDR.
std::optional<SourceRange> parseSourceRange(const std::string& cidr);

struct L2Announcement {
  uint32_t ip = 0;       // host byte order (0 for an IPv6 address)
  Ip6 ip6{};             // an IPv6 LoadBalancer IP (NDP), else zero
  std::string iface;     // one of the daemon's external NICs
  std::string ns, name;  // the Service
  auto operator<=>(const L2Announcement&) const = default;
};

// MetalLB layer-2 mode for this node: every LoadBalancer ingress IP (IPv4:
// ARP; IPv6: NDP)
// whose IPAddressPool (Service::loadBalancerPool) is selected by an
// L2Advertisement of the pool's namespace (ipAddressPools empty = every pool
// of that namespace) is announced on the advertisement's interfaces that are
// external NICs (interfaces empty = all of `externalIfaces`), if this node
// wins the address's election (below). Sorted, no duplicates.
//
// Election (MetalLB's speaker/layer2_controller.go, ShouldAnnounce and
// nodesWithEndpoint): one node per address answers ARP, else a client's
// neighbour entry flips between nodes and flows move mid-connection.
//   - `l2Members` empty: this node is the only speaker and announces all it
//     matches (single-node use). A Service with externalTrafficPolicy: Local
//     still needs a local endpoint taking new flows (ready, or
//     terminating-serving: MetalLB's EndpointCanServe).
//   - otherwise the candidates are the members (the nodes running svclbd on
//     this L2 segment, --l2-members); for externalTrafficPolicy: Local only
//     the members that host an endpoint of the Service taking new flows
//     (by the endpoints' nodeName; none = nobody announces). This node
//     announces iff it is l2Winner(candidates, the Service's first ingress
//     IP): MetalLB hashes toAnnounce[0], so all of a Service's addresses go
//     to one node (the store gives a LoadBalancer one address anyway). A node
//     not among the members announces nothing (checkL2Members rejects that
//     configuration at start).
// Known limit: no failure detection. MetalLB drops dead speakers from the
// candidates through memberlist; here a member that is down (or whose svclbd
// is) keeps winning its addresses, which then go unanswered until it returns
// or --l2-members is changed on every node.
// Not modelled: ipAddressPoolSelectors, nodeSelectors (every member is
// selected), NetworkUnavailable / exclude-from-external-load-balancers
// nodes, and MetalLB's "no serving endpoint anywhere: nobody announces" for
// externalTrafficPolicy: Cluster (svclb answers, and rejects the flows).
std::vector<L2Announcement> l2Announcements(const Store& store,
                                            const std::vector<std::string>& externalIfaces,
                                            const std::string& nodeName,
                                            const std::vector<std::string>& l2Members = {});

// MetalLB's order: candidates sorted by sha256(node + "#" + ip), digests
// compared as bytes; the first wins. "" when there is no candidate. `ip` is
// the address as Go's net.IP.String() prints it (dotted decimal for IPv4).
std::string l2Winner(const std::vector<std::string>& candidates, const std::string& ip);

// --l2-members must name this node unless it is empty.
Status checkL2Members(const std::vector<std::string>& l2Members, const std::string& nodeName);

}  // namespace svclb
