// svcctl's subcommands. Each takes the parsed options, talks to svclbd and
// writes kubectl-shaped output; the return value is the process exit code.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <set>
#include <string>
#include <vector>

#include "cli/format.h"
#include "cli/selector.h"

namespace svclb::cli {

struct Context {
  std::string socketPath;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  TimePoint now;  // for AGE; tests pin it
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // The warnings printed so far: each once per command (kubectl
  // deduplicates the API server's warnings the same way).
  std::set<std::string> warned{};
};
// Go's text of an errno ("permission denied": strerror, lower-case first),
// as kubectl's file errors print it ("open x: permission denied").
std::string goErrno(int err);
// "Warning: ..." lines to ctx.err, each once per command.
void warnOnce(Context& ctx, const std::string& line);

struct ApplyOptions {
  std::vector<std::string> files;  // "-" = stdin; directories expand to *.yaml|*.yml|*.json
  bool strict = false;    // refuse a manifest with objects of other kinds (else skip them, warned)
  std::string nameSpace;  // -n: the objects' namespace ("" = the manifest's, else default)
  std::string dryRun = "none";  // --dry-run: none | server | client (both checked by svclbd)
};
int runApply(Context& ctx, const ApplyOptions& opts);
void printSkipped(Context& ctx, const Json& resp);  // a reply's "skipped" lines, to ctx.err
// apply's and delete's request loop: sends each request line; a reply is
// printSkipped, then given to `onReply` (false: this one failed). A request
// the daemon refused is printed and the rest go on; an unreachable daemon
// stops at once. 0 when every request succeeded, else 1.
// `ignoreRefusal(message)` true: that refusal is no error and not printed
// (delete --ignore-not-found).
int sendChanges(Context& ctx, const std::vector<std::string>& requests,
                const std::function<bool(const Json&)>& onReply,
                const std::function<bool(const std::string&)>& ignoreRefusal = {});

struct GetOptions {
  std::vector<std::string> args;  // RESOURCE [NAME...] or RESOURCE/NAME
  std::string nameSpace = "default";
  bool allNamespaces = false;
  std::string output;
  std::string selector;  // -l: label selector (cli/selector.h)
  std::string sortBy;    // --sort-by: a JSONPath expression
  bool watch = false;    // -w: rows for objects that change, until interrupted
  std::chrono::milliseconds watchInterval{1000};  // how often -w reads the list again
  bool showLabels = false;
  bool noHeaders = false;
};
int runGet(Context& ctx, const GetOptions& opts);

struct DescribeOptions {
  std::vector<std::string> args;  // RESOURCE NAME... or RESOURCE/NAME
  std::string nameSpace = "default";
  std::string selector;  // -l
};
int runDescribe(Context& ctx, const DescribeOptions& opts);

struct DeleteOptions {
  std::vector<std::string> args;
  std::vector<std::string> files;
  std::string nameSpace;        // -n ("" = default; with -f: the manifest's, else default)
  bool strict = false;          // as ApplyOptions::strict, for -f
  bool ignoreNotFound = false;  // --ignore-not-found: a missing object is no error
  std::string selector;         // -l: delete the objects of the types it selects
  bool all = false;             // --all: every object of the types in the namespace
  std::string dryRun = "none";  // --dry-run, as ApplyOptions
};
// --dry-run's value → the suffix of each result line ("" = a real change,
// " (dry run)", " (server dry run)"); nullopt after kubectl's error.
std::optional<std::string> dryRunSuffix(const std::string& value, Context& ctx);
int runDelete(Context& ctx, const DeleteOptions& opts);

// `svcctl patch TYPE NAME (-p PATCH | --patch-file FILE) [--type
// strategic|merge|json]`: svclbd applies the patch to the stored object
// (model/patch.h) as one change; "service/web patched", "... (no change)".
struct PatchOptions {
  std::vector<std::string> args;  // TYPE NAME... | TYPE/NAME...
  std::string nameSpace = "default";
  std::string patch;      // -p
  std::string patchFile;  // --patch-file ("-" = stdin)
  std::string type = "strategic";
  std::string dryRun = "none";
};
int runPatch(Context& ctx, const PatchOptions& opts);

// `svcctl label|annotate TYPE NAME... KEY=VALUE... KEY-... [--overwrite]`:
// kubectl's checks (--overwrite, a key both set and removed), then a merge
// patch of metadata.labels / metadata.annotations per object.
struct LabelOptions {
  std::vector<std::string> args;  // resources and changes, as kubectl takes them
  std::string nameSpace = "default";
  bool overwrite = false;
  std::string dryRun = "none";
  bool annotate = false;  // annotate instead of label
  std::string selector;   // -l: the objects of the named types it selects
  bool all = false;       // --all: every object of the named types
};
int runLabel(Context& ctx, const LabelOptions& opts);

// `svcctl stats`, `status` and `trace`: send `request` to the daemon, print
// the reply with `render`, or as JSON (-o json).
int runReport(Context& ctx, const std::string& output, const Json& request,
              std::string (*render)(const Json&));
// False (and kubectl's message on ctx.err) for an -o other than json.
bool reportOutputOk(Context& ctx, const std::string& output);
int runStats(Context& ctx, const std::string& output);

// `svcctl trace SRC[:PORT] DST:PORT [-p TCP|UDP] [-o json]`.
struct TraceOptions {
  std::vector<std::string> args;
  std::string protocol = "TCP";
  std::string from = "outside";
  std::string output;
};
int runTrace(Context& ctx, const TraceOptions& opts);
int runStatus(Context& ctx, const std::string& output);
// `svcctl version [--client]`: svcctl's version and svclbd's (status).
int runVersion(Context& ctx, bool clientOnly);
// `svcctl api-resources`: the kinds svclbd serves, as kubectl lists them.
std::string renderApiResources();

// `svcctl monitor [--type drop|reject] [-o json]`: streams events until
// Ctrl-C / SIGTERM / a closed output; 1 if the daemon cannot be reached or
// ends the stream.
struct MonitorOptions {
  std::string type;  // "" (both), "drop" or "reject"
  std::string output;
};
int runMonitor(Context& ctx, const MonitorOptions& opts);

// Whole command line (argv[0] included) → exit code. main() is just this.
int runSvcctl(const std::vector<std::string>& argv, Context& ctx);

// Shared helpers (common.cpp).
// kubectl's resource arguments → one Target per resource type, in order:
//   TYPE[,TYPE...] [NAME...]  every type with the same names (none: list);
//   TYPE/NAME...              a run of one type's names per target.
// Prints kubectl's usage error and returns false on a bad argument.
struct Target {
  ResourceType type;
  std::vector<std::string> names;
};
bool parseTargets(const std::vector<std::string>& args, Context& ctx, std::vector<Target>& targets);
// The names of the objects of `kind` in namespace `ns` that `selector`
// selects (the daemon's list, filtered here), appended to `names`; false
// (the error printed) when the daemon did not answer.
bool selectedNames(Context& ctx, const std::string& kind, const std::string& ns,
                   const Selector& selector, std::vector<std::string>& names);
// The API server's warning on any request for a deprecated kind (v1
// Endpoints), once: called where the command's first request goes out,
// after its own checks (kubectl's client-side errors come without it).
void warnDeprecatedKinds(Context& ctx, const std::vector<Target>& targets);
// -l SELECTOR for `targets` (cli/selector.h); prints kubectl's error (a bad
// selector, or names given with one) and returns nullopt.
std::optional<Selector> parseSelector(const std::string& text, const std::vector<Target>& targets,
                                      Context& ctx);
// Reads FILE ("-" = ctx.in) into (source, text) pairs; directories expand.
struct Manifest {
  std::string source;
  std::string text;
};
bool readManifests(const std::vector<std::string>& files, Context& ctx,
                   std::vector<Manifest>& manifests);

}  // namespace svclb::cli
