// Machine-readable output (-o json|yaml|name) in kubectl's shapes.
#include <regex>

#include "cli/format.h"
#include "cli/json_util.h"

namespace svclb::cli {
namespace {

// YAML 1.1 plain scalars that a reader would not take back as the same
// string (bools, nulls, numbers, timestamps) must be quoted, as go-yaml does.
bool resolvesToNonString(const std::string& s) {
  static const std::regex kSpecial(
      "^(~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|"
      "ON|off|Off|OFF)$");
  static const std::regex kNumber(
      "^[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+|(0|[1-9][0-9_]*)|"
      "(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|"
      "[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?|\\.(inf|Inf|INF))$|^\\.(nan|NaN|NAN)$");
  static const std::regex kTimestamp("^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \\t].*)?$");
  return std::regex_match(s, kSpecial) || std::regex_match(s, kNumber) ||
         std::regex_match(s, kTimestamp);
}

bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return true;
  static const std::string kIndicators = "-?:,[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string::npos) return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return resolvesToNonString(s);
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
