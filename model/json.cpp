// JSON in the Kubernetes API shape -> Objects (and toJson, from the one
// encoder in json_write.cpp). The decoder is strict about
// types (a string where an integer belongs is an error, in the words of
// kubectl's client-side validation) and skips the API's fields it does not
// read (status, managedFields, ...). Fields the API does not have are
// refused before it, for manifests only (model/known_fields.cpp): objects
// from the API server or the state file may carry newer fields.
#include <fmt/format.h>

#include <limits>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {

constexpr const char* kCore = "io.k8s.api.core.v1.";
constexpr const char* kDiscovery = "io.k8s.api.discovery.v1.";
constexpr const char* kMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
constexpr const char* kMetalLB = "io.metallb.v1beta1.";
constexpr const char* kMetalLBVersion = "metallb.io/v1beta1";

// ---- decoding -----------------------------------------------------------------

const char* jsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "map";
    default:
      return "null";
  }
}

// Where we are: `path` as kubectl prints it (Service.spec.ports[0]) and the
// OpenAPI type of the object at that path (io.k8s.api.core.v1.ServicePort).
struct Ctx {
  std::string path;
  std::string type;
  Ctx child(const char* key, std::string childType) const {
    return Ctx{path + "." + key, std::move(childType)};
  }
};

class Decoder {
 public:
  bool failed() const { return !err_.empty(); }
  const std::string& error() const { return err_; }
  FieldErrors& fieldErrors() { return fieldErrs_; }

  static const json* get(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void typeError(const std::string& path, const std::string& type, const json& got,
                 const char* expected) {
    if (failed()) return;
    err_ = fmt::format("ValidationError({}): invalid type for {}: got \"{}\", expected \"{}\"",
                       path, type, jsonTypeName(got), expected);
  }

  bool str(const json& o, const Ctx& c, const char* key, std::string& out) {
    const json* v = get(o, key);
    if (!v) return false;
    if (!v->is_string()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "string");
      return false;
    }
    out = v->get<std::string>();
    return true;
  }

  bool intValue(const json& v, const std::string& path, const std::string& type, int32_t& out) {
    if (!v.is_number_integer()) {
      typeError(path, type, v, "integer");
      return false;
    }
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      x = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
              ? std::numeric_limits<int64_t>::max()
              : static_cast<int64_t>(u);
    } else {
      x = v.get<int64_t>();
    }
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) {
      if (!failed())
        err_ = fmt::format("ValidationError({}): invalid value for {}: {} does not fit in int32",
                           path, type, x);
      return false;
    }
    out = static_cast<int32_t>(x);
    return true;
  }

  bool i32(const json& o, const Ctx& c, const char* key, int32_t& out) {
    const json* v = get(o, key);
    if (!v) return false;
    return intValue(*v, c.path + "." + key, c.type + "." + key, out);
  }

  bool boolean(const json& o, const Ctx& c, const char* key, std::optional<bool>& out) {
    const json* v = get(o, key);
    if (!v) return false;
    if (!v->is_boolean()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "boolean");
      return false;
    }
    out = v->get<bool>();
    return true;
  }

  bool strList(const json& o, const Ctx& c, const char* key, std::vector<std::string>& out) {
    const json* v = get(o, key);
    if (!v) return false;
    if (!v->is_array()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "array");
      return false;
    }
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      if (!item.is_string()) {
        typeError(fmt::format("{}.{}[{}]", c.path, key, i), c.type + "." + key, item, "string");
        return false;
      }
      out.push_back(item.get<std::string>());
    }
    return true;
  }

  bool strMap(const json& o, const Ctx& c, const char* key,
              std::map<std::string, std::string>& out) {
    const json* v = get(o, key);
    if (!v) return false;
    if (!v->is_object()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "map");
      return false;
    }
    out.clear();
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_string()) {
        typeError(fmt::format("{}.{}.{}", c.path, key, it.key()), c.type + "." + key, it.value(),
                  "string");
        return false;
      }
      out[it.key()] = it.value().get<std::string>();
    }
    return true;
  }

  const json* obj(const json& o, const Ctx& c, const char* key) {
    const json* v = get(o, key);
    if (!v) return nullptr;
    if (!v->is_object()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "map");
      return nullptr;
    }
    return v;
  }

  // Array of objects: calls fn(item, ctx) for each, with the item type.
  template <class Fn>
  void objList(const json& o, const Ctx& c, const char* key, const std::string& itemType, Fn fn) {
    const json* v = get(o, key);
    if (!v) return;
    if (!v->is_array()) {
      typeError(c.path + "." + key, c.type + "." + key, *v, "array");
      return;
    }
    for (size_t i = 0; i < v->size() && !failed(); ++i) {
      const json& item = (*v)[i];
      Ctx ic{fmt::format("{}.{}[{}]", c.path, key, i), itemType};
      if (!item.is_object()) {
        typeError(ic.path, itemType, item, "map");
        return;
      }
      fn(item, ic);
    }
  }

 private:
  std::string err_;
  FieldErrors fieldErrs_;
};

