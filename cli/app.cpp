// Command-line parsing (CLI11) and dispatch to the subcommands.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <ostream>
#include <tuple>

#include "cli/client.h"
#include "cli/commands.h"

namespace svclb::cli {
namespace {

// kubectl's --request-timeout: "30", "30s", "2m", "1h"; 0 means the default.
std::optional<std::chrono::milliseconds> parseTimeout(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t pos = 0;
  long long v;
  try {
    v = std::stoll(s, &pos);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(pos);
  if (v < 0) return std::nullopt;
  if (unit.empty() || unit == "s") return std::chrono::seconds(v);
  if (unit == "ms") return std::chrono::milliseconds(v);
  if (unit == "m") return std::chrono::minutes(v);
  if (unit == "h") return std::chrono::hours(v);
  return std::nullopt;
}

void addNamespace(CLI::App* cmd, std::string& ns) {
  cmd->add_option("-n,--namespace", ns, "Namespace (default \"default\")");
}

}  // namespace

int runSvcctl(const std::vector<std::string>& argv, Context& ctx) {
  CLI::App app{"svcctl controls svclbd, the svclb Kubernetes-Service load balancer.", "svcctl"};
  app.fallthrough();
  app.require_subcommand(0, 1);
  std::string socket = ctx.socketPath.empty() ? defaultSocketPath() : ctx.socketPath;
  std::string timeout;
  app.add_option("--socket", socket,
                 "svclbd's API socket (default $SVCLB_SOCKET, else /run/svclb/svclbd.sock)");
  app.add_option("--request-timeout", timeout, "How long to wait for svclbd (e.g. 30s, 2m)");

  ApplyOptions applyOpts;
  auto* apply =
      app.add_subcommand("apply", "Apply Services/Endpoints/EndpointSlices from manifests");
  apply->add_option("-f,--filename", applyOpts.files, "File, directory or - (stdin)")
      ->allow_extra_args(false);
  apply->add_flag("--strict", applyOpts.strict,
                  "Refuse a manifest that holds objects of kinds svclb does not handle "
                  "(default: skip them, one warning each)");
  addNamespace(apply, applyOpts.nameSpace);
  apply
      ->add_option("--dry-run", applyOpts.dryRun,
                   "none, or server|client: svclbd checks the objects against its state and "
                   "answers what would change, changing nothing")
      ->expected(0, 1)
      ->default_str("client");

  GetOptions getOpts;
  auto* get = app.add_subcommand("get", "Display one or many resources (svc, ep, endpointslice)");
  get->add_option("args", getOpts.args, "TYPE[,TYPE...] [NAME...] | TYPE/NAME...");
  addNamespace(get, getOpts.nameSpace);
  get->add_flag("-A,--all-namespaces", getOpts.allNamespaces, "List across all namespaces");
  get->add_option("-o,--output", getOpts.output,
                  "Output format: wide|json|yaml|name|jsonpath=TEMPLATE|custom-columns=SPEC");
  get->add_option("-l,--selector", getOpts.selector,
                  "Label selector: key=value, key!=value, key in (a,b), key notin (a,b), key, !key "
                  "(comma = and)");
  get->add_flag("--show-labels", getOpts.showLabels, "Show all labels as the last column");
  get->add_option("--sort-by", getOpts.sortBy,
                  "Sort the list by this JSONPath expression's value (e.g. .spec.clusterIP)");
  get->add_flag("--no-headers", getOpts.noHeaders, "Don't print headers");
  get->add_flag("-w,--watch", getOpts.watch,
                "After the list, print a row for each object that is added, changed or deleted "
                "(svcctl reads the list every second; Ctrl-C ends it)");

  DescribeOptions describeOpts;
  auto* describe = app.add_subcommand("describe", "Show details of svc, ep or endpointslice");
  describe->add_option("args", describeOpts.args, "TYPE[,TYPE...] [NAME...] | TYPE/NAME...");
  addNamespace(describe, describeOpts.nameSpace);
  describe->add_option("-l,--selector", describeOpts.selector, "Label selector (as get -l)");

  DeleteOptions deleteOpts;
  auto* del = app.add_subcommand("delete", "Delete resources by name or by manifest");
  del->add_option("args", deleteOpts.args, "TYPE[,TYPE...] NAME... | TYPE/NAME...");
  del->add_option("-f,--filename", deleteOpts.files, "File, directory or - (stdin)")
      ->allow_extra_args(false);
  del->add_flag("--strict", deleteOpts.strict,
                "With -f: refuse a manifest that holds objects of kinds svclb does not handle");
  addNamespace(del, deleteOpts.nameSpace);
  del->add_flag("--ignore-not-found", deleteOpts.ignoreNotFound,
                "Treat \"resource not found\" as a successful delete");
  del->add_option("-l,--selector", deleteOpts.selector,
                  "Delete the objects of the given types that this label selector selects");
  del->add_flag("--all", deleteOpts.all, "Delete every object of the given types in the namespace");
  del->add_option("--dry-run", deleteOpts.dryRun,
                  "none, or server|client: what would be deleted, deleting nothing")
      ->expected(0, 1)
      ->default_str("client");

  PatchOptions patchOpts;
  auto* patch = app.add_subcommand(
      "patch", "Update fields of a svc, ep or endpointslice with a strategic, merge or JSON patch");
  patch->add_option("args", patchOpts.args, "TYPE NAME | TYPE/NAME");
  addNamespace(patch, patchOpts.nameSpace);
  patch->add_option("-p,--patch", patchOpts.patch, "The patch (JSON or YAML)");
  patch->add_option("--patch-file", patchOpts.patchFile, "A file holding the patch (- = stdin)");
  patch->add_option("--type", patchOpts.type, "strategic, merge or json")->capture_default_str();
  patch
      ->add_option("--dry-run", patchOpts.dryRun,
                   "none, or server|client: svclbd checks the patched object, changing nothing")
      ->expected(0, 1)
      ->default_str("client");

  LabelOptions labelOpts, annotateOpts;
  annotateOpts.annotate = true;
  for (auto [name, o, help] :
       {std::tuple{"label", &labelOpts, "Update the labels on a resource"},
        std::tuple{"annotate", &annotateOpts, "Update the annotations on a resource"}}) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("args", o->args, "TYPE NAME... KEY=VALUE... KEY-... | TYPE/NAME... ...");
    addNamespace(cmd, o->nameSpace);
    cmd->add_flag("--overwrite", o->overwrite, "Allow changing a key that already has a value");
    cmd->add_option("-l,--selector", o->selector,
                    "Label selector: change the objects of the given types it selects");
    cmd->add_flag("--all", o->all, "Change every object of the given types in the namespace");
    cmd->add_option("--dry-run", o->dryRun, "none, or server|client: change nothing")
        ->expected(0, 1)
        ->default_str("client");
  }

