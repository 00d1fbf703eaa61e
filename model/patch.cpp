#include "model/patch.h"

#include <fmt/format.h>

#include <stdexcept>
#include <vector>

#include "common/yaml.h"

namespace svclb {

using json = nlohmann::json;

namespace {

struct PatchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The lists a strategic merge patch merges by a key, per kind and path
// (the API types' patchMergeKey); every other list is replaced.
const char* mergeKey(const std::string& kind, const std::string& path) {
  if (path == ".metadata.ownerReferences") return "uid";
  if (kind == "Service" && path == ".spec.ports") return "port";
  return nullptr;
}

json mergeMap(const json& cur, const json& patch, const std::string& kind, const std::string& path);

// A list the API merges by `key`, as apimachinery's strategic merge does:
// `$patch: delete` items remove the stored item with their key, an item
// `{"$patch": "replace"}` makes the list the patch's other items; every
// other patch item is merged into the stored item with its key, or is new.
// The order: the patch's items in the patch's order, the stored items the
// patch does not name in their stored order, interleaved as the API does
// (a stored item goes before a patch item only when both are stored and it
// was before it).
json mergeKeyedList(const json& cur, const json& patch, const char* key, const std::string& kind,
                    const std::string& path) {
  json stored = cur.is_array() ? cur : json::array();
  std::vector<json> items;  // the patch's, without directives
  for (const auto& item : patch) {
    if (!item.is_object())
      throw PatchError(fmt::format("{}: a list merged by \"{}\" takes objects", path, key));
    auto d = item.find("$patch");
    if (d == item.end()) {
      if (!item.contains(key))
        throw PatchError(
            fmt::format("{}: an item of a list merged by \"{}\" must have it", path, key));
      items.push_back(item);
      continue;
    }
    const std::string what = d->is_string() ? d->get<std::string>() : "";
    if (what == "replace") {
      json rest = json::array();
      for (const auto& other : patch)
        if (!other.contains("$patch")) rest.push_back(other);
      return rest;
    }
    if (what != "delete")
      throw PatchError(fmt::format("{}: unknown patch directive $patch: {}", path, d->dump()));
    if (!item.contains(key))
      throw PatchError(fmt::format("{}: $patch: delete needs the merge key \"{}\"", path, key));
    for (auto it = stored.begin(); it != stored.end();)
      it = it->is_object() && it->value(key, json()) == item.at(key) ? stored.erase(it) : it + 1;
  }
  // The index in `stored` of the item with `item`'s key, or -1.
  auto storedIndex = [&](const json& item) -> long {
    if (!item.is_object() || !item.contains(key)) return -1;
    for (size_t i = 0; i < stored.size(); ++i)
      if (stored[i].is_object() && stored[i].value(key, json()) == item.at(key))
        return static_cast<long>(i);
    return -1;
  };
  std::vector<json> patched;  // the patch's items, merged into their stored ones
  for (const auto& item : items) {
    const long at = storedIndex(item);
    patched.push_back(mergeMap(at >= 0 ? stored[at] : json::object(), item, kind, path + "[]"));
  }
  std::vector<json> serverOnly;
  for (const auto& s : stored) {
    bool named = false;
    for (const auto& item : items)
      named = named || (s.is_object() && s.value(key, json()) == item.at(key));
    if (!named) serverOnly.push_back(s);
  }
  json out = json::array();
  size_t i = 0, j = 0;
  while (i < serverOnly.size() || j < patched.size()) {
    if (j >= patched.size()) {
      out.push_back(serverOnly[i++]);
    } else if (i >= serverOnly.size()) {
      out.push_back(patched[j++]);
    } else {
      const long li = storedIndex(serverOnly[i]), ri = storedIndex(patched[j]);
      if (li >= 0 && ri >= 0 && li < ri)
        out.push_back(serverOnly[i++]);
      else
        out.push_back(patched[j++]);
    }
  }
  return out;
}

json mergeMap(const json& cur, const json& patch, const std::string& kind,
              const std::string& path) {
  if (!patch.is_object()) return patch;
  if (auto d = patch.find("$patch"); d != patch.end()) {
    const std::string what = d->is_string() ? d->get<std::string>() : "";
    if (what == "delete") return json();  // the caller drops a null
    if (what != "replace")
      throw PatchError(fmt::format("{}: unknown patch directive $patch: {}", path, d->dump()));
    json out = patch;
    out.erase("$patch");
    return out;
  }
  json out = cur.is_object() ? cur : json::object();
  for (const auto& [k, v] : patch.items()) {
    if (k.rfind("$setElementOrder/", 0) == 0) continue;
    if (!k.empty() && k[0] == '$')
      throw PatchError(fmt::format("{}: patch directive {} is not supported", path, k));
    const std::string sub = path + "." + k;
    if (v.is_null()) {
      out.erase(k);
      continue;
    }
    json merged;
    if (v.is_array()) {
      const char* key = mergeKey(kind, sub);
      merged = key ? mergeKeyedList(out.value(k, json()), v, key, kind, sub) : v;
    } else {
      merged = mergeMap(out.value(k, json()), v, kind, sub);
    }
    if (merged.is_null())
      out.erase(k);
    else
      out[k] = std::move(merged);
  }
  return out;
}

// The patch text as JSON: JSON proper, else YAML (kubectl -p takes both).
Result<json> readPatch(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  std::optional<json> doc;
  auto err = yaml::readYaml(text, [&](json&& d) {
    if (!doc) doc = std::move(d);
  });
  if (err) return Error{EINVAL, fmt::format("error: unable to parse \"{}\": yaml: {}", text, *err)};
  if (!doc || doc->is_null()) return Error{EINVAL, "error: must specify -p to patch"};
  return std::move(*doc);
}

}  // namespace

std::optional<PatchType> patchTypeFromName(std::string_view name) {
  if (name == "strategic") return PatchType::Strategic;
  if (name == "merge") return PatchType::Merge;
  if (name == "json") return PatchType::Json;
  return std::nullopt;
}

Result<json> applyPatch(const json& current, const std::string& kind, std::string_view patchText,
                        PatchType type) {
  auto patch = readPatch(patchText);
  if (!patch) return patch.error();
  try {
    switch (type) {
      case PatchType::Json: {
        if (!patch->is_array())
          return Error{EINVAL,
                       "error: unable to apply the json patch: it must be a list of operations"};
        return current.patch(*patch);
      }
      case PatchType::Merge: {
        if (!patch->is_object())
          return Error{EINVAL, "error: unable to apply the merge patch: it must be an object"};
        json out = current;
        out.merge_patch(*patch);
        return out;
      }
      case PatchType::Strategic: {
        if (!patch->is_object())
          return Error{EINVAL,
                       "error: unable to apply the strategic merge patch: it must be an object"};
        json out = mergeMap(current, *patch, kind, "");
        if (out.is_null())
          return Error{EINVAL, "error: a patch cannot delete the object (use svcctl delete)"};
        return out;
      }
    }
  } catch (const PatchError& e) {
    return Error{EINVAL,
                 fmt::format("error: unable to apply the strategic merge patch: {}", e.what())};
  } catch (const json::exception& e) {
    // nlohmann's "[json.exception.out_of_range.403] key 'x' not found".
    std::string msg = e.what();
    if (auto close = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && close != msg.npos)
      msg = msg.substr(close + 2);
    return Error{EINVAL, fmt::format("error: unable to apply the json patch: {}", msg)};
  }
  return Error{EINVAL, "error: unknown patch type"};
}

}  // namespace svclb
