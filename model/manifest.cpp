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
#include <future>
#include <iterator>
#include <limits>
#include <sstream>
#include <thread>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {

// Plain (unquoted) scalar resolution, following go-yaml v2 which kubectl
// uses: null, booleans (incl. yes/no/on/off), ints (decimal, 0x, 0o and
// legacy leading-0 octal), floats; anything else is a string.
// Hand-written matchers for go-yaml's number patterns (std::regex made
// parsing a 10,000-Service manifest several times slower):
//   dec   [-+]?(0|[1-9][0-9_]*)
//   hex   [-+]?0x[0-9a-fA-F_]+
//   oct   [-+]?0o?[0-7_]+
//   float [-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?
bool isDigit(char c) { return c >= '0' && c <= '9'; }
size_t skipSign(std::string_view s) { return !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0; }

bool matchDec(std::string_view s) {
  size_t i = skipSign(s);
  if (i >= s.size()) return false;
  if (s[i] == '0') return i + 1 == s.size();
  if (s[i] < '1' || s[i] > '9') return false;
  for (++i; i < s.size(); ++i)
    if (!isDigit(s[i]) && s[i] != '_') return false;
  return true;
}

bool matchHex(std::string_view s) {
  size_t i = skipSign(s);
  if (s.size() < i + 3 || s[i] != '0' || s[i + 1] != 'x') return false;
  for (i += 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i])) && s[i] != '_') return false;
  return true;
}

bool matchOct(std::string_view s) {
  size_t i = skipSign(s);
  if (i >= s.size() || s[i] != '0') return false;
  ++i;
  if (i < s.size() && s[i] == 'o') ++i;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i)
    if ((s[i] < '0' || s[i] > '7') && s[i] != '_') return false;
  return true;
}

bool matchFloat(std::string_view s) {
  size_t i = skipSign(s);
  const size_t n = s.size();
  if (i >= n) return false;
  if (s[i] == '.') {
    ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  } else {
    if (!isDigit(s[i])) return false;
    for (++i; i < n && (isDigit(s[i]) || s[i] == '_');) ++i;
    if (i < n && s[i] == '.')
      for (++i; i < n && (isDigit(s[i]) || s[i] == '_');) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  }
  return i == n;
}

json resolvePlain(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes" || s == "YES" ||
      s == "on" || s == "On" || s == "ON")
    return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "No" || s == "NO" ||
      s == "off" || s == "Off" || s == "OFF")
    return false;
  if (s.size() > 64) return std::string(s);
  auto clean = [](std::string_view in) {
    std::string v(in);
    v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
    return v;
  };
  try {
    // The matchers read `s` itself; only a number is copied (most scalars
    // are names and addresses, and a copy each was a tenth of the parse).
    const int base = matchDec(s) ? 10 : matchHex(s) ? 16 : matchOct(s) ? 8 : 0;
    if (base != 0) {
      std::string digits = clean(s);
      bool neg = false;
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
        neg = digits[0] == '-';
        digits.erase(0, 1);
      }
      if (base == 16) {
        digits.erase(0, 2);
      } else if (base == 8) {
        digits.erase(0, digits.size() > 1 && digits[1] == 'o' ? 2 : 1);
        if (digits.empty()) digits = "0";
      }
      unsigned long long v = std::stoull(digits, nullptr, base);
      if (v <= static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
        return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
      return std::stod(clean(s));  // too large for an int: a number, as in Go
    }
    if (matchFloat(s)) return std::stod(clean(s));
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf")
      return std::numeric_limits<double>::infinity();
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF")
      return -std::numeric_limits<double>::infinity();
  } catch (const std::exception&) {
    // out of range etc.: keep the text
  }
  return std::string(s);
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

// ---- Fast path: the block-YAML subset that generated manifests use -------
//
// yaml-cpp needs about a second for a 10,000-Service file. Most manifests
// (kubectl's output, generators) use only block mappings and sequences with
// plain or simple quoted scalars; this parser reads exactly that subset and
// returns nullopt for ANYTHING else (flow collections, anchors, tags, block
// scalars, multi-line scalars, comments after content, escapes, tabs, CR,
// non-ASCII, duplicate keys, odd indentation, ...), which then goes to
// yaml-cpp as before. For what it accepts it yields the documents that
// yamlToJson(YAML::LoadAll(text)) would (tests/unit/model_yaml_fast_test.cpp
// compares the two). Empty documents are left out: expand() skips them.
class FastYaml {
 public:
  explicit FastYaml(std::string_view text) : text_(text) {}

  std::optional<std::vector<json>> run() {
    std::vector<json> docs;
    if (!run([&](json&& d) { docs.push_back(std::move(d)); })) return std::nullopt;
    return docs;
  }

