// appendJson: Objects -> compact JSON text in the Kubernetes API shape,
// written straight into a string: svclb's one encoder of its objects. The
// state file is written with it (Store::save, Store::saveChanges), and
// toJson (get, describe) parses its text. Building an nlohmann::json
// document instead cost ~13x more for 10,000 Services and their Endpoints
// (measured when both existed; see the commit log).
#include <charconv>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

namespace model_internal {

// Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or
// 0 if none starts there (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
size_t utf8Len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

std::string validUtf8(std::string_view s) {
  std::string out;
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) < 0x80) continue;
    if (const size_t n = utf8Len(s, i)) {
      i += n - 1;
      continue;
    }
    out.append(s.data() + run, i - run);
    out += "\xef\xbf\xbd";
    run = i + 1;
  }
  if (run == 0) return std::string(s);
  out.append(s.data() + run, s.size() - run);
  return out;
}

}  // namespace model_internal

using model_internal::utf8Len;

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : o_(out) {}

  // Bytes >= 0x20 that form valid UTF-8 are copied; quotes, backslashes
  // and control bytes are escaped as nlohmann::json::dump does; a byte that
  // does not start a valid UTF-8 sequence (YAML text may hold any bytes)
  // becomes U+FFFD, as dump's error_handler_t::replace does, so the output
  // is always valid JSON.
  void str(std::string_view s) {
    o_ += '"';
    size_t run = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const size_t n = utf8Len(s, i);
        if (n) {
          i += n - 1;
          continue;
        }
        o_.append(s.data() + run, i - run);
        o_ += "\xef\xbf\xbd";  // U+FFFD
        run = i + 1;
        continue;
      }
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      o_.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          o_ += "\\\"";
          break;
        case '\\':
          o_ += "\\\\";
          break;
        case '\b':
          o_ += "\\b";
          break;
        case '\f':
          o_ += "\\f";
          break;
        case '\n':
          o_ += "\\n";
          break;
        case '\r':
          o_ += "\\r";
          break;
        case '\t':
          o_ += "\\t";
          break;
        default: {
          static const char* hex = "0123456789abcdef";
          o_ += "\\u00";
          o_ += hex[c >> 4];
          o_ += hex[c & 15];
        }
      }
    }
    o_.append(s.data() + run, s.size() - run);
    o_ += '"';
  }
  void num(int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o_.append(buf, r.ptr);
  }
  void boolean(bool v) { o_ += v ? "true" : "false"; }

  // Objects: open(), then key(k) + a value per member, then close().
  void open() {
    o_ += '{';
    first_ = true;
  }
  void key(std::string_view k) {
    if (!first_) o_ += ',';
    first_ = false;
    str(k);
    o_ += ':';
  }
  void close() {
    o_ += '}';
    first_ = false;
  }
  void openArray() {
    o_ += '[';
    first_ = true;
  }
  void item() {
    if (!first_) o_ += ',';
    first_ = false;
  }
  void closeArray() {
    o_ += ']';
    first_ = false;
  }

  void kv(std::string_view k, std::string_view v) {
    key(k);
    str(v);
  }
  void kvNum(std::string_view k, int64_t v) {
    key(k);
    num(v);
  }
  void strList(std::string_view k, const std::vector<std::string>& l) {
    key(k);
    openArray();
    for (const auto& s : l) {
      item();
      str(s);
    }
    closeArray();
  }
  void strMap(std::string_view k, const std::map<std::string, std::string>& m,
              const std::string* extraKey = nullptr, const std::string* extraVal = nullptr) {
    key(k);
    open();
    for (const auto& [mk, mv] : m)
      if (!extraKey || mk != *extraKey) kv(mk, mv);
    if (extraKey) kv(*extraKey, *extraVal);
    close();
  }

  // metadata; `pool`: the Service's loadBalancerPool, as an annotation.
  void meta(const ObjectMeta& m, const std::string* pool = nullptr) {
    key("metadata");
    open();
    kv("name", m.name);
    kv("namespace", m.ns);
    if (!m.uid.empty()) kv("uid", m.uid);
    if (!m.creationTimestamp.empty()) kv("creationTimestamp", m.creationTimestamp);
    if (!m.labels.empty()) strMap("labels", m.labels);
    static const std::string poolKey = kLbPoolAnnotation;
    if (pool)
      strMap("annotations", m.annotations, &poolKey, pool);
    else if (!m.annotations.empty())
      strMap("annotations", m.annotations);
    close();
  }
  void targetRef(const std::string& kind, const std::string& name, const std::string& ns) {
    if (kind.empty() && name.empty() && ns.empty()) return;
    key("targetRef");
    open();
    if (!kind.empty()) kv("kind", kind);
    if (!name.empty()) kv("name", name);
    if (!ns.empty()) kv("namespace", ns);
    close();
  }
  void endpointPort(const EndpointPort& p, bool alwaysName) {
    item();
    open();
    if (alwaysName || !p.name.empty()) kv("name", p.name);
    if (p.port != 0) kvNum("port", p.port);
    kv("protocol", p.protocol);
    if (!p.appProtocol.empty()) kv("appProtocol", p.appProtocol);
    close();
  }
  void address(const EndpointAddress& a) {
    item();
    open();
    kv("ip", a.ip);
    if (!a.hostname.empty()) kv("hostname", a.hostname);
    if (!a.nodeName.empty()) kv("nodeName", a.nodeName);
    targetRef(a.targetRefKind, a.targetRefName, a.targetRefNamespace);
    close();
  }

  void service(const Service& s) {
    open();
    kv("apiVersion", "v1");
    kv("kind", "Service");
    meta(s.meta, s.loadBalancerPool.empty() ? nullptr : &s.loadBalancerPool);
    key("spec");
    open();
    kv("type", s.type);
    if (!s.clusterIP.empty()) kv("clusterIP", s.clusterIP);
    if (!s.clusterIPs.empty()) strList("clusterIPs", s.clusterIPs);
    if (!s.ipFamilyPolicy.empty()) kv("ipFamilyPolicy", s.ipFamilyPolicy);
    if (!s.ipFamilies.empty()) strList("ipFamilies", s.ipFamilies);
    if (!s.ports.empty()) {
      key("ports");
      openArray();
      for (const auto& p : s.ports) {
        item();
        open();
        if (!p.name.empty()) kv("name", p.name);
        kv("protocol", p.protocol);
        kvNum("port", p.port);
        if (p.targetPort.isString)
          kv("targetPort", p.targetPort.strVal);
        else
          kvNum("targetPort", p.targetPort.intVal);
        if (p.nodePort != 0) kvNum("nodePort", p.nodePort);
        if (!p.appProtocol.empty()) kv("appProtocol", p.appProtocol);
        close();
      }
      closeArray();
    }
    if (!s.selector.empty()) strMap("selector", s.selector);
    kv("sessionAffinity", s.sessionAffinity);
    if (s.sessionAffinity == "ClientIP") {
      key("sessionAffinityConfig");
      open();
      key("clientIP");
      open();
      kvNum("timeoutSeconds", s.sessionAffinityTimeoutSeconds);
      close();
      close();
    }
    if (!s.externalIPs.empty()) strList("externalIPs", s.externalIPs);
    if (!s.externalName.empty()) kv("externalName", s.externalName);
    if (!s.externalTrafficPolicy.empty()) kv("externalTrafficPolicy", s.externalTrafficPolicy);
    if (!s.internalTrafficPolicy.empty()) kv("internalTrafficPolicy", s.internalTrafficPolicy);
    if (!s.trafficDistribution.empty()) kv("trafficDistribution", s.trafficDistribution);
    if (!s.loadBalancerIP.empty()) kv("loadBalancerIP", s.loadBalancerIP);
    if (!s.loadBalancerSourceRanges.empty())
      strList("loadBalancerSourceRanges", s.loadBalancerSourceRanges);
    if (s.healthCheckNodePort != 0) kvNum("healthCheckNodePort", s.healthCheckNodePort);
    if (s.publishNotReadyAddresses) {
      key("publishNotReadyAddresses");
      boolean(true);
    }
    if (s.allocateLoadBalancerNodePorts) {
      key("allocateLoadBalancerNodePorts");
      boolean(*s.allocateLoadBalancerNodePorts);
    }
    if (!s.loadBalancerClass.empty()) kv("loadBalancerClass", s.loadBalancerClass);
    close();
    key("status");
    open();
    key("loadBalancer");
    open();
    if (!s.loadBalancerIngressIPs.empty() || !s.loadBalancerProxyIPs.empty() ||
        !s.loadBalancerIngressHostnames.empty()) {
      key("ingress");
      openArray();
      // ipMode as the API server defaults it (KEP-1860, GA in v1.32): VIP
      // for every IP that does not say Proxy.
      for (const auto& ip : s.loadBalancerIngressIPs) {
        item();
        open();
        kv("ip", ip);
        kv("ipMode", "VIP");
        close();
      }
      for (const auto& ip : s.loadBalancerProxyIPs) {
        item();
        open();
        kv("ip", ip);
        kv("ipMode", "Proxy");
        close();
      }
      for (const auto& host : s.loadBalancerIngressHostnames) {
        item();
        open();
        kv("hostname", host);
        close();
      }
      closeArray();
    }
    close();
    close();
    close();
  }

  void endpoints(const Endpoints& e) {
    open();
    kv("apiVersion", "v1");
    kv("kind", "Endpoints");
    meta(e.meta);
    if (!e.subsets.empty()) {
      key("subsets");
      openArray();
      for (const auto& ss : e.subsets) {
        item();
        open();
        if (!ss.addresses.empty()) {
          key("addresses");
          openArray();
          for (const auto& a : ss.addresses) address(a);
          closeArray();
        }
        if (!ss.notReadyAddresses.empty()) {
          key("notReadyAddresses");
          openArray();
          for (const auto& a : ss.notReadyAddresses) address(a);
          closeArray();
        }
        if (!ss.ports.empty()) {
          key("ports");
          openArray();
          for (const auto& p : ss.ports) endpointPort(p, false);
          closeArray();
        }
        close();
      }
      closeArray();
    }
    close();
  }

  void slice(const EndpointSlice& s) {
    open();
    kv("apiVersion", "discovery.k8s.io/v1");
    kv("kind", "EndpointSlice");
    meta(s.meta);
    kv("addressType", s.addressType);
    key("endpoints");
    openArray();
    for (const auto& ep : s.endpoints) {
      item();
      open();
      strList("addresses", ep.addresses);
      key("conditions");
      open();
      if (ep.conditions.ready) {
        key("ready");
        boolean(*ep.conditions.ready);
      }
      if (ep.conditions.serving) {
        key("serving");
        boolean(*ep.conditions.serving);
      }
      if (ep.conditions.terminating) {
        key("terminating");
        boolean(*ep.conditions.terminating);
      }
      close();
      if (!ep.hostname.empty()) kv("hostname", ep.hostname);
      if (!ep.nodeName.empty()) kv("nodeName", ep.nodeName);
      if (!ep.zone.empty()) kv("zone", ep.zone);
      if (!ep.zoneHints.empty() || !ep.nodeHints.empty()) {
        key("hints");
        open();
        auto names = [&](const char* k, const std::vector<std::string>& ns) {
          if (ns.empty()) return;
          key(k);
          openArray();
          for (const auto& n : ns) {
            open();
            kv("name", n);
            close();
          }
          closeArray();
        };
        names("forZones", ep.zoneHints);
        names("forNodes", ep.nodeHints);
        close();
      }
      targetRef(ep.targetRefKind, ep.targetRefName, ep.targetRefNamespace);
      close();
    }
    closeArray();
    key("ports");
    openArray();
    for (const auto& p : s.ports) endpointPort(p, true);
    closeArray();
    close();
  }

  void pool(const IPAddressPool& p) {
    open();
    kv("apiVersion", "metallb.io/v1beta1");
    kv("kind", "IPAddressPool");
    meta(p.meta);
    key("spec");
    open();
    strList("addresses", p.addresses);
    key("autoAssign");
    boolean(p.autoAssign);
    key("avoidBuggyIPs");
    boolean(p.avoidBuggyIPs);
    close();
    close();
  }

  void l2(const L2Advertisement& a) {
    open();
    kv("apiVersion", "metallb.io/v1beta1");
    kv("kind", "L2Advertisement");
    meta(a.meta);
    key("spec");
    open();
    if (!a.ipAddressPools.empty()) strList("ipAddressPools", a.ipAddressPools);
    if (!a.interfaces.empty()) strList("interfaces", a.interfaces);
    close();
    close();
  }

 private:
  std::string& o_;
  bool first_ = true;
};

}  // namespace

void appendJson(std::string& out, const Object& obj) {
  Writer w(out);
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, Service>)
          w.service(o);
        else if constexpr (std::is_same_v<T, Endpoints>)
          w.endpoints(o);
        else if constexpr (std::is_same_v<T, EndpointSlice>)
          w.slice(o);
        else if constexpr (std::is_same_v<T, IPAddressPool>)
          w.pool(o);
        else
          w.l2(o);
      },
      obj);
}

void appendJsonString(std::string& out, std::string_view s) { Writer(out).str(s); }

}  // namespace svclb
