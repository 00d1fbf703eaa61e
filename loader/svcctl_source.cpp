#include "loader/svcctl_source.h"

#include <fmt/format.h>

namespace svclb {

namespace {

const char* actionName(ApplyAction a) {
  switch (a) {
    case ApplyAction::Created:
      return "created";
    case ApplyAction::Configured:
      return "configured";
    case ApplyAction::Unchanged:
      return "unchanged";
    case ApplyAction::Deleted:
      return "deleted";
  }
  return "?";
}

// The objects of a manifest request. Without "strict": true, objects of kinds
// svclb does not handle are left out and named in `skipped`.
Result<std::vector<Object>> requestObjects(const nlohmann::json& req,
                                           std::vector<std::string>& skipped) {
  const bool strict = req.value("strict", true);
  return parseManifests(req.at("manifest").get_ref<const std::string&>(), req.value("source", "-"),
                        strict ? nullptr : &skipped);
}

Result<Outcomes> apply(StateSink& sink, const nlohmann::json& req,
                       std::vector<std::string>& skipped) {
  auto objs = requestObjects(req, skipped);
  if (!objs) return objs.error();
  if (objs->empty()) {
    // Only skipped objects (deployment.yaml of `svcctl apply -f app/`):
    // nothing to change, not an error; the reply names them.
    if (!skipped.empty()) return Outcomes{};
    return Error{EINVAL, "error: no objects passed to apply"};
  }
  return sink.apply(std::move(*objs));
}

Result<Outcomes> remove(StateSink& sink, const nlohmann::json& req,
                        std::vector<std::string>& skipped) {
  std::vector<ObjectRef> refs;
  if (req.contains("manifest")) {
    auto objs = requestObjects(req, skipped);
    if (!objs) return objs.error();
    refs.reserve(objs->size());
    for (const auto& o : *objs) refs.push_back({kindOf(o), metaOf(o).ns, metaOf(o).name});
  } else {
    refs.push_back({req.at("kind").get<std::string>(), req.value("namespace", "default"),
                    req.at("name").get<std::string>()});
  }
  return sink.remove(refs);
}

}  // namespace

nlohmann::json changeReplyJson(const ChangeReply& r) {
  nlohmann::json results = nlohmann::json::array();
  results.get_ref<nlohmann::json::array_t&>().reserve(r.results.size());
  for (const ApplyOutcome& o : r.results)
    results.push_back({{"action", actionName(o.action)},
                       {"kind", o.kind},
                       {"name", o.name},
                       {"namespace", o.ns}});
  nlohmann::json reply = {{"ok", true}, {"results", std::move(results)}};
  if (!r.skipped.empty()) reply["skipped"] = r.skipped;
  return reply;
}

Result<ChangeReply> SvcctlSource::handle(const nlohmann::json& req) {
  if (!sink_) return Error{ENOTCONN, "error: svclbd is not ready for changes"};
  ChangeReply reply;
  try {
    const std::string op = req.value("op", "");
    if (op != "apply" && op != "delete")
      return Error{EINVAL, fmt::format("error: unknown request \"{}\"", op)};
    auto r = op == "apply" ? apply(*sink_, req, reply.skipped) : remove(*sink_, req, reply.skipped);
    if (!r) return r.error();
    reply.results = std::move(*r);
  } catch (const std::exception& e) {  // nlohmann's, for a field of the wrong type
    return Error{EPROTO, fmt::format("error: malformed request: {}", e.what())};
  }
  return reply;
}

}  // namespace svclb