  // Hands each document to `take` as soon as it is read, so that a caller
  // decoding and dropping it right away works on what is still in cache
  // (and malloc reuses its memory): building all 20,000 documents of a
  // 10,000-Service file first, then decoding, then freeing them took
  // three times as long. False (after some documents may have been
  // handed over) = the text is not in the subset.
  template <class Take>
  bool run(Take&& take) {
    size_t pos = 0;
    while (pos <= text_.size()) {
      size_t nl = text_.find('\n', pos);
      if (nl == std::string_view::npos) nl = text_.size();
      std::string_view line = text_.substr(pos, nl - pos);
      pos = nl + 1;
      if (!addLine(line)) return false;
      if (endDoc_) {
        if (!flush(take)) return false;
        endDoc_ = false;
      }
      if (nl == text_.size()) break;
    }
    return flush(take);
  }

 private:
  struct Line {
    size_t indent;
    bool item;               // "- " at indent; the content follows as its own Line
    std::string_view key;    // non-empty: "key:" form
    std::string_view value;  // the scalar (after "key: " or alone), raw
  };

  static bool keyChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  }

  // Splits "key: value" / "key:" / "value" at column `indent`.
  bool addContent(std::string_view rest, size_t indent) {
    if (rest.size() >= 1 && rest[0] == '-' && (rest.size() == 1 || rest[1] == ' ')) {
      size_t k = 1;
      while (k < rest.size() && rest[k] == ' ') ++k;
      if (k >= rest.size()) return false;  // "-" alone: nested block item, not handled
      lines_.push_back({indent, true, {}, {}});
      return addContent(rest.substr(k), indent + k);
    }
    Line l{indent, false, {}, {}};
    if (std::isalnum(static_cast<unsigned char>(rest[0])) || rest[0] == '_') {
      size_t k = 0;
      while (k < rest.size() && keyChar(rest[k])) ++k;
      if (k < rest.size() && rest[k] == ':' && (k + 1 == rest.size() || rest[k + 1] == ' ')) {
        l.key = rest.substr(0, k);
        std::string_view v = rest.substr(k + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        l.value = v;
        lines_.push_back(l);
        return true;
      }
    }
    l.value = rest;
    if (l.value.empty()) return false;
    lines_.push_back(l);
    return true;
  }

  bool addLine(std::string_view line) {
    for (char c : line)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
        return false;  // tabs, CR, control and non-ASCII bytes: yaml-cpp
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    if (line.substr(0, 3) == "---") {
      if (line.size() != 3) return false;
      endDoc_ = true;
      return true;
    }
    if (line.substr(0, 3) == "..." || (!line.empty() && line[0] == '%')) return false;
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    if (indent == line.size() || line[indent] == '#') return true;  // blank or comment line
    return addContent(line.substr(indent), indent);
  }

  template <class Take>
  bool flush(Take& take) {
    if (lines_.empty()) return true;
    i_ = 0;
    json doc;
    if (lines_[0].item || lines_[0].key.empty()) return false;  // only mapping documents
    if (!parseMap(lines_[0].indent, doc) || i_ != lines_.size()) return false;
    lines_.clear();
    take(std::move(doc));
    return true;
  }

  // A scalar exactly as yamlToJson resolves it; false = not in the subset.
  static bool scalar(std::string_view v, json& out) {
    if (v.empty()) {
      out = nullptr;
      return true;
    }
    const char q = v.front();
    if (q == '"' || q == '\'') {
      if (v.size() < 2 || v.back() != q) return false;
      std::string_view in = v.substr(1, v.size() - 2);
      if (in.find(q) != std::string_view::npos || in.find('\\') != std::string_view::npos)
        return false;
      out = std::string(in);
      return true;
    }
    if (std::string_view("?:,[]{}#&*!|>%@`").find(q) != std::string_view::npos) return false;
    if (q == '-' && (v.size() < 2 || !std::isdigit(static_cast<unsigned char>(v[1])))) return false;
    if (v.find(": ") != std::string_view::npos || v.back() == ':' ||
        v.find(" #") != std::string_view::npos)
      return false;
    out = resolvePlain(v);
    return true;
  }

  // The node starting at lines_[i_] (more indented than its parent).
  bool parseNode(json& out) {
    const Line& l = lines_[i_];
    if (l.item) return parseSeq(l.indent, out);
    if (!l.key.empty()) return parseMap(l.indent, out);
    if (!scalar(l.value, out)) return false;
    ++i_;
    return true;
  }

  bool parseSeq(size_t indent, json& out) {
    out = json::array();
    while (i_ < lines_.size() && lines_[i_].indent == indent && lines_[i_].item) {
      ++i_;  // the item's content is the next Line, at a deeper column
      if (i_ >= lines_.size() || lines_[i_].indent <= indent) return false;
      json v;
      if (!parseNode(v)) return false;
      out.push_back(std::move(v));
    }
    return true;
  }

  bool parseMap(size_t indent, json& out) {
    out = json::object();
    while (i_ < lines_.size() && lines_[i_].indent == indent && !lines_[i_].item &&
           !lines_[i_].key.empty()) {
      const Line& l = lines_[i_++];
      std::string key(l.key);
      if (key == "null" || key == "Null" || key == "NULL" || out.contains(key)) return false;
      json v;
      if (!l.value.empty()) {
        if (!scalar(l.value, v)) return false;
        // A deeper line after a scalar would continue it (multi-line plain).
        if (i_ < lines_.size() && lines_[i_].indent > indent) return false;
      } else if (i_ < lines_.size() && lines_[i_].indent > indent) {
        if (!parseNode(v)) return false;
      } else if (i_ < lines_.size() && lines_[i_].indent == indent && lines_[i_].item) {
        if (!parseSeq(indent, v)) return false;  // "key:\n- a": a sequence at the key's column
      } else {
        v = nullptr;
      }
      out[std::move(key)] = std::move(v);
    }
    return true;
  }

  std::string_view text_;
  std::vector<Line> lines_;
  size_t i_ = 0;
  bool endDoc_ = false;
};

