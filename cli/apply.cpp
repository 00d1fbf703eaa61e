// `svcctl apply -f FILE|DIR|-`.
#include <fmt/format.h>

#include <ostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "common/api.h"

namespace svclb::cli {

std::string renderApplyResults(const Json& results, const std::string& suffix) {
  std::string out;
  if (!results.is_array()) return out;
  for (const auto& r : results)
    out += qualifiedName(str(at(r, {"kind"}))) + "/" + str(at(r, {"name"})) + " " +
           str(at(r, {"action"})) + suffix + "\n";
  return out;
}

namespace {

// The result lines, each object's warnings (the API server's) on ctx.err
// just before its line, as kubectl prints them; the lines of objects without
// any in one write.
void printApplyResults(Context& ctx, const Json& results, const std::string& suffix) {
  if (!results.is_array()) return;
  size_t from = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Json& w = at(results[i], {"warnings"});
    if (!w.is_array() || w.empty()) continue;
    ctx.out << renderApplyResults(
        Json(results.begin() + static_cast<long>(from), results.begin() + static_cast<long>(i)),
        suffix);
    ctx.out.flush();
    for (const auto& line : w) warnOnce(ctx, str(line));
    from = i;
  }
  ctx.out << renderApplyResults(
      from ? Json(results.begin() + static_cast<long>(from), results.end()) : results, suffix);
}

}  // namespace

// The objects a non-strict apply or delete left out, one line each.
void printSkipped(Context& ctx, const Json& resp) {
  const Json& skipped = at(resp, {"skipped"});
  if (skipped.is_array())
    for (const auto& s : skipped) warnOnce(ctx, str(s));
}

int sendChanges(Context& ctx, const std::vector<std::string>& requests,
                const std::function<bool(const Json&)>& onReply,
                const std::function<bool(const std::string&)>& ignoreRefusal) {
  int rc = 0;
  for (const auto& req : requests) {
    auto resp = callDaemonLine(ctx.socketPath, req, ctx.timeout);
    if (!resp) {
      const bool refused = resp.error().code == kDaemonRefused;
      if (refused && ignoreRefusal && ignoreRefusal(resp.error().message)) continue;
      ctx.err << resp.error().message << "\n";
      if (!refused) return 1;  // unreachable: stop here
      rc = 1;
      continue;
    }
    printSkipped(ctx, *resp);
    if (!onReply(*resp)) rc = 1;
  }
  return rc;
}

int runApply(Context& ctx, const ApplyOptions& opts) {
  if (opts.files.empty()) {
    ctx.err << "error: must specify one of -f and -k\n";
    return 1;
  }
  const auto suffix = dryRunSuffix(opts.dryRun, ctx);
  if (!suffix) return 1;
  const bool dry = !suffix->empty();
  const bool clientDry = opts.dryRun == "client";
  std::vector<Manifest> manifests;
  if (!readManifests(opts.files, ctx, manifests)) return 1;
  // One request for all the files: the apply is all-or-nothing, whatever
  // file an error is in. Beyond svclbd's request limit, file by file.
  std::vector<std::string> requests;
  size_t total = 0;
  for (const auto& m : manifests) total += m.text.size();
  if (manifests.size() > 1 && total <= api::kMaxRequest) {
    std::vector<std::pair<std::string, std::string>> parts;
    parts.reserve(manifests.size());
    for (auto& m : manifests) parts.emplace_back(m.source, std::move(m.text));
    requests.push_back(
        api::manifestsRequest("apply", parts, opts.strict, opts.nameSpace, dry, clientDry));
  } else {
    if (manifests.size() > 1)
      ctx.err << fmt::format(
          "Warning: the manifests together are larger than svclbd's {} MiB request limit: "
          "applied file by file (each file all-or-nothing)\n",
          api::kMaxRequest >> 20);
    for (const auto& m : manifests)
      requests.push_back(api::manifestRequest("apply", m.text, m.source, opts.strict,
                                              opts.nameSpace, false, dry, clientDry));
  }
  return sendChanges(ctx, requests, [&](const Json& resp) {
    const Json& results = at(resp, {"results"});
    const Json& skipped = at(resp, {"skipped"});
    // A file of skipped objects only (the Deployment's file in a directory)
    // applied nothing, and that is what was asked for.
    if (skipped.is_array() && !skipped.empty() && results.is_array() && results.empty())
      return true;
    if (!results.is_array() || results.empty()) {
      ctx.err << "error: no objects passed to apply\n";
      return false;
    }
    printApplyResults(ctx, results, *suffix);
    return true;
  });
}

}  // namespace svclb::cli
