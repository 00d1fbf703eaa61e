#include "loader/svcctl_source.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <tuple>

#include "model/patch.h"

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
  const std::string& text = req.at("manifest").get_ref<const std::string&>();
  Result<std::vector<Object>> objs = std::vector<Object>{};
  if (auto parts = req.find("parts"); parts != req.end() && parts->is_array()) {
    // Several files in one request (svcctl apply -f A -f B): read each as
    // its own manifest (errors name its file), applied as one.
    size_t at = 0;
    for (const auto& part : *parts) {
      const size_t n = part.value("bytes", size_t{0});
      if (n > text.size() - at)
        return Error{EPROTO, "error: the request's parts do not add up to its manifest"};
      auto got = parseManifests(std::string_view(text).substr(at, n), part.value("source", "-"),
                                strict ? nullptr : &skipped);
      if (!got) return got.error();
      for (auto& o : *got) objs->push_back(std::move(o));
      at += n;
    }
  } else {
    objs = parseManifests(text, req.value("source", "-"), strict ? nullptr : &skipped);
  }
  // svcctl -n NS: the namespace of the objects that name none; one that
  // names another is refused, in kubectl's words.
  if (objs && req.contains("namespace")) {
    const std::string ns = req.value("namespace", "");
    for (auto& o : *objs) {
      ObjectMeta& m = std::visit([](auto& x) -> ObjectMeta& { return x.meta; }, o);
      if (m.nsGiven && m.ns != ns)
        return Error{EINVAL, fmt::format("error: the namespace from the provided object \"{}\" "
                                         "does not match the namespace \"{}\". You must pass "
                                         "'--namespace={}' to perform this operation.",
                                         m.ns, ns, m.ns)};
      m.ns = ns;
    }
  }
  return objs;
}

// Warning lines per object (kind, namespace, name): printed with its result.
using ObjectWarnings =
    std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::string>>;

Result<Outcomes> apply(StateSink& sink, const nlohmann::json& req,
                       std::vector<std::string>& skipped, ObjectWarnings& perObject) {
  auto objs = requestObjects(req, skipped);
  if (!objs) return objs.error();
  if (objs->empty()) {
    // Only skipped objects (deployment.yaml of `svcctl apply -f app/`):
    // nothing to change, not an error; the reply names them.
    if (!skipped.empty()) return Outcomes{};
    return Error{EINVAL, "error: no objects passed to apply"};
  }
  // SCTP is valid Kubernetes (kube-proxy serves it) but svclb does not
  // balance it: the Service is stored, said once per port.
  for (const auto& o : *objs)
    if (const auto* svc = std::get_if<Service>(&o))
      for (const auto& p : svc->ports)
        if (p.protocol == "SCTP")
          skipped.push_back(fmt::format(
              "Warning: service/{} port {}/SCTP: svclb does not balance SCTP; this port takes "
              "no traffic through svclb (its TCP and UDP ports do)",
              svc->meta.name, p.port));
  // The API server's warnings, in kubectl's order: per object, v1
  // Endpoints' deprecation (on any request for one, its GET included) and
  // then the strategy's on a write (none for an unchanged object, which is
  // not written, nor on a client dry run, which writes nothing).
  struct ObjWarnings {
    std::tuple<std::string, std::string, std::string> key;
    bool endpoints;
    std::array<std::vector<std::string>, 2> onWrite;  // [update, create]
  };
  std::vector<ObjWarnings> warnings;
  for (const auto& o : *objs) {
    ObjWarnings w{
        {}, std::holds_alternative<Endpoints>(o), {apiWarnings(o, false), apiWarnings(o, true)}};
    if (!w.endpoints && w.onWrite[0].empty() && w.onWrite[1].empty()) continue;  // most objects
    w.key = {kindOf(o), metaOf(o).ns, metaOf(o).name};
    warnings.push_back(std::move(w));
  }
  auto r =
      req.value("dryRun", false) ? sink.tryApply(std::move(*objs)) : sink.apply(std::move(*objs));
  if (!r || warnings.empty()) return r;
  std::map<std::tuple<std::string, std::string, std::string>, ApplyAction> actions;
  for (const auto& o : *r) actions[{o.kind, o.ns, o.name}] = o.action;
  const bool writes = !req.value("clientDryRun", false);
  for (const auto& w : warnings) {
    std::vector<std::string> lines;
    if (w.endpoints) lines.push_back(std::string("Warning: ") + kEndpointsDeprecation);
    auto a = actions.find(w.key);
    if (writes && a != actions.end() && a->second != ApplyAction::Unchanged)
      for (const auto& line : w.onWrite[a->second == ApplyAction::Created ? 1 : 0])
        lines.push_back("Warning: " + line);
    if (!lines.empty()) perObject[w.key] = std::move(lines);
  }
  return r;
}