  std::string statsOutput;
  auto* stats = app.add_subcommand("stats", "Show per-service, per-backend and drop counters");
  stats->add_option("-o,--output", statsOutput, "Output format: json");

  TraceOptions traceOpts;
  auto* trace = app.add_subcommand(
      "trace", "Show where a flow goes: frontend, backends, the choice, conntrack, drops");
  trace->add_option("args", traceOpts.args, "SRC[:PORT] DST:PORT (IPv6: [ADDR]:PORT)");
  trace->add_option("-p,--protocol", traceOpts.protocol, "TCP or UDP")->capture_default_str();
  trace
      ->add_option("--from", traceOpts.from,
                   "outside (a packet arriving on a node NIC) or node (from this node's pods or "
                   "processes: an externalTrafficPolicy Local Service's node view)")
      ->capture_default_str();
  trace->add_option("-o,--output", traceOpts.output, "Output format: json");

  MonitorOptions monitorOpts;
  auto* monitor =
      app.add_subcommand("monitor", "Stream drop and reject events as they happen (until Ctrl-C)");
  monitor->add_option("--type", monitorOpts.type, "Only these events: drop or reject");
  monitor->add_option("-o,--output", monitorOpts.output,
                      "Output format: json (one object per line, as svclbd sends them)");

  std::string statusOutput;
  auto* status = app.add_subcommand("status", "Show what svclbd has loaded and attached");
  status->add_option("-o,--output", statusOutput, "Output format: json");

  bool versionClient = false;
  auto* version = app.add_subcommand("version", "Print svcctl's and svclbd's versions");
  version->add_flag("--client", versionClient, "svcctl's version only (no daemon needed)");
  auto* apiResources =
      app.add_subcommand("api-resources", "Print the resource types svclbd serves");

  std::vector<const char*> cargv;
  for (const auto& a : argv) cargv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargv.size()), cargv.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, ctx.out, ctx.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, ctx.out, ctx.err);
  } catch (const CLI::ParseError& e) {
    ctx.err << "error: " << e.what() << "\n";
    ctx.err << "See 'svcctl --help' for usage.\n";
    return 1;
  }

  ctx.socketPath = socket;
  if (!timeout.empty()) {
    auto t = parseTimeout(timeout);
    if (!t) {
      ctx.err << fmt::format("error: invalid --request-timeout \"{}\"\n", timeout);
      return 1;
    }
    if (t->count() > 0) ctx.timeout = *t;
  }
  if (apply->parsed()) return runApply(ctx, applyOpts);
  if (get->parsed()) return runGet(ctx, getOpts);
  if (describe->parsed()) return runDescribe(ctx, describeOpts);
  if (del->parsed()) return runDelete(ctx, deleteOpts);
  if (patch->parsed()) return runPatch(ctx, patchOpts);
  if (app.got_subcommand("label")) return runLabel(ctx, labelOpts);
  if (app.got_subcommand("annotate")) return runLabel(ctx, annotateOpts);
  if (stats->parsed()) return runStats(ctx, statsOutput);
  if (status->parsed()) return runStatus(ctx, statusOutput);
  if (trace->parsed()) return runTrace(ctx, traceOpts);
  if (monitor->parsed()) return runMonitor(ctx, monitorOpts);
  if (version->parsed()) return runVersion(ctx, versionClient);
  if (apiResources->parsed()) {
    ctx.out << renderApiResources();
    return 0;
  }
  ctx.out << app.help();
  return 0;
}

}  // namespace svclb::cli
