// parseManifests: multi-document YAML (or JSON) -> Objects, as kubectl reads
// a file: YAML is converted to JSON first (common/yaml.h: libyaml, scalars
// resolved as YAML 1.1 / go-yaml does, quoted scalars stay strings), then
// each document is matched on apiVersion/kind and decoded. json exceptions
// stop here.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <iterator>
#include <sstream>
#include <thread>

#include "common/yaml.h"
#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {
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

// "Warning: skipped deployment.apps/web: ..." for an object svclb does not
// handle (kubectl's resource/name form: lowercase kind, then the API group).
std::string skippedLine(const json& doc, const std::string& apiVersion, const std::string& kind) {
  std::string what = kind;
  for (char& c : what) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (const size_t slash = apiVersion.find('/'); slash != std::string::npos)
    what += "." + apiVersion.substr(0, slash);
  std::string name;
  if (auto m = doc.find("metadata"); m != doc.end() && m->is_object())
    if (auto n = m->find("name"); n != m->end() && n->is_string()) name = n->get<std::string>();
  // "handles", not "applies": svcctl delete -f skips them too.
  return fmt::format(
      "Warning: skipped {}{}{} ({} {}): svclb handles only v1 Services and Endpoints, "
      "discovery.k8s.io/v1 EndpointSlices and metallb.io/v1beta1 IPAddressPools and "
      "L2Advertisements (--strict refuses the manifest instead)",
      what, name.empty() ? "" : "/", name, apiVersion, kind);
}

// One of svclb's own kinds under svclb's API groups but in a version it does
// not read (discovery.k8s.io/v1beta1 EndpointSlice, v1 EndpointSlice for
// discovery.k8s.io/v1, metallb.io/v1beta2 IPAddressPool): a mistake in an
// object svclb was meant to handle, so refused even when other kinds are
// skipped. The same kind name in another group (Knative's
// serving.knative.dev/v1 Service) is someone else's object and is skipped.
bool misversionedOwnKind(const std::string& apiVersion, const std::string& kind) {
  static const char* const kOwnKinds[] = {"Service", "Endpoints", "EndpointSlice", "IPAddressPool",
                                          "L2Advertisement"};
  if (std::find(std::begin(kOwnKinds), std::end(kOwnKinds), kind) == std::end(kOwnKinds))
    return false;
  const size_t slash = apiVersion.find('/');
  const std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
  return group.empty() || group == "discovery.k8s.io" || group == "metallb.io";
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

// `skipped` (non-strict apply/delete): an object of a kind svclb does not
// handle is left out and named there, one line each, instead of refusing the
// whole manifest.
std::optional<Error> expand(const json& doc, const std::string& src, std::vector<Object>& out,
                            std::vector<std::string>* skipped,
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
      auto err = expand(item, src, out, skipped, itemKind.empty() ? "" : apiVersion, itemKind);
      if (err) return err;
    }
    return std::nullopt;
  }

  auto known = recognizeKind(apiVersion, kind);
  if (!known && skipped && !misversionedOwnKind(apiVersion, kind)) {
    skipped->push_back(skippedLine(doc, apiVersion, kind));
    return std::nullopt;
  }
  if (!known)
    return Error{
        EINVAL,
        fmt::format("error: unable to recognize \"{}\": no matches for kind {} in version {}", src,
                    goQuote(kind), goQuote(apiVersion))};
  // Before the decoder's own checks, as kubectl validates the schema before
  // the API server validates the object. Several: kubectl's aggregate form.
  if (auto unknown = unknownFields(doc, *known); !unknown.empty())
    return Error{
        EINVAL,
        validationDataError(
            src, unknown.size() == 1 ? unknown[0] : fmt::format("[{}]", fmt::join(unknown, ", ")))};
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

// kubectl's words for a manifest it cannot read: `msg` is go-yaml's text
// after "yaml: " (common/yaml.h) or a decoding exception's.
std::string parseErrorText(const std::string& src, const std::string& msg) {
  return fmt::format("error: error parsing {}: error converting YAML to JSON: yaml: {}", src, msg);
}

// What reading (a part of) a manifest gave: its objects, or the first
// decoding error among them, or the YAML error that stopped the reading.
struct Part {
  std::vector<Object> objs;
  std::optional<Error> firstErr;
  std::vector<std::string> skipped;
  std::optional<std::string> yamlErr;
};

