// The Kubernetes objects svclb understands, and the desired-state store.
// Pure C++ (no kernel, no sockets): parsed from manifests, validated in
// kubectl's words, persisted as JSON, and turned into the dataplane view
// (Frontend) that the daemon's reconciler writes into the maps.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "model/kinds.h"

namespace svclb {

struct ObjectMeta {
  std::string name;
  std::string ns = "default";  // metadata.namespace
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string uid;                // assigned by the store on create
  std::string creationTimestamp;  // RFC 3339, assigned by the store on create
  bool nsGiven = false;           // the manifest named metadata.namespace (not part of ==)
};

// targetPort / port references: an int or a named port.
struct IntOrString {
  bool isString = false;
  int32_t intVal = 0;
  std::string strVal;
  bool operator==(const IntOrString&) const = default;
};

struct ServicePort {
  std::string name;
  std::string protocol = "TCP";  // TCP | UDP | SCTP (SCTP rejected for now)
  int32_t port = 0;
  IntOrString targetPort;  // defaulted to port when absent
  int32_t nodePort = 0;
  std::string appProtocol;
  bool operator==(const ServicePort&) const = default;
};

struct Service {
  ObjectMeta meta;
  std::string type = "ClusterIP";  // ClusterIP | NodePort | LoadBalancer | ExternalName
  std::string clusterIP;           // "" = allocate; "None" = headless
  // spec.clusterIPs (clusterIPs[0] == clusterIP once stored), ipFamilies and
  // ipFamilyPolicy, defaulted and allocated by the store as kube-apiserver
  // does (model/store.cpp, initIPFamilies): one address per family, the
  // primary first. ExternalName Services have none of them.
  std::vector<std::string> clusterIPs;
  std::vector<std::string> ipFamilies;  // "IPv4" | "IPv6"
  std::string ipFamilyPolicy;           // "" | SingleStack | PreferDualStack | RequireDualStack
  std::map<std::string, std::string> selector;
  std::vector<ServicePort> ports;
  std::string sessionAffinity = "None";  // None | ClientIP
  int32_t sessionAffinityTimeoutSeconds = 10800;
  std::vector<std::string> externalIPs;
  std::string externalName;
  std::string externalTrafficPolicy;  // "" | Cluster | Local
  std::string internalTrafficPolicy;  // "" | Cluster | Local
  // "" | PreferClose | PreferSameZone | PreferSameNode: read by the
  // EndpointSlice controller, which writes the hints svclb follows (as
  // kube-proxy does); kept and validated here.
  std::string trafficDistribution;
  std::string loadBalancerIP;
  // spec.loadBalancerClass: which implementation gives the LoadBalancer its
  // address. svclb's pools serve the Services of StoreConfig's class only
  // (none = the Services without one), as MetalLB's --lb-class.
  std::string loadBalancerClass;
  std::vector<std::string> loadBalancerSourceRanges;
  int32_t healthCheckNodePort = 0;
  std::vector<std::string> loadBalancerIngressIPs;  // status.loadBalancer.ingress[].ip
  // Ingress IPs with ipMode: Proxy (KEP-1860): the load balancer proxies to
  // the nodes, so, as kube-proxy, svclb does not program them (traffic to
  // them goes out to the load balancer). Only from the API (Kubernetes mode).
  std::vector<std::string> loadBalancerProxyIPs;
  // Ingress entries with a hostname and no IP (cloud load balancers that
  // hand out a name): shown, never programmed (kube-proxy skips them too).
  std::vector<std::string> loadBalancerIngressHostnames;
  // Owned by the Store, like the status above: the IPAddressPool (its name)
  // the ingress IP came from. In JSON it is MetalLB's annotation
  // metallb.io/ip-allocated-from-pool (kLbPoolAnnotation), never in
  // meta.annotations.
  std::string loadBalancerPool;
  // spec.publishNotReadyAddresses: the cluster DNS names every endpoint,
  // ready or not (StatefulSets' peer discovery).
  bool publishNotReadyAddresses = false;
  // spec.allocateLoadBalancerNodePorts: a LoadBalancer's ports get nodePorts
  // (true, the default kube-apiserver sets) or only the ones given (false).
  // Only on LoadBalancer Services.
  std::optional<bool> allocateLoadBalancerNodePorts;
};

struct EndpointPort {
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  std::string appProtocol;
  bool operator==(const EndpointPort&) const = default;
};

struct EndpointAddress {
  std::string ip;
  std::string hostname;
  std::string nodeName;
  std::string targetRefKind, targetRefName, targetRefNamespace;
  bool operator==(const EndpointAddress&) const = default;
};

struct EndpointSubset {
  std::vector<EndpointAddress> addresses;
  std::vector<EndpointAddress> notReadyAddresses;
  std::vector<EndpointPort> ports;
};

struct Endpoints {
  ObjectMeta meta;
  std::vector<EndpointSubset> subsets;
};

struct EndpointConditions {
  std::optional<bool> ready, serving, terminating;
};

struct SliceEndpoint {
  std::vector<std::string> addresses;
  EndpointConditions conditions;
  std::string hostname;
  std::string nodeName;
  std::string zone;
  std::string targetRefKind, targetRefName, targetRefNamespace;
  // hints.forZones[].name / hints.forNodes[].name (set by the EndpointSlice
  // controller for trafficDistribution / topology-mode): kube-proxy's
  // topology-aware routing (model/frontends.cpp, applyTopology).
  std::vector<std::string> zoneHints{}, nodeHints{};
};

struct EndpointSlice {
  ObjectMeta meta;  // label kubernetes.io/service-name names the Service
  std::string addressType = "IPv4";
  std::vector<SliceEndpoint> endpoints;
  std::vector<EndpointPort> ports;  // name "" = unnamed port
};

// MetalLB (apiVersion metallb.io/v1beta1). Only the fields svclb acts on;
// the others (serviceAllocation, selectors, ...) are accepted and ignored.
struct IPAddressPool {
  ObjectMeta meta;
  // "192.168.10.0/24", "192.168.9.1-192.168.9.5" or IPv6 forms. IPv6
  // entries are accepted (MetalLB's own examples mix them) but never
  // handed out: the dataplane is IPv4 only.
  std::vector<std::string> addresses;
  bool autoAssign = true;
  bool avoidBuggyIPs = false;  // never hand out x.y.z.0 or x.y.z.255
};

struct L2Advertisement {
  ObjectMeta meta;
  std::vector<std::string> ipAddressPools;  // pool names (same namespace); empty = all
  std::vector<std::string> interfaces;      // empty = all
};

using Object = std::variant<Service, Endpoints, EndpointSlice, IPAddressPool, L2Advertisement>;

// Go's %q for a plain string (what kubectl's field errors and kube-proxy's
// health check JSON print).
std::string goQuote(std::string_view s);

// Field-by-field equality (uid and creationTimestamp included). Declared
// outside the structs so the structs' layout and declarations stay as they are.
bool operator==(const ObjectMeta& a, const ObjectMeta& b);
bool operator==(const Service& a, const Service& b);
bool operator==(const EndpointSubset& a, const EndpointSubset& b);
bool operator==(const Endpoints& a, const Endpoints& b);
bool operator==(const EndpointConditions& a, const EndpointConditions& b);
bool operator==(const SliceEndpoint& a, const SliceEndpoint& b);
bool operator==(const EndpointSlice& a, const EndpointSlice& b);
bool operator==(const IPAddressPool& a, const IPAddressPool& b);
bool operator==(const L2Advertisement& a, const L2Advertisement& b);

// "Service", "Endpoints", "EndpointSlice", "IPAddressPool", "L2Advertisement"
std::string kindOf(const Object& obj);
const ObjectMeta& metaOf(const Object& obj);

// Parses a multi-document YAML (or JSON) manifest. Empty documents are
// skipped; `kind: List` items are expanded. A field the Kubernetes API does
// not have (a misspelled `sessionAfinity`) refuses the manifest, as kubectl's
// validation does (MetalLB's kinds are not checked for it). Errors are in
// kubectl's words, e.g.
//   error: error parsing web.yaml: error converting YAML to JSON: yaml: line 3: ...
//   error: unable to recognize "web.yaml": no matches for kind "Foo" in version "v1"
// `source` is the file name shown in errors ("-" for stdin -> "STDIN").
Result<std::vector<Object>> parseManifests(std::string_view text, std::string_view source);
// Not strict (svcctl apply/delete without --strict): objects of other kinds
// (a Deployment, a ConfigMap beside the Service) are left out, each named by
// one "Warning: skipped KIND.GROUP/NAME (...)" line appended to `skipped`.
// Malformed objects of svclb's kinds are still refused, the whole manifest,
// and so is one of svclb's kinds in another version of its group
// (discovery.k8s.io/v1beta1 EndpointSlice).
Result<std::vector<Object>> parseManifests(std::string_view text, std::string_view source,
                                           std::vector<std::string>* skipped);

// Field validation of one object in isolation, in kubectl's words, e.g.
//   The Service "web" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and
//   65535, inclusive
// Several field errors are joined as kubectl does: `The Service "web" is invalid: \n* a\n* b`.
Status validate(const Object& obj);

// The warnings kube-apiserver (v1.37) returns on a create (`create`) or
// update of `obj`, in its words, without kubectl's "Warning: " prefix:
//   spec.externalIPs is deprecated and may no longer be implemented in some clusters
// (model/warnings.cpp lists them). Empty for svclb's other kinds.
std::vector<std::string> apiWarnings(const Object& obj, bool create);
// The API server's warning on any request for v1 Endpoints (since v1.33).
inline constexpr const char* kEndpointsDeprecation =
    "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice";

// JSON in the Kubernetes API shape (apiVersion, kind, metadata, spec, ...),
// appended to `out` as compact text: the one encoder (model/json_write.cpp),
// used for persistence; toJson is its text parsed, for the API (get -o
// json/yaml, describe) and round-trips.
void appendJson(std::string& out, const Object& obj);
nlohmann::json toJson(const Object& obj);
Result<Object> fromJson(const nlohmann::json& j);
// A JSON string literal (quotes, escapes) appended to `out`.
void appendJsonString(std::string& out, std::string_view s);

// ---- addresses and protocols, as svclb prints them -------------------------
// Dotted quad of an IPv4 address in host byte order: "10.96.0.1".
std::string formatIPv4(uint32_t hostOrder);
// An IPv6 address in network byte order (in6_addr's bytes); all zero = none.
using Ip6 = std::array<uint8_t, 16>;
// RFC 5952 text (inet_ntop): "fd00:10:96::a".
std::string formatIPv6(const Ip6& a);
// `a` with the bits past `prefix` (0..128) cleared.
Ip6 maskIPv6(Ip6 a, int prefix);
// "host:port", the host in brackets when it is an IPv6 address.
std::string joinHostPort(const std::string& host, uint16_t port);
// "TCP" | "UDP" for IP protocol 6 | 17; "?" otherwise.
const char* protoName(uint8_t proto);

// ---- svclb annotations ----------------------------------------------------
// On a Service: the backend choice for new flows, "maglev" or "random"
// (default: svclbd --lb-algorithm).
inline constexpr const char* kLbAlgorithmAnnotation = "svclb.io/lb-algorithm";
// On an Endpoints or EndpointSlice: Maglev weights per endpoint address,
// "10.244.1.11=3,10.244.1.12=1" (1..65535; unlisted addresses weigh 1).
inline constexpr const char* kWeightsAnnotation = "svclb.io/weights";

// ---- MetalLB annotations on a LoadBalancer Service -------------------------
// Requested ingress IPs, "192.168.10.5" or "192.168.10.5,fc00::5" (the first
// IPv4 one is used). Both MetalLB spellings are read; metallb.io/ wins.
inline constexpr const char* kLbIPsAnnotation = "metallb.io/loadBalancerIPs";
inline constexpr const char* kLbIPsAnnotationLegacy = "metallb.universe.tf/loadBalancerIPs";
// Restricts assignment to the named pool (which may have autoAssign: false).
inline constexpr const char* kLbPoolRequestAnnotation = "metallb.io/address-pool";
inline constexpr const char* kLbPoolRequestAnnotationLegacy = "metallb.universe.tf/address-pool";
// Written by the store (Service::loadBalancerPool): where the IP came from.
inline constexpr const char* kLbPoolAnnotation = "metallb.io/ip-allocated-from-pool";

// ---- Dataplane view -------------------------------------------------------

enum class EndpointState : uint8_t { Ready, Terminating, NotReady };

struct BackendSpec {
  uint32_t ip = 0;  // host byte order; 0 for an IPv6 backend
  Ip6 ip6{};        // an IPv6 backend's address (a v6 frontend's backends are all v6)
  uint16_t port = 0;
  EndpointState state = EndpointState::Ready;
  bool serving = true;  // EndpointSlice conditions.serving (Terminating still serving)
  uint16_t weight = 1;
  std::string nodeName;
  std::vector<std::string> zoneHints, nodeHints;  // the slice endpoint's hints
  bool operator==(const BackendSpec&) const = default;
  bool v6() const { return ip6 != Ip6{}; }
  std::string address() const { return v6() ? formatIPv6(ip6) : formatIPv4(ip); }
};

struct FrontendKey {
  uint32_t vip = 0;  // host byte order; 0 for an IPv6 frontend
  uint16_t port = 0;
  uint8_t proto = 0;  // IPPROTO_TCP (6) / IPPROTO_UDP (17)
  Ip6 vip6{};         // an IPv6 frontend's address (svc6_v1), all zero for IPv4
  // svc_key.scope (maps/svclb_abi.h): 0 SVC_SCOPE_EXTERNAL; 1
  // SVC_SCOPE_INTERNAL, the twin of an externalTrafficPolicy: Local frontend
  // that this node's pods and processes use (all endpoints).
  uint8_t scope = 0;
  auto operator<=>(const FrontendKey&) const = default;
  bool v6() const { return vip6 != Ip6{}; }
  std::string address() const { return v6() ? formatIPv6(vip6) : formatIPv4(vip); }
};

// One loadBalancerSourceRanges entry: addr has no bits past prefix set.
struct SourceRange {
  uint32_t addr = 0;   // host byte order, masked (IPv4)
  uint8_t prefix = 0;  // 0..32 (IPv4), 0..128 (IPv6)
  Ip6 addr6{};         // an IPv6 range's address, masked (src_ranges6_v1)
  bool isV6 = false;
  auto operator<=>(const SourceRange&) const = default;
  bool v6() const { return isV6; }
};

struct Frontend {
  FrontendKey key;
  std::string ns, name, portName;                  // which Service port this is
  std::vector<BackendSpec> backends;               // sorted by (ip, port), deduplicated
  bool affinity = false;                           // sessionAffinity: ClientIP
  uint32_t affinityTimeout = 0;                    // seconds when affinity
  std::map<std::string, std::string> annotations;  // the Service's
  // Master flags beyond SVC_F_AFFINITY (SVC_F_EXTERNAL, SVC_F_LOCAL_ONLY,
  // SVC_F_NO_LOCAL_EPS, SVC_F_SRC_RANGES; maps/svclb_abi.h), OR-ed in.
  uint8_t flags = 0;
  // Written to src_ranges_v1 for this frontend; sorted, no duplicates.
  // Only read by the dataplane when flags has SVC_F_SRC_RANGES.
  std::vector<SourceRange> sourceRanges;
  bool operator==(const Frontend&) const = default;
};

// The externally reachable entry points of Services (NodePorts, MetalLB
// ingress IPs, spec.externalIPs), for the node-facing (XDP) dataplane.
enum class ExternalKind : uint8_t { NodePort, LoadBalancerIP, ExternalIP };

struct ExternalFrontend {
  ExternalKind kind = ExternalKind::NodePort;
  bool v6 = false;                 // the IPv6 side of the Service (ip6, clusterFrontend.vip6)
  uint32_t ip = 0;                 // host byte order; 0 for NodePort = any address of the node
  Ip6 ip6{};                       // an IPv6 LoadBalancer IP / externalIP (v6; zero for NodePort)
  uint16_t port = 0;               // the nodePort, or the Service port for LB/external IPs
  uint8_t proto = 0;               // IPPROTO_TCP (6) / IPPROTO_UDP (17)
  std::string ns, name, portName;  // which Service port this is
  FrontendKey clusterFrontend;     // the ClusterIP Frontend of the same Service port
  bool localOnly = false;          // externalTrafficPolicy: Local
  // loadBalancerSourceRanges (as written, trimmed); filled for LoadBalancerIP
  // entries only, as kube-proxy applies them to load-balancer IPs only.
  std::vector<std::string> sourceRanges;
  std::vector<BackendSpec> backends;  // as in frontends() for that Service port
  bool affinity = false;              // sessionAffinity: ClientIP
  uint32_t affinityTimeout = 0;
  uint16_t healthCheckNodePort = 0;  // LoadBalancer + Local only
  bool operator==(const ExternalFrontend&) const = default;
};

// ---- Desired state --------------------------------------------------------

struct StoreConfig {
  std::string serviceCIDR = "10.96.0.0/12";
  // kube-apiserver --service-node-port-range, inclusive.
  int32_t nodePortMin = 30000;
  int32_t nodePortMax = 32767;
  // The objects come from a Kubernetes API server (svclbd --source=kubernetes),
  // which owns every allocation: ClusterIPs, nodePorts and
  // healthCheckNodePorts are taken as they are (no allocation, range,
  // collision or immutability check: the apiserver made them, and a relist
  // may carry a Service deleted and created again with a new address), and
  // status.loadBalancer.ingress is the object's (written by whatever
  // controller allocates LoadBalancer IPs), not assigned from IPAddressPools.
  bool apiOwned = false;
  // svclbd --cluster-dns (host order; 0 = none): svclb's own DNS address.
  // Never handed out to a Service that asks for no particular ClusterIP, and
  // a Service that holds it (kube-dns) gets no frontend for port 53 (TCP,
  // UDP): those queries go to svclbd's DNS server, as with NodeLocal
  // DNSCache; its other ports are balanced as usual.
  uint32_t clusterDNS = 0;
  Ip6 clusterDNS6{};  // the same for an IPv6 cluster DNS address (all zero: none)
  // This node: svclbd --node-name, and --zone or its Node's
  // topology.kubernetes.io/zone label. internalTrafficPolicy: Local and the
  // EndpointSlices' topology hints pick endpoints by them.
  std::string nodeName{}, zone{};
  // svclbd --lb-class: the spec.loadBalancerClass whose Services get
  // addresses from the IPAddressPools ("" = the Services without a class).
  std::string loadBalancerClass{};
};

// svclbd --service-cidr: "" when `cidrs` is one CIDR or one per family
// (IPv4 and IPv6, either first), else why not, in a user's words.
std::string checkServiceCIDR(std::string_view cidrs);

enum class ApplyAction { Created, Configured, Unchanged, Deleted };

struct ApplyOutcome {
  std::string kind;  // "Service" ...
  std::string ns, name;
  ApplyAction action;
};

// An object by name: what a delete names.
struct ObjectRef {
  std::string kind;  // a Kind, or any name kindFromResource knows ("svc")
  std::string ns = "default";
  std::string name;
  auto operator<=>(const ObjectRef&) const = default;
};

// "service/web created" as kubectl prints it.
std::string describeOutcome(const ApplyOutcome& o);

class Store {
 public:
  using Key = std::pair<std::string, std::string>;  // (namespace, name)