Result<Outcomes> remove(StateSink& sink, const nlohmann::json& req,
                        std::vector<std::string>& skipped, std::vector<std::string>& notFound) {
  std::vector<ObjectRef> refs;
  if (req.contains("manifest")) {
    auto objs = requestObjects(req, skipped);
    if (!objs) return objs.error();
    refs.reserve(objs->size());
    for (const auto& o : *objs) {
      refs.push_back({kindOf(o), metaOf(o).ns, metaOf(o).name});
      // kubectl's client dry run of a delete sends nothing: no warning.
      if (std::holds_alternative<Endpoints>(o) && !req.value("clientDryRun", false))
        skipped.push_back(std::string("Warning: ") + kEndpointsDeprecation);
    }
  } else {
    refs.push_back({req.at("kind").get<std::string>(), req.value("namespace", "default"),
                    req.at("name").get<std::string>()});
  }
  // "missingOk" (svcctl delete -f): what exists is deleted, the rest named
  // (kubectl deletes object by object); else one missing object fails all.
  std::vector<std::string>* missing = req.value("missingOk", false) ? &notFound : nullptr;
  if (req.value("dryRun", false)) return sink.tryRemove(refs, missing);
  return sink.remove(refs, missing);
}

// {"op":"patch", kind, namespace, name, patchType, patch, dryRun}: the patch
// applied to the stored object under the sink's change (model/patch.h); the
// result is read as a manifest, so it is checked as an apply is (unknown
// fields, types, validation), and must stay the object the request names.
Result<Outcomes> patch(StateSink& sink, const nlohmann::json& req,
                       std::vector<std::string>& warnings) {
  const std::string typeName = req.value("patchType", "strategic");
  const auto type = patchTypeFromName(typeName);
  if (!type)
    return Error{EINVAL, fmt::format("error: --type must be one of [json merge strategic], not {}",
                                     goQuote(typeName))};
  const ObjectRef ref{req.at("kind").get<std::string>(), req.value("namespace", "default"),
                      req.at("name").get<std::string>()};
  const std::string& text = req.at("patch").get_ref<const std::string&>();
  std::vector<std::string> objWarnings;
  auto edit = [&](const nlohmann::json& cur) -> Result<Object> {
    auto next = applyPatch(cur, cur.value("kind", ""), text, *type);
    if (!next) return next.error();
    auto field = [](const nlohmann::json& j, const char* a, const char* b) {
      const auto* v = &j;
      for (const char* k : {a, b}) {
        if (!k) break;
        if (!v->is_object() || !v->contains(k)) return std::string();
        v = &v->at(k);
      }
      return v->is_string() ? v->get<std::string>() : std::string();
    };
    const std::string curName = field(cur, "metadata", "name");
    if (field(*next, "metadata", "name") != curName)
      return Error{EINVAL, fmt::format("Error from server (BadRequest): the name of the object "
                                       "({}) does not match the name on the URL ({})",
                                       field(*next, "metadata", "name"), curName)};
    if (field(*next, "metadata", "namespace") != field(cur, "metadata", "namespace"))
      return Error{EINVAL,
                   "Error from server (BadRequest): the namespace of the object does "
                   "not match the namespace on the request"};
    if (field(*next, "kind", nullptr) != field(cur, "kind", nullptr) ||
        field(*next, "apiVersion", nullptr) != field(cur, "apiVersion", nullptr))
      return Error{EINVAL,
                   "Error from server (BadRequest): a patch cannot change the object's "
                   "kind or apiVersion"};
    auto objs = parseManifests(next->dump(), "patch");
    if (!objs) {
      // kubectl's client-side validation text names a flag patch has not.
      std::string msg = objs.error().message;
      if (auto cut = msg.find("; if you choose to ignore these errors"); cut != msg.npos)
        msg.erase(cut);
      return Error{objs.error().code, msg};
    }
    if (objs->size() != 1) return Error{EINVAL, "error: the patched object is not one object"};
    objWarnings = apiWarnings(objs->front(), false);
    return std::move(objs->front());
  };
  auto r = sink.edit(ref, edit, req.value("dryRun", false));
  // The API server sends the update's warnings even when the patch
  // changed nothing (kubectl: "service/web patched (no change)").
  if (r)
    for (const auto& w : objWarnings) warnings.push_back("Warning: " + w);
  return r;
}

}  // namespace

