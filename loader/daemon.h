// svclbd's owner of parts: it wires the units that each do one job and holds
// the one mutex that serializes them.
//   Committer     (loader/committer.h)      the store and the commit path:
//                                            plan, write maps, persist, answer;
//   SvcctlSource  (loader/svcctl_source.h)  svcctl's apply/delete as changes,
//                                            through a StateSink (state_source.h);
//   K8sSource     (loader/k8s_source.h)     or the Kubernetes API's objects;
//   ApiHandler    (loader/api_handler.h)    the API socket's requests;
//   L2Announcer   (loader/l2_announcer.h)   l2_arp_v1 and gratuitous ARP;
//   HealthSync    (loader/health_sync.h)    healthCheckNodePort listeners;
//   metrics       (loader/metrics.h)        counters, /metrics text;
//   Monitor       (loader/monitor.h)        svcctl monitor's event stream;
//   DrainKeeper   (loader/drain.h)          frees removed TCP endpoints once
//                                            their connections ended;
//   nodeAddresses (loader/node_addresses.h) the node's IPv4 addresses;
//   dns::Zone + dns::Server (dns/)           the cluster DNS: records that
//                                            follow every change, served on
//                                            the --cluster-dns address.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dns/server.h"
#include "dns/zone.h"
#include "loader/api_handler.h"
#include "loader/committer.h"
#include "loader/dataplane.h"
#include "loader/drain.h"
#include "loader/health_sync.h"
#include "loader/k8s_source.h"
#include "loader/l2_announcer.h"
#include "loader/monitor.h"
#include "loader/node_addresses.h"
#include "loader/state_source.h"
#include "loader/svcctl_source.h"
#include "loader/syncer.h"
#include "model/model.h"

namespace svclb {

struct DnsOptions {
  uint32_t address = 0;  // host order; 0 = none (--cluster-dns none, or IPv6 only); port 53
  Ip6 address6{};        // an IPv6 cluster DNS address (all zero: none); port 53
  bool on() const { return address != 0 || address6 != Ip6{}; }
  std::string domain = "cluster.local";
  std::vector<std::string> upstreams;  // "IP[:PORT]"
  uint32_t ttl = 5;
};

struct DaemonConfig {
  std::string stateDir = "/var/lib/svclb";
  std::string socketPath = "/run/svclb/svclbd.sock";
  std::string metricsAddr = "127.0.0.1:9810";
  std::string serviceCIDR = "10.96.0.0/12";
  int32_t nodePortMin = 30000, nodePortMax = 32767;  // --service-node-port-range
  std::string lbClass;  // --lb-class: the loadBalancerClass svclb's pools serve ("" = none)
  std::string podIfacePrefix;
  std::vector<std::string> ifaces;
  // --node-name (default: the host name): an endpoint is local to this node
  // iff its nodeName equals it (externalTrafficPolicy: Local).
  std::string nodeName;
  // --zone: this node's topology.kubernetes.io/zone, for topology hints.
  std::string zone;
  // --external-iface: the node NICs that face clients (XDP, L2 announcements).
  std::vector<std::string> externalIfaces;
  // --l2-members: the nodes running svclbd on this L2 segment, among which
  // one per LoadBalancer IP answers ARP (l2Announcements in
  // loader/external.h); empty = this node alone announces what it matches.
  std::vector<std::string> l2Members;
  SyncOptions sync;  // default algorithm, Maglev table size
  // --source=kubernetes: the state comes from this API server (K8sSource),
  // svcctl apply/delete are refused. Unset: standalone, svcctl's.
  std::optional<K8sSourceOptions> kubernetes;
  // --cluster-dns and friends: svclbd's DNS server for the cluster zone.
  DnsOptions dns;
};

class Daemon {
 public:
  Daemon(DaemonConfig cfg, Dataplane& dp);
  ~Daemon();

  // Restores the persisted state and reconciles the maps against it.
  Status start();

  // One API request (op apply, delete, get, stats or status): the reply
  // line without the newline, what the API socket answers.
  std::string handleLine(const nlohmann::json& req);
  std::string metrics();  // Prometheus text exposition
  // {"op":"monitor"}: takes over the client connection `fd` and streams
  // drop/reject events to it (loader/monitor.h); on an error `fd` stays the
  // caller's, to answer and close.
  Status monitor(int fd, const nlohmann::json& req);

  // Attaches the tc program to an interface (explicit or prefix match).
  Status attachInterface(const std::string& ifname);
  bool wantsInterface(const std::string& ifname) const;
  // An interface was deleted (netlink): the pins of svclb's tcx links on
  // it go (Dataplane::interfaceRemoved). Only those the daemon selects.
  void interfaceRemoved(const std::string& ifname);
  bool isExternalInterface(const std::string& ifname) const;

  // The node's addresses or external NICs may have changed (netlink): re-plan
  // the NodePort frontends against the current addresses and rewrite the L2
  // announcements (ifindex, MAC). Cheap when nothing changed.
  void nodeChanged();

 private:
  // The Syncer as the commit path's map side.
  struct SyncerMaps final : MapSync {
    explicit SyncerMaps(Syncer& s) : syncer(s) {}
    Status adopt() override { return syncer.adopt(); }
    Result<Plan> plan(const std::vector<Frontend>& desired) const override {
      return syncer.plan(desired);
    }
    Result<Plan> planDelta(const std::vector<Frontend>& changed,
                           const std::vector<FrontendKey>& removed) const override {
      return syncer.planDelta(changed, removed);
    }
    Status apply(Plan plan) override { return syncer.apply(std::move(plan)); }
    Syncer& syncer;
  };
  // After every change and node change: what follows the store.
  void followStore(const Store& store);

  DaemonConfig cfg_;
  Dataplane& dp_;
  std::mutex mu_;  // the store, the maps, the followers: one change at a time
  Syncer syncer_;
  SyncerMaps maps_{syncer_};
  Committer committer_;
  L2Announcer l2_;
  HealthSync health_;
  SerializedSink sink_{committer_, mu_};
  SvcctlSource svcctl_;
  std::unique_ptr<K8sSource> k8s_;  // --source=kubernetes
  dns::Zone zone_;
  std::unique_ptr<dns::Server> dns_;  // --cluster-dns
  ApiHandler api_;
  Monitor monitor_;  // its thread reads the syncer's names under mu_
  // Frees the endpoints removed from TCP frontends once their connections
  // ended (loader/drain.h); its thread takes mu_.
  DrainKeeper drain_;
};

}  // namespace svclb
