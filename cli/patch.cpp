// `svcctl patch`, `svcctl label`, `svcctl annotate`: kubectl's commands that
// change part of a stored object. Each sends svclbd a patch of one object
// ({"op":"patch"}, docs/api.md), which applies it to the stored object
// within one change (model/patch.h); label and annotate read the object
// first for kubectl's --overwrite check, then send a merge patch of
// metadata.labels / metadata.annotations.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"

namespace svclb::cli {
namespace {

struct Named {
  ResourceType type;
  std::string name;
};

// TYPE NAME... | TYPE/NAME... → the objects, in order; kubectl's usage error
// when none is named.
bool namedObjects(const std::vector<std::string>& args, Context& ctx, std::vector<Named>& out) {
  std::vector<Target> targets;
  if (args.empty() || !parseTargets(args, ctx, targets)) {
    if (args.empty())
      ctx.err << "error: one or more resources must be specified as <resource> <name> or "
                 "<resource>/<name>\n";
    return false;
  }
  for (const auto& t : targets)
    for (const auto& n : t.names) out.push_back({t.type, n});
  if (out.empty()) {
    ctx.err << "error: one or more resources must be specified as <resource> <name> or "
               "<resource>/<name>\n";
    return false;
  }
  warnDeprecatedKinds(ctx, targets);
  return true;
}

// Sends one patch request; returns the reply's action or nullopt (printed).
std::optional<std::string> sendPatch(Context& ctx, const Named& obj, const std::string& ns,
                                     const std::string& type, const std::string& patch, bool dry) {
  nlohmann::json req = {{"op", "patch"},    {"kind", obj.type.kind}, {"namespace", ns},
                        {"name", obj.name}, {"patchType", type},     {"patch", patch},
                        {"dryRun", dry}};
  auto resp = callDaemon(ctx.socketPath, req, ctx.timeout);
  if (!resp) {
    ctx.err << resp.error().message << "\n";
    return std::nullopt;
  }
  printSkipped(ctx, *resp);  // the API's warnings on the patched object
  const Json& results = at(*resp, {"results"});
  if (!results.is_array() || results.empty()) return std::string("configured");
  return str(at(results[0], {"action"}));
}

std::string readAll(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int runPatch(Context& ctx, const PatchOptions& opts) {
  if (opts.patch.empty() == opts.patchFile.empty()) {
    ctx.err << (opts.patch.empty()
                    ? "error: must specify --patch or --patch-file containing the contents of "
                      "the patch\n"
                    : "error: --patch and --patch-file cannot be given together\n");
    return 1;
  }
  if (opts.type != "strategic" && opts.type != "merge" && opts.type != "json") {
    ctx.err << fmt::format("error: --type must be one of [json merge strategic], not \"{}\"\n",
                           opts.type);
    return 1;
  }
  const auto suffix = dryRunSuffix(opts.dryRun, ctx);
  if (!suffix) return 1;
  std::string patch = opts.patch;
  if (!opts.patchFile.empty()) {
    if (opts.patchFile == "-") {
      patch = readAll(ctx.in);
    } else {
      // kubectl's os.ReadFile errors: "open F: <errno>", "read F: is a directory".
      std::ifstream f(opts.patchFile);
      const int openErr = f ? 0 : errno;
      std::error_code ec;
      if (!openErr && std::filesystem::is_directory(opts.patchFile, ec)) {
        ctx.err << fmt::format("error: unable to read patch file: read {}: is a directory\n",
                               opts.patchFile);
        return 1;
      }
      if (openErr) {
        ctx.err << fmt::format("error: unable to read patch file: open {}: {}\n", opts.patchFile,
                               goErrno(openErr));
        return 1;
      }
      patch = readAll(f);
    }
  }
  std::vector<Named> objs;
  if (!namedObjects(opts.args, ctx, objs)) return 1;
  int rc = 0;
  for (const auto& o : objs) {
    auto action = sendPatch(ctx, o, opts.nameSpace, opts.type, patch, !suffix->empty());
    if (!action) {
      rc = 1;
      continue;
    }
    ctx.out << fmt::format("{}/{} patched{}{}\n", o.type.qualified, o.name,
                           *action == "unchanged" ? " (no change)" : "", *suffix);
  }
  return rc;
}

int runLabel(Context& ctx, const LabelOptions& opts) {
  const char* what = opts.annotate ? "annotation" : "label";
  const char* field = opts.annotate ? "annotations" : "labels";
  // kubectl's split: an argument with '=' or ending in '-' is a change.
  std::vector<std::string> resources;
  std::map<std::string, std::string> set;
  std::vector<std::string> remove;
  for (const auto& a : opts.args) {
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      const std::string key = a.substr(0, eq);
      if (key.empty() || a.find('=', eq + 1) != std::string::npos) {
        ctx.err << fmt::format("error: invalid {} spec: {}\n", what, a);
        return 1;
      }
      set[key] = a.substr(eq + 1);
    } else if (a.size() > 1 && a.back() == '-') {
      remove.push_back(a.substr(0, a.size() - 1));
    } else {
      resources.push_back(a);
    }
  }
  if (set.empty() && remove.empty()) {
    ctx.err << fmt::format("error: at least one {} update is required\n", what);
    return 1;
  }
  for (const auto& k : remove)
    if (set.count(k)) {
      ctx.err << (opts.annotate
                      ? fmt::format("error: can not both modify and remove the following "
                                    "annotation(s) in the same command: {}\n",
                                    k)
                      : std::string(
                            "error: can not both modify and remove a label in the same command\n"));
      return 1;
    }
  const auto suffix = dryRunSuffix(opts.dryRun, ctx);
  if (!suffix) return 1;
  std::vector<Named> objs;
  if (!opts.selector.empty() || opts.all) {
    // -l / --all: every object of the types that the selector selects, type
    // by type (kubectl's list and visit); none is no error.
    if (!opts.selector.empty() && opts.all) {
      ctx.err << "error: cannot set --all and --selector at the same time\n";
      return 1;
    }
    std::vector<Target> targets;
    if (!parseTargets(resources, ctx, targets)) return 1;
    if (!targets.front().names.empty()) {
      ctx.err << "error: name cannot be provided when a selector is specified\n";
      return 1;
    }
    auto selector = parseSelector(opts.selector, targets, ctx);
    if (!selector) return 1;
    for (const auto& t : targets) {
      warnDeprecatedKinds(ctx, {t});
      std::vector<std::string> names;
      if (!selectedNames(ctx, t.type.kind, opts.nameSpace, *selector, names)) return 1;
      for (auto& n : names) objs.push_back({t.type, std::move(n)});
    }
  } else if (!namedObjects(resources, ctx, objs)) {
    return 1;
  }
  int rc = 0;
  // kubectl's --overwrite refusals, printed after the others (its aggregate
  // error): one as "error: ...", several one per line.
  std::vector<std::string> refusals;
  for (const auto& o : objs) {
    auto cur = callDaemon(
        ctx.socketPath,
        {{"op", "get"}, {"kind", o.type.kind}, {"namespace", opts.nameSpace}, {"name", o.name}},
        ctx.timeout);
    if (!cur) {
      ctx.err << cur.error().message << "\n";
      rc = 1;
      continue;
    }
    const Json& items = at(*cur, {"items"});
    const Json& have =
        items.is_array() && !items.empty() ? at(items[0], {"metadata", field}) : nullJson();
    // --overwrite: a key that has another value is an error without it.
    std::vector<std::string> clashes;
    for (const auto& [k, v] : set)
      if (have.is_object() && have.contains(k) && have[k] != v)
        clashes.push_back(fmt::format("'{}' already has a value ({})", k, str(have[k])));
    if (!clashes.empty() && !opts.overwrite) {
      refusals.push_back(
          opts.annotate
              ? fmt::format(
                    "--overwrite is false but found the following declared annotation(s): {}",
                    join(clashes, "; "))
              : fmt::format("{}, and --overwrite is false", clashes.front()));
      rc = 1;
      continue;
    }
    nlohmann::json change = nlohmann::json::object();
    bool added = false, removed = false;
    for (const auto& [k, v] : set)
      if (!(have.is_object() && have.contains(k) && have[k] == v)) {
        change[k] = v;
        added = true;
      }
    for (const auto& k : remove) {
      if (have.is_object() && have.contains(k)) {
        change[k] = nullptr;
        removed = true;
      } else if (!opts.annotate) {
        ctx.out << fmt::format("label \"{}\" not found.\n", k);
      }
    }
    std::string action = "configured";
    if (added || removed) {
      nlohmann::json patch = {{"metadata", {{field, change}}}};
      auto a = sendPatch(ctx, o, opts.nameSpace, "merge", patch.dump(), !suffix->empty());
      if (!a) {
        rc = 1;
        continue;
      }
      action = *a;
    }
    std::string msg;
    if (opts.annotate)
      msg = "annotated";
    else if (!added && !removed)
      msg = "not labeled";
    else
      msg = removed && !added && !opts.overwrite ? "unlabeled" : "labeled";
    ctx.out << fmt::format("{}/{} {}{}\n", o.type.qualified, o.name, msg, *suffix);
  }
  for (const auto& r : refusals) ctx.err << (refusals.size() == 1 ? "error: " : "") << r << "\n";
  return rc;
}

}  // namespace svclb::cli
