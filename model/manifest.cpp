// parseManifests: multi-document YAML (or JSON) -> Objects, as kubectl reads
// a file: YAML is converted to JSON first (scalars resolved as YAML 1.1 /
// go-yaml does, quoted scalars stay strings), then each document is matched
// on apiVersion/kind and decoded. yaml-cpp and json exceptions stop here.
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {

// Plain (unquoted) scalar resolution, following go-yaml v2 which kubectl
// uses: null, booleans (incl. yes/no/on/off), ints (decimal, 0x, 0o and
// legacy leading-0 octal), floats; anything else is a string.
json resolvePlain(const std::string& s) {
  static const std::regex kDec("[-+]?(0|[1-9][0-9_]*)");
  static const std::regex kHex("[-+]?0x[0-9a-fA-F_]+");
  static const std::regex kOct("[-+]?0o?[0-7_]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes" || s == "YES" ||
      s == "on" || s == "On" || s == "ON")
    return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "No" || s == "NO" ||
      s == "off" || s == "Off" || s == "OFF")
    return false;
  if (s.size() > 64) return s;
  auto clean = [](std::string v) {
    v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
    return v;
  };
  try {
    int base = 0;
    std::string digits = clean(s);
    bool neg = false;
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
      neg = digits[0] == '-';
      digits.erase(0, 1);
    }
    if (std::regex_match(s, kDec)) {
      base = 10;
    } else if (std::regex_match(s, kHex)) {
      base = 16;
      digits.erase(0, 2);
    } else if (std::regex_match(s, kOct)) {
      base = 8;
      digits.erase(0, digits.size() > 1 && digits[1] == 'o' ? 2 : 1);
      if (digits.empty()) digits = "0";
    }
    if (base != 0) {
      unsigned long long v = std::stoull(digits, nullptr, base);
      if (v <= static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
        return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
      return std::stod(clean(s));  // too large for an int: a number, as in Go
    }
    if (std::regex_match(s, kFloat)) return std::stod(clean(s));
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf")
      return std::numeric_limits<double>::infinity();
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF")
      return -std::numeric_limits<double>::infinity();
  } catch (const std::exception&) {
    // out of range etc.: keep the text
  }
  return s;
}

json yamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& tag = n.Tag();
      // "!" marks a quoted or block scalar, which is always a string.
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return n.Scalar();
      return resolvePlain(n.Scalar());
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : n) a.push_back(yamlToJson(item));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar() && !kv.first.IsNull())
          throw YAML::ParserException(kv.first.Mark(), "invalid map key: only scalar keys");
        std::string key = kv.first.IsNull() ? std::string("null") : kv.first.Scalar();
        // go-yaml (and so kubectl) rejects duplicate keys; yaml-cpp keeps both.
        if (o.contains(key))
          throw YAML::ParserException(kv.first.Mark(),
                                      "key " + goQuote(key) + " already set in map");
        o[key] = yamlToJson(kv.second);
      }
      return o;
    }
    default:
      return nullptr;
  }
}

std::string validationDataError(const std::string& src, const std::string& what) {
  return fmt::format(
      "error: error validating \"{}\": error validating data: {}; if you choose to ignore these "
      "errors, turn validation off with --validate=false",
      src, what);
}

std::string gvResource(const std::string& kind) {
  if (kind == "IPAddressPool" || kind == "L2Advertisement")
    return fmt::format(
        "Resource: \"metallb.io/v1beta1, Resource={}\", GroupVersionKind: \"metallb.io/v1beta1, "
        "Kind={}\"",
        resourcePlural(kind).substr(0, resourcePlural(kind).find('.')), kind);
  if (kind == "EndpointSlice")
    return "Resource: \"discovery.k8s.io/v1, Resource=endpointslices\", GroupVersionKind: "
           "\"discovery.k8s.io/v1, Kind=EndpointSlice\"";
  std::string res = kind == "Service" ? "services" : "endpoints";
  return fmt::format("Resource: \"/v1, Resource={}\", GroupVersionKind: \"/v1, Kind={}\"", res,
                     kind);
}

// Go's name for a JSON value's type, as encoding/json prints it.
const char* goJsonType(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "number";
  }
}