  // What an apply/remove changed, to put it back (Store::revert): the
  // previous version (nullopt = absent) of every object it touched. Lets the
  // daemon change its one Store in place instead of copying it per request.
  struct Undo {
    std::vector<std::pair<Key, std::optional<Service>>> services;
    std::vector<std::pair<Key, std::optional<Endpoints>>> endpoints;
    std::vector<std::pair<Key, std::optional<EndpointSlice>>> slices;
    std::vector<std::pair<Key, std::optional<IPAddressPool>>> pools;
    std::vector<std::pair<Key, std::optional<L2Advertisement>>> l2Advertisements;
  };

  explicit Store(StoreConfig cfg = {});

  // All-or-nothing: validates every object (field validation + ClusterIP
  // allocation/collision against the store and the other objects of the same
  // apply), and only if all pass, commits. On error the store is unchanged.
  // ClusterIP is immutable once set (kubectl's message for changing it).
  // NodePort/LoadBalancer Services get nodePorts from StoreConfig's range
  // (healthCheckNodePort too for LoadBalancer + externalTrafficPolicy Local),
  // IPAddressPools must not overlap, and after every apply/remove the store
  // (re)assigns LoadBalancer ingress IPs from the pools (a Service without
  // one is pending, not an error); see store.cpp for the rules.
  // With `undo`, what a successful apply changed is recorded there (appended)
  // so that revert() can take it back.
  Result<std::vector<ApplyOutcome>> apply(const std::vector<Object>& objs, Undo* undo = nullptr);
  // The same, taking the objects instead of copying them.
  Result<std::vector<ApplyOutcome>> apply(std::vector<Object>&& objs, Undo* undo = nullptr);