void decodeMeta(Decoder& d, const json& j, const Ctx& root, ObjectMeta& m) {
  const json* md = d.obj(j, root, "metadata");
  if (!md) return;
  Ctx c = root.child("metadata", kMeta);
  d.str(*md, c, "name", m.name);
  std::string ns;
  if (d.str(*md, c, "namespace", ns) && !ns.empty()) {
    m.ns = ns;
    m.nsGiven = true;
  }
  d.str(*md, c, "uid", m.uid);
  d.str(*md, c, "creationTimestamp", m.creationTimestamp);
  d.strMap(*md, c, "labels", m.labels);
  d.strMap(*md, c, "annotations", m.annotations);
}

void decodeTargetRef(Decoder& d, const json& o, const Ctx& c, std::string& kind, std::string& name,
                     std::string& ns) {
  const json* ref = d.obj(o, c, "targetRef");
  if (!ref) return;
  Ctx rc = c.child("targetRef", std::string(kCore) + "ObjectReference");
  d.str(*ref, rc, "kind", kind);
  d.str(*ref, rc, "name", name);
  d.str(*ref, rc, "namespace", ns);
}

Service decodeService(Decoder& d, const json& j) {
  Service s;
  Ctx root{"Service", std::string(kCore) + "Service"};
  decodeMeta(d, j, root, s.meta);
  // Store-owned; carried in an annotation (see Service::loadBalancerPool).
  if (auto it = s.meta.annotations.find(kLbPoolAnnotation); it != s.meta.annotations.end()) {
    s.loadBalancerPool = it->second;
    s.meta.annotations.erase(it);
  }
  if (const json* spec = d.obj(j, root, "spec")) {
    Ctx c = root.child("spec", std::string(kCore) + "ServiceSpec");
    std::string type;
    if (d.str(*spec, c, "type", type) && !type.empty()) s.type = type;
    d.str(*spec, c, "clusterIP", s.clusterIP);
    if (d.strList(*spec, c, "clusterIPs", s.clusterIPs) && !s.clusterIPs.empty()) {
      // The API server keeps clusterIP and clusterIPs[0] in sync.
      if (s.clusterIP.empty())
        s.clusterIP = s.clusterIPs[0];
      else if (s.clusterIPs[0] != s.clusterIP)
        d.fieldErrors().invalid("spec.clusterIPs", jsonStringList(s.clusterIPs),
                                "first value must match `clusterIP`");
    }
    d.strList(*spec, c, "ipFamilies", s.ipFamilies);
    d.str(*spec, c, "ipFamilyPolicy", s.ipFamilyPolicy);
    d.strMap(*spec, c, "selector", s.selector);
    d.objList(*spec, c, "ports", std::string(kCore) + "ServicePort",
              [&](const json& pj, const Ctx& pc) {
                ServicePort p;
                d.str(pj, pc, "name", p.name);
                std::string proto;
                if (d.str(pj, pc, "protocol", proto) && !proto.empty()) p.protocol = proto;
                d.i32(pj, pc, "port", p.port);
                d.i32(pj, pc, "nodePort", p.nodePort);
                d.str(pj, pc, "appProtocol", p.appProtocol);
                if (const json* tp = Decoder::get(pj, "targetPort")) {
                  if (tp->is_string()) {
                    p.targetPort.isString = true;
                    p.targetPort.strVal = tp->get<std::string>();
                  } else if (tp->is_number_integer()) {
                    d.intValue(*tp, pc.path + ".targetPort", pc.type + ".targetPort",
                               p.targetPort.intVal);
                  } else {
                    d.typeError(pc.path + ".targetPort", pc.type + ".targetPort", *tp,
                                "integer-or-string");
                  }
                }
                // Defaulting as the API server does: unset, 0 or "" means `port`.
                if ((!p.targetPort.isString && p.targetPort.intVal == 0) ||
                    (p.targetPort.isString && p.targetPort.strVal.empty())) {
                  p.targetPort = IntOrString{false, p.port, ""};
                }
                s.ports.push_back(std::move(p));
              });
    std::string affinity;
    if (d.str(*spec, c, "sessionAffinity", affinity) && !affinity.empty())
      s.sessionAffinity = affinity;
    if (const json* sac = d.obj(*spec, c, "sessionAffinityConfig")) {
      Ctx sc = c.child("sessionAffinityConfig", std::string(kCore) + "SessionAffinityConfig");
      if (const json* cip = d.obj(*sac, sc, "clientIP")) {
        Ctx cc = sc.child("clientIP", std::string(kCore) + "ClientIPConfig");
        d.i32(*cip, cc, "timeoutSeconds", s.sessionAffinityTimeoutSeconds);
      }
      // As the API server defaults it (SetDefaults_Service, v1.37): with
      // sessionAffinity None (or unset) the config is dropped, not refused.
      if (s.sessionAffinity == "None")
        s.sessionAffinityTimeoutSeconds = Service{}.sessionAffinityTimeoutSeconds;
    }
    d.strList(*spec, c, "externalIPs", s.externalIPs);
    d.str(*spec, c, "externalName", s.externalName);
    d.str(*spec, c, "externalTrafficPolicy", s.externalTrafficPolicy);
    d.str(*spec, c, "internalTrafficPolicy", s.internalTrafficPolicy);
    d.str(*spec, c, "trafficDistribution", s.trafficDistribution);
    d.str(*spec, c, "loadBalancerIP", s.loadBalancerIP);
    d.str(*spec, c, "loadBalancerClass", s.loadBalancerClass);
    d.strList(*spec, c, "loadBalancerSourceRanges", s.loadBalancerSourceRanges);
    d.i32(*spec, c, "healthCheckNodePort", s.healthCheckNodePort);
    std::optional<bool> pnra;
    if (d.boolean(*spec, c, "publishNotReadyAddresses", pnra) && pnra)
      s.publishNotReadyAddresses = *pnra;
    d.boolean(*spec, c, "allocateLoadBalancerNodePorts", s.allocateLoadBalancerNodePorts);
  }
  // The traffic policies as the API server defaults them (SetDefaults_Service):
  // get -o yaml and describe show them as a cluster's do.
  if (s.internalTrafficPolicy.empty() && s.type != "ExternalName")
    s.internalTrafficPolicy = "Cluster";
  if (s.externalTrafficPolicy.empty() &&
      (s.type == "NodePort" || s.type == "LoadBalancer" ||
       (s.type == "ClusterIP" && !s.externalIPs.empty())))  // externally accessible
    s.externalTrafficPolicy = "Cluster";
  if (const json* status = d.obj(j, root, "status")) {
    Ctx c = root.child("status", std::string(kCore) + "ServiceStatus");
    if (const json* lb = d.obj(*status, c, "loadBalancer")) {
      Ctx lc = c.child("loadBalancer", std::string(kCore) + "LoadBalancerStatus");
      d.objList(
          *lb, lc, "ingress", std::string(kCore) + "LoadBalancerIngress",
          [&](const json& ij, const Ctx& ic) {
            std::string ip, mode;
            d.str(ij, ic, "ipMode", mode);
            if (!mode.empty() && mode != "VIP" && mode != "Proxy")
              d.fieldErrors().notSupported(
                  fmt::format("status.loadBalancer.ingress[{}].ipMode",
                              s.loadBalancerIngressIPs.size() + s.loadBalancerProxyIPs.size()),
                  mode, {"VIP", "Proxy"});
            std::string host;
            if (d.str(ij, ic, "ip", ip) && !ip.empty())
              (mode == "Proxy" ? s.loadBalancerProxyIPs : s.loadBalancerIngressIPs).push_back(ip);
            else if (d.str(ij, ic, "hostname", host) && !host.empty())
              s.loadBalancerIngressHostnames.push_back(host);
          });
    }
  }
  return s;
}

