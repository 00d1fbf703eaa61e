// svclbd's state machine: the desired-state store, the syncer and the
// dataplane, behind one mutex. Requests arrive as JSON (docs/api.md) from the
// API socket; the metrics endpoint reads through the same object.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "loader/dataplane.h"
#include "loader/healthcheck.h"
#include "loader/syncer.h"
#include "model/model.h"
#include "model/state_file.h"

namespace svclb {

struct DaemonConfig {
  std::string stateDir = "/var/lib/svclb";
  std::string socketPath = "/run/svclb/svclbd.sock";
  std::string metricsAddr = "127.0.0.1:9810";
  std::string serviceCIDR = "10.96.0.0/12";
  int32_t nodePortMin = 30000, nodePortMax = 32767;  // --service-node-port-range
  std::string podIfacePrefix;
  std::vector<std::string> ifaces;
  // --node-name (default: the host name): an endpoint is local to this node
  // iff its nodeName equals it (externalTrafficPolicy: Local).
  std::string nodeName;
  // --external-iface: the node NICs that face clients (XDP, L2 announcements).
  std::vector<std::string> externalIfaces;
  // --l2-members: the nodes running svclbd on this L2 segment, among which
  // one per LoadBalancer IP answers ARP (l2Announcements in
  // loader/external.h); empty = this node alone announces what it matches.
  std::vector<std::string> l2Members;
  SyncOptions sync;  // default algorithm, Maglev table size
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

  // Attaches the tc program to an interface (explicit or prefix match);
  // returns false if it was already handled.
  Status attachInterface(const std::string& ifname);
  bool wantsInterface(const std::string& ifname) const;
  bool isExternalInterface(const std::string& ifname) const;

  // The node's addresses or external NICs may have changed (netlink): re-plan
  // the NodePort frontends against the current addresses and rewrite the L2
  // announcements (ifindex, MAC). Cheap when nothing changed.
  void nodeChanged();

 private:
  std::string statePath() const { return cfg_.stateDir + "/state.json"; }
  StoreConfig storeConfig() const;
  // get, stats, status (and unknown ops): for handleLine and metrics().
  nlohmann::json handleQuery(const nlohmann::json& req);
  // store_ already holds the change (recorded in `undo`): plans it, writes
  // the maps, then persists the change (state_). Any failure reverts store_
  // and the maps.
  // `touched`/`before`: the Services the change may affect and their
  // frontends before it (Store::servicesTouchedBy / frontendsOf), so that
  // only those are re-derived and diffed when deltaOk_.
  // Apply/delete: the outcomes, or the whole error text of the reply.
  Result<std::vector<ApplyOutcome>> commit(Store::Undo undo, const std::set<Store::Key>& touched,
                                           const std::vector<Frontend>& before,
                                           std::vector<ApplyOutcome> outcomes);
  // `skipped`: the objects a non-strict request left out (requestObjects).
  Result<std::vector<Object>> requestObjects(const nlohmann::json& req,
                                             std::vector<std::string>& skipped);
  Result<std::vector<ApplyOutcome>> doApply(const nlohmann::json& req,
                                            std::vector<std::string>& skipped);
  Result<std::vector<ApplyOutcome>> doDelete(const nlohmann::json& req,
                                             std::vector<std::string>& skipped);
  nlohmann::json doGet(const nlohmann::json& req);
  nlohmann::json doStats();
  nlohmann::json doStatus();
  // ClusterIP frontends plus the node-facing ones for nodeAddrs_.
  std::vector<Frontend> desiredFrontends(const Store& s);
  // l2_arp_v1 := the announcements of store_ on the external NICs; new ones
  // are announced by gratuitous ARP. Problems are logged, never fatal.
  void syncL2();
  // healthCheckNodePort listeners (eTP=Local LoadBalancers) with their
  // local endpoint counts.
  void syncHealthChecks();
  void adoptL2();
  void garpLoop();
  void logOnce(std::set<std::string>& seen, const std::vector<std::string>& now);

  DaemonConfig cfg_;
  Dataplane& dp_;
  Syncer syncer_;
  Store store_;
  // store_ on disk: a snapshot plus a journal of the changes since.
  StateFile state_;
  // The maps hold exactly store_'s ClusterIP frontends and no external one:
  // a change can then be planned from the Services it touches alone
  // (planSyncDelta). Cleared by any failed sync; set again by the next
  // successful one.
  bool deltaOk_ = false;
  // Whether store_ had node-facing frontends at the last successful change.
  bool external_ = false, externalKnown_ = false;
  std::vector<uint32_t> nodeAddrs_;  // host order, sorted
  HealthCheckServer healthChecks_;
  std::set<std::string> hcProblems_;  // last logged
  std::set<std::string> extWarnings_, l2Problems_;  // last logged
  struct L2Entry {
    std::string iface;
    std::array<uint8_t, 6> mac{};
  };
  std::map<std::pair<uint32_t, uint32_t>, L2Entry> l2Actual_;  // {ip host order, ifindex}
  std::mutex mu_;

  // Gratuitous ARP repeats (MetalLB's schedule, loader/garp.h).
  struct GarpJob {
    std::string iface;
    uint32_t ip = 0;
    std::chrono::steady_clock::time_point next, until;
  };
  std::mutex garpMu_;
  std::condition_variable garpCv_;
  std::vector<GarpJob> garpJobs_;  // guarded by garpMu_
  bool garpStop_ = false;          // guarded by garpMu_
  std::thread garpThread_;         // started with the first job
};

// The node's IPv4 addresses (host order, sorted, unique): every address of
// this network namespace outside 127.0.0.0/8, whatever the interface (a /32
// on lo is a node address too, as for kube-proxy's NodePorts).
std::vector<uint32_t> nodeAddresses();

}  // namespace svclb