  // Deletes by kind ("Service"|"Endpoints"|"EndpointSlice"|"IPAddressPool"|
  // "L2Advertisement", or any name kindFromResource knows), namespace, name.
  // NotFound error in kubectl's words:
  //   Error from server (NotFound): services "web" not found
  Result<std::vector<ApplyOutcome>> remove(const std::string& kind, const std::string& ns,
                                           const std::string& name, Undo* undo = nullptr);
  // Deletes every object in objs; all-or-nothing like apply.
  Result<std::vector<ApplyOutcome>> removeAll(const std::vector<Object>& objs,
                                              Undo* undo = nullptr);
  // With `missing`, an object that does not exist is left out and named
  // there (its NotFound line) instead of failing the whole (kubectl delete
  // -f deletes what it finds).
  Result<std::vector<ApplyOutcome>> removeAll(const std::vector<ObjectRef>& refs,
                                              Undo* undo = nullptr,
                                              std::vector<std::string>* missing = nullptr);
  // The stored object `ref` names (a copy); NotFound in kubectl's words.
  Result<Object> find(const ObjectRef& ref) const;
  // The stored objects of `kinds` (Kinds, e.g. {"Service", "EndpointSlice"})
  // that `listed` does not name: what a full resync of those kinds deletes.
  // Sorted by kind (in `kinds` order), namespace, name.
  std::vector<ObjectRef> notListed(const std::vector<std::string>& kinds,
                                   const std::vector<Object>& listed) const;
  // Puts back what the applies/removes that recorded `undo` changed (the
  // store must not have been changed otherwise since).
  void revert(Undo&& undo);