std::optional<Error> expand(const json& doc, const std::string& src, std::vector<Object>& out,
                            const std::string& defaultApiVersion = "",
                            const std::string& defaultKind = "") {
  if (doc.is_null()) return std::nullopt;
  if (!doc.is_object())
    return Error{EINVAL, fmt::format("error: unable to decode \"{}\": json: cannot unmarshal {} "
                                     "into Go value of type struct {{ APIVersion string "
                                     "\"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                                     "\"json:\\\"kind,omitempty\\\"\" }}",
                                     src, goJsonType(doc))};
  auto strField = [&](const char* key, const std::string& dflt) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return dflt;
    return it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string apiVersion = strField("apiVersion", defaultApiVersion);
  std::string kind = strField("kind", defaultKind);
  if (apiVersion.empty() && kind.empty())
    return Error{EINVAL, validationDataError(src, "[apiVersion not set, kind not set]")};
  if (apiVersion.empty()) return Error{EINVAL, validationDataError(src, "apiVersion not set")};
  if (kind.empty()) return Error{EINVAL, validationDataError(src, "kind not set")};

  // Lists: `kind: List` (what `kubectl get -o yaml` prints) and typed lists.
  std::string itemKind;
  if (apiVersion == "v1" && kind == "List")
    itemKind = "";
  else if (apiVersion == "v1" && (kind == "ServiceList" || kind == "EndpointsList"))
    itemKind = kind.substr(0, kind.size() - 4);
  else if (apiVersion == "discovery.k8s.io/v1" && kind == "EndpointSliceList")
    itemKind = "EndpointSlice";
  else if (apiVersion == "metallb.io/v1beta1" &&
           (kind == "IPAddressPoolList" || kind == "L2AdvertisementList"))
    itemKind = kind.substr(0, kind.size() - 4);
  else
    itemKind = "-";
  if (itemKind != "-") {
    auto items = doc.find("items");
    if (items == doc.end() || items->is_null()) return std::nullopt;
    if (!items->is_array())
      return Error{EINVAL,
                   validationDataError(
                       src, fmt::format("ValidationError({}.items): invalid type for {}.items: "
                                        "got \"{}\", expected \"array\"",
                                        kind, kind, goJsonType(*items)))};
    for (const auto& item : *items) {
      auto err = expand(item, src, out, itemKind.empty() ? "" : apiVersion, itemKind);
      if (err) return err;
    }
    return std::nullopt;
  }

  auto known = recognizeKind(apiVersion, kind);
  if (!known)
    return Error{
        EINVAL,
        fmt::format("error: unable to recognize \"{}\": no matches for kind {} in version {}", src,
                    goQuote(kind), goQuote(apiVersion))};
  auto obj = decodeObject(doc, *known);
  if (!obj.ok()) {
    const std::string& msg = obj.error().message;
    if (msg.rfind("ValidationError(", 0) == 0) return Error{EINVAL, validationDataError(src, msg)};
    return obj.error();
  }
  const ObjectMeta& meta = metaOf(*obj);
  if (meta.name.empty())
    return Error{EINVAL, fmt::format("error: error when retrieving current configuration of:\n{}\n"
                                     "Name: \"\", Namespace: {}\nfrom server for: \"{}\": "
                                     "resource name may not be empty",
                                     gvResource(*known), goQuote(meta.ns), src)};
  out.push_back(std::move(*obj));
  return std::nullopt;
}

std::string parseErrorText(const std::string& src, int line, std::string msg) {
  // yaml-cpp's words for the common mistakes, in go-yaml's (what kubectl shows).
  static const std::pair<const char*, const char*> kWords[] = {
      {"illegal map value", "mapping values are not allowed in this context"},
      {"end of map not found", "did not find expected key"},
      {"end of sequence not found", "did not find expected '-' indicator"},
      {"end of map flow not found", "did not find expected ',' or '}'"},
      {"end of sequence flow not found", "did not find expected ',' or ']'"},
      {"unknown escape character", "found unknown escape character"},
      {"end of string not found", "found unexpected end of stream"},
  };
  for (const auto& [from, to] : kWords)
    if (msg == from) msg = to;
  if (line >= 0)
    return fmt::format("error: error parsing {}: error converting YAML to JSON: yaml: line {}: {}",
                       src, line + 1, msg);
  return fmt::format("error: error parsing {}: error converting YAML to JSON: yaml: {}", src, msg);
}

// yaml-cpp 0.7's LoadAll loops forever, allocating a null document per
// turn, on a stream whose next token cannot start a node (e.g. a leading
// ","): jbeder/yaml-cpp#1040, fixed upstream in #1319. Found by
// tests/fuzz/manifest_fuzz.cpp. A dry run over the parser's events throws
// (as go-yaml rejects such input) when a document does not advance.
class DocumentProgress : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& m) override { start = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  YAML::Mark start = YAML::Mark::null_mark();
};

void checkDocumentsAdvance(const std::string& buf) {
  std::istringstream in(buf);
  YAML::Parser parser(in);
  DocumentProgress h;
  int last = -1;
  while (parser.HandleNextDocument(h)) {
    if (h.start.pos == last) throw YAML::ParserException(h.start, "did not find expected node content");
    last = h.start.pos;
  }
}

}  // namespace

Result<std::vector<Object>> parseManifests(std::string_view text, std::string_view source) {
  const std::string src = source == "-" ? "STDIN" : std::string(source);
  std::vector<Object> out;
  try {
    std::vector<json> docs;
    size_t first = text.find_first_not_of(" \t\r\n");
    bool parsedJson = false;
    if (first != std::string_view::npos && text[first] == '{') {
      // JSON proper (tabs, long lines) is not always valid YAML for yaml-cpp.
      json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) {
        docs.push_back(std::move(j));
        parsedJson = true;
      }
    }
    if (!parsedJson) {
      std::string buf(text);
      checkDocumentsAdvance(buf);
      for (const auto& node : YAML::LoadAll(buf)) docs.push_back(yamlToJson(node));
    }
    for (const auto& doc : docs) {
      if (auto err = expand(doc, src, out)) return *err;
    }
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, parseErrorText(src, e.mark.is_null() ? -1 : e.mark.line, e.msg)};
  } catch (const std::exception& e) {
    return Error{EINVAL, parseErrorText(src, -1, e.what())};
  }
  return out;
}

}  // namespace svclb
