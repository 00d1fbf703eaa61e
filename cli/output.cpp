// Machine-readable output (-o json|yaml|name) in kubectl's shapes.
#include "cli/format.h"
#include "cli/json_util.h"
#include "common/yaml.h"

namespace svclb::cli {
namespace {

bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return true;
  static const std::string kIndicators = "-?:,[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string::npos) return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  // A YAML 1.1 reader would not take it back as the same string (a bool,
  // null, number or timestamp): quoted, as go-yaml does.
  return yaml::plainResolvesToNonString(s);
}

std::string scalar(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    // JSON escapes are valid in YAML double-quoted scalars.
    return needsQuotes(s) ? Json(s).dump() : s;
  }
  return v.dump();
}

bool isBlock(const Json& v) { return (v.is_object() || v.is_array()) && !v.empty(); }

void emit(const Json& v, int indent, std::string& out);

// Emits `v` as a sequence item: "- " replaces the first line's indentation.
void emitItem(const Json& v, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (!isBlock(v)) {
    out += pad + "- " + (v.is_object() ? "{}" : v.is_array() ? "[]" : scalar(v)) + "\n";
    return;
  }
  std::string body;
  emit(v, indent + 2, body);
  out += pad + "- " + body.substr(static_cast<size_t>(indent) + 2);
}

void emit(const Json& v, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string key = needsQuotes(it.key()) ? Json(it.key()).dump() : it.key();
      const Json& val = it.value();
      if (val.is_object() && !val.empty()) {
        out += pad + key + ":\n";
        emit(val, indent + 2, out);
      } else if (val.is_array() && !val.empty()) {
        out += pad + key + ":\n";
        emit(val, indent, out);  // go-yaml: "- " at the key's indentation
      } else {
        out += pad + key + ": " +
               (val.is_object()  ? "{}"
                : val.is_array() ? "[]"
                                 : scalar(val)) +
               "\n";
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v) emitItem(e, indent, out);
  } else {
    out += pad + scalar(v) + "\n";
  }
}

}  // namespace

Json stripInternal(const Json& item) {
  Json copy = item;
  if (copy.is_object()) copy.erase("svclb");
  return copy;
}

Json listWrapper(const std::vector<Json>& items) {
  Json arr = Json::array();
  for (const auto& i : items) arr.push_back(stripInternal(i));
  return Json{{"apiVersion", "v1"},
              {"items", arr},
              {"kind", "List"},
              {"metadata", {{"resourceVersion", ""}}}};
}

std::string toYaml(const Json& value) {
  std::string out;
  if (!isBlock(value))
    return (value.is_object() ? "{}" : value.is_array() ? "[]" : scalar(value)) + "\n";
  emit(value, 0, out);
  return out;
}

std::string toJsonText(const Json& value) { return value.dump(4) + "\n"; }

std::string renderNames(const std::vector<Json>& items, const std::string& fallbackKind) {
  std::string out;
  for (const auto& i : items)
    out += qualifiedName(str(at(i, {"kind"}), fallbackKind)) + "/" +
           str(at(i, {"metadata", "name"})) + "\n";
  return out;
}

}  // namespace svclb::cli