  // The Services whose frontends() entries applying (or deleting) `objs`
  // may change: the Services and Endpoints named, and the Services an
  // EndpointSlice names (kubernetes.io/service-name) before and after. Call
  // it BEFORE the change. Pools and L2Advertisements change no frontends()
  // entry (only externalFrontends(), which the daemon derives in full).
  std::set<Key> servicesTouchedBy(const std::vector<Object>& objs) const;
  std::set<Key> servicesTouchedBy(const std::string& kind, const std::string& ns,
                                  const std::string& name) const;
  // frontends() restricted to the given Services (same entries, same order).
  std::vector<Frontend> frontendsOf(const std::set<Key>& services) const;

  const std::map<std::pair<std::string, std::string>, Service>& services() const {
    return services_;
  }
  const std::map<std::pair<std::string, std::string>, Endpoints>& endpoints() const {
    return endpoints_;
  }
  const std::map<std::pair<std::string, std::string>, EndpointSlice>& slices() const {
    return slices_;
  }
  const std::map<std::pair<std::string, std::string>, IPAddressPool>& pools() const {
    return pools_;
  }
  const std::map<std::pair<std::string, std::string>, L2Advertisement>& l2Advertisements() const {
    return l2Advertisements_;
  }
  const StoreConfig& config() const { return cfg_; }
  // The objects that do not pass validate() (a state file written by hand or
  // before a stricter rule), each as "<namespace>: <validation error>". They
  // stay as they are, as the API server keeps stored objects.
  std::vector<std::string> invalidObjects() const;
  // This node's zone changed (its Node's label): frontends() follows.
  void setZone(std::string zone) { cfg_.zone = std::move(zone); }
  // The EndpointSlices naming Service `svc` (label kubernetes.io/service-name),
  // every address type, in slice name order; found through the slice index.
  std::vector<const EndpointSlice*> slicesOf(const Key& svc) const;

