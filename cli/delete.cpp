// `svcctl delete TYPE NAME...`, `svcctl delete TYPE/NAME...`, `svcctl delete -f FILE`.
#include <fmt/format.h>

#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/selector.h"
#include "common/api.h"

namespace svclb::cli {

std::string renderDeleteResults(const Json& results, const std::string& suffix) {
  std::string out;
  if (!results.is_array()) return out;
  for (const auto& r : results)
    out += fmt::format("{} \"{}\" {}{}\n", qualifiedName(str(at(r, {"kind"}))),
                       str(at(r, {"name"})), str(at(r, {"action"}), "deleted"), suffix);
  return out;
}

int runDelete(Context& ctx, const DeleteOptions& opts) {
  if (!opts.files.empty() && !opts.args.empty()) {
    ctx.err << "error: specify either -f FILE or RESOURCE NAME, not both\n";
    return 1;
  }
  if (!opts.files.empty() && (opts.all || !opts.selector.empty())) {
    ctx.err << "error: -f FILE deletes the file's objects: --selector and --all take a "
               "RESOURCE instead\n";
    return 1;
  }
  if (opts.files.empty() && opts.args.empty()) {
    ctx.err << "error: You must provide one or more resources by argument or filename.\n";
    return 1;
  }
  const auto suffix = dryRunSuffix(opts.dryRun, ctx);
  if (!suffix) return 1;
  const bool dry = !suffix->empty();
  std::vector<std::string> requests;  // serialized: a JSON line or a manifestRequest
  if (!opts.files.empty()) {
    std::vector<Manifest> manifests;
    if (!readManifests(opts.files, ctx, manifests)) return 1;
    for (const auto& m : manifests)
      requests.push_back(api::manifestRequest("delete", m.text, m.source, opts.strict,
                                              opts.nameSpace, true, dry, opts.dryRun == "client"));
  } else {
    std::vector<Target> targets;
    if (!parseTargets(opts.args, ctx, targets)) return 1;
    const std::string ns = opts.nameSpace.empty() ? "default" : opts.nameSpace;
    const bool bySelector = opts.all || !opts.selector.empty();
    if (opts.all && !opts.selector.empty()) {
      ctx.err << "error: cannot set --all and --selector at the same time\n";
      return 1;
    }
    if (opts.all && !targets.front().names.empty()) {
      ctx.err << "error: name cannot be provided when a selector is specified\n";
      return 1;
    }
    auto selector = parseSelector(opts.selector, targets, ctx);
    if (!selector) return 1;
    if (!bySelector && targets.front().names.empty()) {
      ctx.err << "error: resource(s) were provided, but no name was specified\n";
      return 1;
    }
    if (opts.dryRun != "client") warnDeprecatedKinds(ctx, targets);
    if (bySelector) {
      // The names come from the daemon's list, filtered here; an object gone
      // before its delete request is a NotFound, as with kubectl.
      for (auto& target : targets)
        if (!selectedNames(ctx, target.type.kind, ns, *selector, target.names)) return 1;
    }
    for (const auto& target : targets)
      for (const auto& n : target.names) {
        Json req{{"op", "delete"}, {"kind", target.type.kind}, {"namespace", ns}, {"name", n}};
        if (dry) req["dryRun"] = true;
        requests.push_back(req.dump(-1, ' ', false, Json::error_handler_t::replace));
      }
    if (requests.empty()) {
      ctx.err << "No resources found\n";
      return 0;
    }
  }
  // As kubectl: what exists is deleted; each missing object is an error
  // line (exit 1), or nothing with --ignore-not-found.
  const auto notFound = [](const std::string& msg) {
    return msg.rfind("Error from server (NotFound):", 0) == 0;
  };
  return sendChanges(
      ctx, requests,
      [&](const Json& resp) {
        ctx.out << renderDeleteResults(at(resp, {"results"}), *suffix);
        const Json& missing = at(resp, {"notFound"});
        if (!missing.is_array() || missing.empty() || opts.ignoreNotFound) return true;
        for (const auto& m : missing) ctx.err << str(m) << "\n";
        return false;
      },
      [&](const std::string& refusal) { return opts.ignoreNotFound && notFound(refusal); });
}

}  // namespace svclb::cli
