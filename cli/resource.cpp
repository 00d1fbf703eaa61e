// svcctl's resource names: the kind table of model/kinds.h, shared with svclbd.
#include "cli/format.h"
#include "model/kinds.h"

namespace svclb::cli {

std::optional<ResourceType> resolveResource(const std::string& arg) {
  const KindInfo* k = svclb::resolveResource(arg);
  if (!k) return std::nullopt;
  return ResourceType{std::string(k->kind), std::string(k->singular)};
}

std::string qualifiedName(const std::string& kind) { return resourceSingular(kind); }

}  // namespace svclb::cli