  // The dataplane view: one Frontend per (clusterIP, port, protocol) of every
  // ClusterIP-bearing Service (not headless, not ExternalName). Backends come
  // from the Service's EndpointSlices (label kubernetes.io/service-name) when
  // any exist, otherwise from its Endpoints object; a ServicePort matches an
  // endpoint port by name (and protocol). Sorted by key.
  std::vector<Frontend> frontends() const;

  // The external view: for every NodePort/LoadBalancer Service port
  // (TCP/UDP) with a nodePort one NodePort entry; for every IPv4 ingress IP
  // of a LoadBalancer Service one LoadBalancerIP entry per port; for every
  // IPv4 spec.externalIPs entry (any type but ExternalName) one ExternalIP
  // entry per port. Sorted by (kind, ip, port, proto).
  std::vector<ExternalFrontend> externalFrontends() const;

  // Persistence: JSON document {"version":1,"services":[...],"endpoints":[...],
  // "endpointSlices":[...],"ipAddressPools":[...],"l2Advertisements":[...]}.
  // fromJson/load repair what an older state file lacks (missing nodePorts,
  // LoadBalancer IPs) the way apply would, and keep whatever is already
  // allocated even outside a new nodePort range. save() writes a snapshot
  // atomically (tmp file, fsync, rename, fsync dir); load() also replays its
  // journal. The daemon uses StateFile (model/state_file.h) directly, to
  // journal small changes instead of rewriting the snapshot.
  nlohmann::json toJson() const;
  static Result<Store> fromJson(const nlohmann::json& j, StoreConfig cfg = {});
  Status save(const std::string& path) const;
  static Result<Store> load(const std::string& path,
                            StoreConfig cfg = {});  // missing file = empty store