std::string changeReplyText(const ChangeReply& r) {
  // Written as text with the model's one JSON string encoder
  // (appendJsonString): a reply holds one result per object, tens of
  // thousands for a large manifest, and an nlohmann document of 20,000
  // results cost ~30-86 ms against ~1-6 ms for this on the 2-core VM
  // (bench/results/2026-12-04-vm-daemon-split.md).
  std::string out = "{\"ok\":true,\"results\":[";
  out.reserve(out.size() + r.results.size() * 80);
  for (size_t i = 0; i < r.results.size(); ++i) {
    const ApplyOutcome& o = r.results[i];
    out += i ? ",{\"action\":\"" : "{\"action\":\"";
    out += actionName(o.action);
    out += "\",\"kind\":";
    appendJsonString(out, o.kind);
    out += ",\"name\":";
    appendJsonString(out, o.name);
    out += ",\"namespace\":";
    appendJsonString(out, o.ns);
    if (i < r.warnings.size() && !r.warnings[i].empty()) {
      out += ",\"warnings\":[";
      for (size_t k = 0; k < r.warnings[i].size(); ++k) {
        if (k) out += ',';
        appendJsonString(out, r.warnings[i][k]);
      }
      out += ']';
    }
    out += '}';
  }
  out += ']';
  auto list = [&](const char* name, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out += ",\"";
    out += name;
    out += "\":[";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ',';
      appendJsonString(out, v[i]);
    }
    out += ']';
  };
  list("skipped", r.skipped);
  list("notFound", r.notFound);
  out += '}';
  return out;
}

Result<ChangeReply> SvcctlSource::handle(const nlohmann::json& req) {
  if (!refusal_.empty()) return Error{EPERM, refusal_};
  if (!sink_) return Error{ENOTCONN, "error: svclbd is not ready for changes"};
  ChangeReply reply;
  try {
    const std::string op = req.value("op", "");
    if (op != "apply" && op != "delete" && op != "patch")
      return Error{EINVAL, fmt::format("error: unknown request \"{}\"", op)};
    ObjectWarnings perObject;
    auto r = op == "apply"   ? apply(*sink_, req, reply.skipped, perObject)
             : op == "patch" ? patch(*sink_, req, reply.skipped)
                             : remove(*sink_, req, reply.skipped, reply.notFound);
    if (!r) return r.error();
    reply.results = std::move(*r);
    if (!perObject.empty()) {
      reply.warnings.resize(reply.results.size());
      for (size_t i = 0; i < reply.results.size(); ++i) {
        const auto& o = reply.results[i];
        auto it = perObject.find({o.kind, o.ns, o.name});
        if (it != perObject.end()) reply.warnings[i] = std::move(it->second);
      }
    }
  } catch (const std::exception& e) {  // nlohmann's, for a field of the wrong type
    return Error{EPROTO, fmt::format("error: malformed request: {}", e.what())};
  }
  return reply;
}

}  // namespace svclb
