// `svcctl trace SRC[:PORT] DST:PORT [--protocol TCP|UDP]`: where a flow goes,
// as the daemon computes it from the live maps (loader/trace.cpp).
#include <fmt/format.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "cli/table.h"

namespace svclb::cli {
namespace {

std::string yesNo(const Json& j) { return j.is_boolean() && j.get<bool>() ? "yes" : "no"; }

std::string backendText(const Json& b) {
  if (!b.is_object()) return "-";
  std::string addr = str(at(b, {"address"}));
  return fmt::format("{} (backend {})", addr.empty() ? "?" : addr, str(at(b, {"backendId"})));
}

}  // namespace

std::string renderTrace(const Json& t) {
  std::string kv;
  const Json& flow = at(t, {"flow"});
  kv += fmt::format("Flow:\t{} -> {}/{}\n", str(at(flow, {"src"})), str(at(flow, {"dst"})),
                    str(at(flow, {"protocol"})));
  const Json& fe = at(t, {"frontend"});
  if (!fe.is_object()) {
    kv += "Service:\t<none>\n";
  } else {
    std::string who = str(at(fe, {"name"}));
    who = who.empty() ? "<unknown>"
                      : fmt::format("{}/{} (port {})", str(at(fe, {"namespace"})), who,
                                    str(at(fe, {"port"}), "<unset>"));
    kv += fmt::format("Service:\t{}, svc id {}\n", who, str(at(fe, {"svcId"})));
    std::string algo = str(at(fe, {"algorithm"}));
    if (yesNo(at(fe, {"affinity"})) == "yes")
      algo +=
          fmt::format(", sessionAffinity ClientIP ({}s)", str(at(fe, {"affinityTimeoutSeconds"})));
    kv += "Selection:\t" + algo + "\n";
    std::vector<std::string> pol;
    if (yesNo(at(fe, {"external"})) == "yes") pol.push_back("node-facing");
    if (yesNo(at(fe, {"localOnly"})) == "yes") pol.push_back("externalTrafficPolicy Local");
    if (str(at(fe, {"view"})) == "node")
      pol.push_back("this node's view (its pods and processes reach every endpoint)");
    if (yesNo(at(fe, {"noLocalEndpoints"})) == "yes") pol.push_back("no endpoint on this node");
    if (yesNo(at(fe, {"sourceRanges"})) == "yes") pol.push_back("loadBalancerSourceRanges");
    kv += "Policy:\t" +
          (pol.empty() ? std::string("<none>") : fmt::format("{}", fmt::join(pol, ", "))) + "\n";
  }
  const Json& ct = at(t, {"conntrack"});
  if (ct.is_object()) {
    kv += fmt::format(
        "Conntrack:\t{} entry in {} -> {} (backend {}), idle {:.1f}s, {}{}{}{}\n",
        str(at(ct, {"direction"})), str(at(ct, {"map"})), str(at(ct, {"natAddress"})),
        str(at(ct, {"backendId"})),
        at(ct, {"idleSeconds"}).is_number() ? at(ct, {"idleSeconds"}).get<double>() : 0.0,
        yesNo(at(ct, {"alive"})) == "yes" ? "alive" : "expired",
        yesNo(at(ct, {"closing"})) == "yes" ? ", closing" : "",
        yesNo(at(ct, {"singleEntry"})) == "yes" ? ", single entry (no reply entry)" : "",
        at(ct, {"snatAddress"}).is_string()
            ? fmt::format(", {} via {}", yesNo(at(ct, {"hairpin"})) == "yes" ? "hairpin" : "SNAT",
                          str(at(ct, {"snatAddress"})))
            : std::string());
  } else {
    // "IP:PORT" or "[IPv6]:PORT" name a source port; "IP", "IPv6" do not.
    const std::string src = str(at(flow, {"src"}));
    const bool port = src.rfind("]:") != std::string::npos ||
                      (src.find(':') != std::string::npos && src.find(':') == src.rfind(':'));
    kv += fmt::format("Conntrack:\t{}\n", port ? "<no entry>" : "<no source port given>");
  }
  const Json& v = at(t, {"verdict"});
  std::string action = str(at(v, {"action"}));
  std::string verdict;
  if (action == "dnat") {
    const Json& b = at(v, {"backend"});
    verdict = b.is_object() ? "DNAT to " + backendText(b) : "DNAT to one of the backends";
  } else if (action == "drop") {
    verdict = "DROP (" + str(at(v, {"dropReason"})) + ")";
  } else if (action == "reject") {
    verdict = "REJECT (" + str(at(v, {"dropReason"})) + ")";
  } else {
    verdict = "PASS (untouched)";
  }
  kv += fmt::format("Verdict:\t{}\n", verdict);
  kv += fmt::format("Why:\t{}\n", str(at(v, {"reason"})));
  std::string out = tabwrite(kv, 0, 2);
  const Json& bs = at(t, {"backends"});
  if (fe.is_object()) {
    if (!bs.is_array() || bs.empty()) {
      out += "Backends: <none>\n";
    } else {
      out += "Backends:\n";
      Table tb({"SLOT", "BACKEND-ID", "ADDRESS", "STATE", "NEW-FLOWS"});
      for (const auto& b : bs)
        tb.addRow({str(at(b, {"slot"})), str(at(b, {"backendId"})), str(at(b, {"address"})),
                   str(at(b, {"state"})), yesNo(at(b, {"takesNewFlows"}))});
      out += tb.render("  ");
    }
  }
  return out;
}

int runTrace(Context& ctx, const TraceOptions& opts) {
  if (!reportOutputOk(ctx, opts.output)) return 1;
  if (opts.args.size() != 2) {
    ctx.err << "error: expected SRC[:PORT] DST:PORT (e.g. svcctl trace 10.244.1.20:40000 "
               "10.96.0.10:80)\n";
    return 1;
  }
  return runReport(ctx, opts.output,
                   {{"op", "trace"},
                    {"src", opts.args[0]},
                    {"dst", opts.args[1]},
                    {"protocol", opts.protocol},
                    {"from", opts.from}},
                   renderTrace);
}

}  // namespace svclb::cli