 private:
  friend class StateFile;  // model/state_file.h: snapshot + journal
  StoreConfig cfg_;
  std::map<std::pair<std::string, std::string>, Service> services_;  // key (ns, name)
  std::map<std::pair<std::string, std::string>, Endpoints> endpoints_;
  std::map<std::pair<std::string, std::string>, EndpointSlice> slices_;
  std::map<std::pair<std::string, std::string>, IPAddressPool> pools_;
  std::map<std::pair<std::string, std::string>, L2Advertisement> l2Advertisements_;
  // Which slices name which Service (label kubernetes.io/service-name),
  // kept in step with slices_ (reindexSlice after each change of a slice,
  // rebuildSliceIndex after a load), so that the frontends of the few
  // Services a change touches are found without scanning every slice: in
  // Kubernetes mode one API event is one change, and a scan per change made
  // filling a store quadratic (bench/results/2026-12-04-vm-k8s-scale.md).
  std::map<Key, std::set<Key>> slicesByService_;
  std::map<Key, Key> sliceService_;  // slice -> the Service it names
  void reindexSlice(const Key& slice);
  void rebuildSliceIndex();

  Result<std::vector<ApplyOutcome>> removeOne(const std::string& kind, const std::string& ns,
                                              const std::string& name, Undo* undo);
  // A Service's EndpointSlices, found by (namespace, service-name label)
  // once per derivation: scanning every slice for every Service made a
  // derivation quadratic in the number of slices.
 public:
  using SliceIndex = std::map<Key, std::vector<const EndpointSlice*>>;

 private:
  // IPv4 slices by Service (`only`: just these Services), in name order.
  SliceIndex sliceIndex(const std::set<Key>* only = nullptr) const;
  void appendFrontends(const Service& svc, const SliceIndex& slices,
                       std::vector<Frontend>& out) const;
  // Allocates missing nodePorts (best effort) and re-runs LB IP assignment.
  void repair();
};

}  // namespace svclb
