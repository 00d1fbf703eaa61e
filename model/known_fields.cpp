// unknownFields (model/internal.h): the fields of a manifest's object that
// the Kubernetes API does not have, as kubectl's schema validation names
// them. The table is generated from the API server's OpenAPI document
// (scripts/gen-k8s-fields.py -> model/k8s_fields.inc) and, for MetalLB's
// kinds, from its CRDs' schemas (scripts/gen-metallb-fields.py ->
// model/metallb_fields.inc).
#include <fmt/format.h>

#include <map>
#include <string_view>

#include "model/internal.h"

namespace svclb::model_internal {

namespace {

using Fields = std::map<std::string_view, std::string_view>;

const std::map<std::string_view, Fields>& table() {
  static const std::map<std::string_view, Fields> t = {
#include "model/k8s_fields.inc"
#include "model/metallb_fields.inc"
  };
  return t;
}

void walk(const nlohmann::json& v, std::string_view type, const std::string& path,
          std::vector<std::string>& out) {
  auto t = table().find(type);
  if (t == table().end() || !v.is_object()) return;  // a wrong type is the decoder's error
  for (auto it = v.begin(); it != v.end(); ++it) {
    auto f = t->second.find(it.key());
    if (f == t->second.end()) {
      out.push_back(
          fmt::format("ValidationError({}): unknown field \"{}\" in {}", path, it.key(), type));
      continue;
    }
    std::string_view child = f->second;
    const nlohmann::json& val = it.value();
    const std::string here = path + "." + it.key();
    if (child.empty() || val.is_null()) continue;
    if (child.starts_with("[]")) {
      if (!val.is_array()) continue;
      for (size_t i = 0; i < val.size(); ++i)
        walk(val[i], child.substr(2), fmt::format("{}[{}]", here, i), out);
    } else if (child.starts_with("{}")) {
      if (!val.is_object()) continue;
      for (auto m = val.begin(); m != val.end(); ++m)
        walk(m.value(), child.substr(2), here + "." + m.key(), out);
    } else {
      walk(val, child, here, out);
    }
  }
}

}  // namespace

std::vector<std::string> unknownFields(const nlohmann::json& doc, const std::string& kind) {
  std::vector<std::string> out;
  if (kind == "Service" || kind == "Endpoints")
    walk(doc, "io.k8s.api.core.v1." + kind, kind, out);
  else if (kind == "EndpointSlice")
    walk(doc, "io.k8s.api.discovery.v1.EndpointSlice", kind, out);
  else if (kind == "IPAddressPool" || kind == "L2Advertisement")
    walk(doc, "io.metallb.v1beta1." + kind, kind, out);
  return out;
}

}  // namespace svclb::model_internal