void decodeEndpointPort(Decoder& d, const json& pj, const Ctx& pc, EndpointPort& p) {
  d.str(pj, pc, "name", p.name);
  d.i32(pj, pc, "port", p.port);
  std::string proto;
  if (d.str(pj, pc, "protocol", proto) && !proto.empty()) p.protocol = proto;
  d.str(pj, pc, "appProtocol", p.appProtocol);
}

Endpoints decodeEndpoints(Decoder& d, const json& j) {
  Endpoints e;
  Ctx root{"Endpoints", std::string(kCore) + "Endpoints"};
  decodeMeta(d, j, root, e.meta);
  auto addr = [&](std::vector<EndpointAddress>& out) {
    return [&d, &out](const json& aj, const Ctx& ac) {
      EndpointAddress a;
      d.str(aj, ac, "ip", a.ip);
      d.str(aj, ac, "hostname", a.hostname);
      d.str(aj, ac, "nodeName", a.nodeName);
      decodeTargetRef(d, aj, ac, a.targetRefKind, a.targetRefName, a.targetRefNamespace);
      out.push_back(std::move(a));
    };
  };
  d.objList(j, root, "subsets", std::string(kCore) + "EndpointSubset",
            [&](const json& sj, const Ctx& sc) {
              EndpointSubset ss;
              const std::string addrType = std::string(kCore) + "EndpointAddress";
              d.objList(sj, sc, "addresses", addrType, addr(ss.addresses));
              d.objList(sj, sc, "notReadyAddresses", addrType, addr(ss.notReadyAddresses));
              d.objList(sj, sc, "ports", std::string(kCore) + "EndpointPort",
                        [&](const json& pj, const Ctx& pc) {
                          EndpointPort p;
                          decodeEndpointPort(d, pj, pc, p);
                          ss.ports.push_back(std::move(p));
                        });
              e.subsets.push_back(std::move(ss));
            });
  return e;
}

