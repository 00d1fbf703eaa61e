// kubectl patch's three patch types applied to an object as the API shows
// it (toJson): what `svcctl patch` and `label`/`annotate` send svclbd, which
// applies them to the stored object under its one change lock (as the API
// server does), so a patch never undoes a concurrent change to other
// fields.
//   strategic  JSON merge patch, except the lists the API merges by a key
//              (a Service's spec.ports by port, ownerReferences by uid):
//              an item with the key of an existing one is merged into it,
//              `$patch: delete` in an item removes it, an item
//              `{"$patch": "replace"}` replaces the whole list;
//              `$patch: replace|delete` in a map replaces or removes it;
//              the merged list is ordered as the API orders it (the
//              patch's items in its order, interleaved with the stored
//              items it does not name); `$setElementOrder/...` keys are
//              accepted and ignored;
//              `$retainKeys` and other directives are refused.
//   merge      RFC 7386 JSON merge patch.
//   json       RFC 6902 JSON patch (add, remove, replace, move, copy, test).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace svclb {

enum class PatchType { Strategic, Merge, Json };

// "strategic" | "merge" | "json" (kubectl's --type); nullopt otherwise.
std::optional<PatchType> patchTypeFromName(std::string_view name);

// The patch text (JSON, or YAML as kubectl -p takes it) applied to
// `current` (an object of `kind`). Errors in kubectl's words, e.g.
//   error: unable to parse "{x": yaml: ...
Result<nlohmann::json> applyPatch(const nlohmann::json& current, const std::string& kind,
                                  std::string_view patchText, PatchType type);

}  // namespace svclb