// Decodes each document as soon as it is read (while it is still in cache,
// and malloc reuses its memory). A YAML error anywhere comes before the
// first decoding error (as when all documents were read first).
void readPart(std::string_view text, const std::string& src, bool strict, Part& part) {
  part.yamlErr = yaml::readYaml(text, [&](json&& doc) {
    if (part.firstErr) return;
    try {
      part.firstErr = expand(doc, src, part.objs, strict ? nullptr : &part.skipped);
    } catch (const std::exception& e) {  // a json type error
      part.firstErr = Error{EINVAL, parseErrorText(src, e.what())};
    }
  });
}

// JSON objects one after the other (what `jq '.items[]'` prints), as
// kubectl's YAML-or-JSON decoder reads them: true if `text` is two or more
// of them and nothing else.
bool readJsonStream(std::string_view text, std::vector<json>& docs) {
  std::istringstream in{std::string(text)};
  try {
    for (;;) {
      in >> std::ws;
      if (in.peek() == std::char_traits<char>::eof()) return docs.size() > 1;
      if (in.peek() != '{') return false;
      json j;
      in >> j;
      docs.push_back(std::move(j));
    }
  } catch (const json::exception&) {
    return false;
  }
}

// A large manifest is cut into a few parts at lines that are exactly "---"
// (a document marker wherever it stands), read on as many threads: each
// part yields the documents the whole would, in order (reading and
// decoding are most of an apply's time for a large manifest).
std::vector<std::string_view> splitDocuments(std::string_view text) {
  constexpr size_t kMinPart = 1 << 20;
  const size_t want = std::min<size_t>(
      {std::max(1u, std::thread::hardware_concurrency()), 4, text.size() / kMinPart + 1});
  std::vector<std::string_view> parts;
  size_t from = 0;
  for (size_t k = 1; k < want; ++k) {
    const size_t cut = text.find("\n---\n", std::max(from, text.size() * k / want));
    if (cut == std::string_view::npos) break;
    parts.push_back(text.substr(from, cut + 1 - from));
    from = cut + 1;
  }
  parts.push_back(text.substr(from));
  return parts;
}

}  // namespace

Result<std::vector<Object>> parseManifests(std::string_view text, std::string_view source) {
  return parseManifests(text, source, nullptr);
}

Result<std::vector<Object>> parseManifests(std::string_view text, std::string_view source,
                                           std::vector<std::string>* skipped) {
  // Bytes that are not UTF-8 become U+FFFD before anything reads the text,
  // as kubectl's JSON encoding of an object does before the apiserver sees
  // it: every string of an object is then valid UTF-8, so objects survive
  // the JSON of the state file and the API unchanged.
  std::string fixed;
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    fixed = model_internal::validUtf8(text);
    if (fixed.size() != text.size()) text = fixed;
  }
  const std::string src = source == "-" ? "STDIN" : std::string(source);
  const bool strict = skipped == nullptr;
  std::vector<Object> out;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    // JSON proper (tabs, long lines) is not always valid YAML.
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) {
      try {
        if (auto err = expand(j, src, out, skipped)) return *err;
      } catch (const std::exception& e) {
        return Error{EINVAL, parseErrorText(src, e.what())};
      }
      return out;
    }
    std::vector<json> docs;
    if (readJsonStream(text.substr(first), docs)) {
      try {
        for (const auto& d : docs)
          if (auto err = expand(d, src, out, skipped)) return *err;
      } catch (const std::exception& e) {
        return Error{EINVAL, parseErrorText(src, e.what())};
      }
      return out;
    }
  }
  const auto texts = splitDocuments(text);
  std::vector<Part> parts(texts.size());
  {
    std::vector<std::future<void>> others;
    for (size_t i = 1; i < texts.size(); ++i)
      others.push_back(
          std::async(std::launch::async, [&, i] { readPart(texts[i], src, strict, parts[i]); }));
    readPart(texts[0], src, strict, parts[0]);
    for (auto& f : others) f.get();
  }
  if (parts.size() > 1 && std::any_of(parts.begin(), parts.end(),
                                      [](const Part& p) { return p.yamlErr.has_value(); })) {
    // A YAML error's line and words are the whole text's: read it in one.
    parts.assign(1, Part{});
    readPart(text, src, strict, parts[0]);
  }
  for (auto& p : parts)
    if (p.yamlErr) return Error{EINVAL, parseErrorText(src, *p.yamlErr)};
  for (auto& p : parts)
    if (p.firstErr) return *p.firstErr;
  for (auto& p : parts) {
    out.insert(out.end(), std::make_move_iterator(p.objs.begin()),
               std::make_move_iterator(p.objs.end()));
    if (skipped) skipped->insert(skipped->end(), p.skipped.begin(), p.skipped.end());
  }
  return out;
}

}  // namespace svclb