EndpointSlice decodeSlice(Decoder& d, const json& j) {
  EndpointSlice s;
  s.addressType.clear();  // required: absent stays "" and fails validation
  Ctx root{"EndpointSlice", std::string(kDiscovery) + "EndpointSlice"};
  decodeMeta(d, j, root, s.meta);
  d.str(j, root, "addressType", s.addressType);
  d.objList(j, root, "endpoints", std::string(kDiscovery) + "Endpoint",
            [&](const json& ej, const Ctx& ec) {
              SliceEndpoint ep;
              d.strList(ej, ec, "addresses", ep.addresses);
              if (const json* cj = d.obj(ej, ec, "conditions")) {
                Ctx cc = ec.child("conditions", std::string(kDiscovery) + "EndpointConditions");
                d.boolean(*cj, cc, "ready", ep.conditions.ready);
                d.boolean(*cj, cc, "serving", ep.conditions.serving);
                d.boolean(*cj, cc, "terminating", ep.conditions.terminating);
              }
              d.str(ej, ec, "hostname", ep.hostname);
              d.str(ej, ec, "nodeName", ep.nodeName);
              d.str(ej, ec, "zone", ep.zone);
              if (const json* hj = d.obj(ej, ec, "hints")) {
                Ctx hc = ec.child("hints", std::string(kDiscovery) + "EndpointHints");
                auto names = [&](const char* key, const char* type, std::vector<std::string>& out) {
                  d.objList(*hj, hc, key, std::string(kDiscovery) + type,
                            [&](const json& zj, const Ctx& zc) {
                              std::string n;
                              d.str(zj, zc, "name", n);
                              out.push_back(std::move(n));
                            });
                };
                names("forZones", "ForZone", ep.zoneHints);
                names("forNodes", "ForNode", ep.nodeHints);
              }
              decodeTargetRef(d, ej, ec, ep.targetRefKind, ep.targetRefName, ep.targetRefNamespace);
              s.endpoints.push_back(std::move(ep));
            });
  d.objList(j, root, "ports", std::string(kDiscovery) + "EndpointPort",
            [&](const json& pj, const Ctx& pc) {
              EndpointPort p;
              decodeEndpointPort(d, pj, pc, p);
              s.ports.push_back(std::move(p));
            });
  return s;
}