std::vector<json> yamlCppDocs(std::string_view text) {
  std::vector<json> docs;
  std::string buf(text);
  checkDocumentsAdvance(buf);
  for (const auto& node : YAML::LoadAll(buf)) docs.push_back(yamlToJson(node));
  return docs;
}

}  // namespace

namespace {

// What the fast reader made of (a part of) a manifest: its objects, or the
// first decoding error among them.
struct FastPart {
  bool inSubset = false;
  std::vector<Object> objs;
  std::optional<Error> firstErr;
  std::vector<std::string> skipped;
};

// Decodes each document as soon as it is read; the first decoding error is
// kept and returned by the caller once the whole text proved to be in the
// subset (as when all documents were read first). Otherwise yaml-cpp reads
// the text from the start.
void decodeFast(std::string_view text, const std::string& src, bool strict, FastPart& part) {
  part.inSubset = FastYaml(text).run([&](json&& doc) {
    if (part.firstErr) return;
    try {
      part.firstErr = expand(doc, src, part.objs, strict ? nullptr : &part.skipped);
    } catch (const std::exception& e) {  // what parseManifests' catch makes of it
      part.firstErr = Error{EINVAL, parseErrorText(src, -1, e.what())};
    }
  });
}

// A large manifest is cut into a few parts at lines that are exactly "---"
// (where the fast reader ends a document whatever precedes it), decoded on
// as many threads: each part yields the documents the whole would, in
// order (decoding is most of an apply's time for a large manifest).
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

// For tests/unit/model_yaml_fast_test.cpp: both readings of the same text.
namespace model_internal {
std::optional<std::vector<json>> fastYamlDocsForTest(std::string_view text) {
  return FastYaml(text).run();
}
std::vector<json> yamlCppDocsForTest(std::string_view text) {
  std::vector<json> out;
  for (auto& d : yamlCppDocs(text))
    if (!d.is_null()) out.push_back(std::move(d));
  return out;
}
}  // namespace model_internal

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
      // The fast reader's documents are decoded as they come; the first
      // decoding error is returned once the whole text proved to be in its
      // subset (as when all documents were read first). Otherwise yaml-cpp
      // reads the text from the start.
      const auto parts = splitDocuments(text);
      std::vector<FastPart> done(parts.size());
      {
        std::vector<std::future<void>> others;
        for (size_t i = 1; i < parts.size(); ++i)
          others.push_back(
              std::async(std::launch::async, [&, i] { decodeFast(parts[i], src, strict, done[i]); }));
        decodeFast(parts[0], src, strict, done[0]);
        for (auto& f : others) f.get();
      }
      if (std::all_of(done.begin(), done.end(), [](const FastPart& p) { return p.inSubset; })) {
        for (auto& p : done)
          if (p.firstErr) return *p.firstErr;
        for (auto& p : done) {
          out.insert(out.end(), std::make_move_iterator(p.objs.begin()),
                     std::make_move_iterator(p.objs.end()));
          if (skipped) skipped->insert(skipped->end(), p.skipped.begin(), p.skipped.end());
        }
        return out;
      }
      docs = yamlCppDocs(text);
    }
    for (const auto& doc : docs) {
      if (auto err = expand(doc, src, out, skipped)) return *err;
    }
  } catch (const YAML::Exception& e) {
    return Error{EINVAL, parseErrorText(src, e.mark.is_null() ? -1 : e.mark.line, e.msg)};
  } catch (const std::exception& e) {
    return Error{EINVAL, parseErrorText(src, -1, e.what())};
  }
  return out;
}

}  // namespace svclb