IPAddressPool decodePool(Decoder& d, const json& j) {
  IPAddressPool p;
  Ctx root{"IPAddressPool", std::string(kMetalLB) + "IPAddressPool"};
  decodeMeta(d, j, root, p.meta);
  if (const json* spec = d.obj(j, root, "spec")) {
    Ctx c = root.child("spec", root.type + ".spec");
    d.strList(*spec, c, "addresses", p.addresses);
    std::optional<bool> b;
    if (d.boolean(*spec, c, "autoAssign", b)) p.autoAssign = *b;
    b.reset();
    if (d.boolean(*spec, c, "avoidBuggyIPs", b)) p.avoidBuggyIPs = *b;
  }
  return p;
}

L2Advertisement decodeL2(Decoder& d, const json& j) {
  L2Advertisement a;
  Ctx root{"L2Advertisement", std::string(kMetalLB) + "L2Advertisement"};
  decodeMeta(d, j, root, a.meta);
  if (const json* spec = d.obj(j, root, "spec")) {
    Ctx c = root.child("spec", root.type + ".spec");
    d.strList(*spec, c, "ipAddressPools", a.ipAddressPools);
    d.strList(*spec, c, "interfaces", a.interfaces);
  }
  return a;
}

}  // namespace

// The one encoder is appendJson (model/json_write.cpp, the state file's
// writer); the document is its text parsed (get/describe, tests).
nlohmann::json toJson(const Object& obj) {
  std::string text;
  appendJson(text, obj);
  return json::parse(text);
}

namespace model_internal {

std::optional<std::string> recognizeKind(const std::string& apiVersion, const std::string& kind) {
  if (apiVersion == "v1" && (kind == "Service" || kind == "Endpoints")) return kind;
  if (apiVersion == "discovery.k8s.io/v1" && kind == "EndpointSlice") return kind;
  if (apiVersion == kMetalLBVersion && (kind == "IPAddressPool" || kind == "L2Advertisement"))
    return kind;
  return std::nullopt;
}

Result<Object> decodeObject(const nlohmann::json& j, const std::string& kind) {
  Decoder d;
  Object obj;
  if (kind == "Service")
    obj = decodeService(d, j);
  else if (kind == "Endpoints")
    obj = decodeEndpoints(d, j);
  else if (kind == "EndpointSlice")
    obj = decodeSlice(d, j);
  else if (kind == "IPAddressPool")
    obj = decodePool(d, j);
  else
    obj = decodeL2(d, j);
  if (d.failed()) return Error{EINVAL, d.error()};
  if (!d.fieldErrors().empty())
    // Already final (`The Service "x" is invalid: ...`); type errors above
    // start with "ValidationError(" and get wrapped by the caller.
    return Error{EINVAL, d.fieldErrors().message(kind, metaOf(obj).name)};
  return obj;
}

bool sameContent(const Object& a, const Object& b) {
  if (a.index() != b.index()) return false;
  json ja = toJson(a), jb = toJson(b);
  for (json* j : {&ja, &jb}) {
    (*j)["metadata"].erase("uid");
    (*j)["metadata"].erase("creationTimestamp");
  }
  return ja == jb;
}

}  // namespace model_internal

Result<Object> fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Error{EINVAL, "invalid object: not a JSON object"};
  auto apiVersion = j.find("apiVersion");
  auto kind = j.find("kind");
  std::string av =
      apiVersion != j.end() && apiVersion->is_string() ? apiVersion->get<std::string>() : "";
  std::string k = kind != j.end() && kind->is_string() ? kind->get<std::string>() : "";
  auto known = recognizeKind(av, k);
  if (!known)
    return Error{EINVAL, fmt::format("invalid object: no matches for kind {} in version {}",
                                     goQuote(k), goQuote(av))};
  auto r = decodeObject(j, *known);
  if (!r.ok()) return Error{EINVAL, "invalid object: " + r.error().message};
  return r;
}

}  // namespace svclb
