// YAML reader cost on the apply path: a generated manifest of N Services
// (bench/compare/gen.py's shape: Service + Endpoints per Service, E
// addresses each; --slices adds an EndpointSlice per Service) read into
// JSON documents by the YAML reader (common/yaml.h), then parseManifests
// whole (reading + decoding into Objects, on its threads). Rounds alternate;
// medians in ms of wall time and of the process's CPU time (all threads:
// steadier than wall time on a loaded machine). (Until the commit that removed them it also timed
// the hand-written FastYaml and yaml-cpp: bench/results/2026-12-04-vm-yaml-reader.md.)
//
//   svclb-yaml-reader [--services N] [--endpoints E] [--slices] [--rounds R] [--file PATH]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/yaml.h"
#include "model/model.h"

namespace {

std::string ip(uint32_t v) {
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
}

std::string manifest(int n, int e, bool slices) {
  std::string s;
  const uint32_t vip0 = 10u << 24 | 96u << 16 | 1;   // 10.96.0.1
  const uint32_t ep0 = 10u << 24 | 251u << 16 | 11;  // 10.251.0.11
  for (int i = 0; i < n; ++i) {
    s += fmt::format(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{}\n  namespace: bench\n"
        "spec:\n  type: ClusterIP\n  clusterIP: {}\n  ports:\n"
        "  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: 5353\n",
        i, ip(vip0 + static_cast<uint32_t>(i)));
    s += fmt::format(
        "---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s{}\n  namespace: bench\n"
        "subsets:\n- addresses:\n",
        i);
    for (int k = 0; k < e; ++k) s += "  - ip: " + ip(ep0 + static_cast<uint32_t>(k)) + "\n";
    s += "  ports:\n  - name: dns\n    port: 5353\n    protocol: UDP\n";
    if (!slices) continue;
    s += fmt::format(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s{}-abc\n"
        "  namespace: bench\n  labels:\n    kubernetes.io/service-name: s{}\naddressType: IPv4\n"
        "endpoints:\n",
        i, i);
    for (int k = 0; k < e; ++k)
      s += "- addresses:\n  - " + ip(ep0 + static_cast<uint32_t>(k)) +
           "\n  conditions:\n    ready: true\n";
    s += "ports:\n- name: dns\n  port: 5353\n  protocol: UDP\n";
  }
  return s;
}

double ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double cpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 10000, e = 2, rounds = 5;
  bool slices = false;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        fmt::print(stderr, "svclb-yaml-reader: {} needs a value\n", a);
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--services")
      n = std::stoi(next());
    else if (a == "--endpoints")
      e = std::stoi(next());
    else if (a == "--rounds")
      rounds = std::stoi(next());
    else if (a == "--slices")
      slices = true;
    else if (a == "--file")
      file = next();
    else {
      fmt::print(stderr,
                 "usage: svclb-yaml-reader [--services N] [--endpoints E] [--slices] "
                 "[--rounds R] [--file PATH]\n");
      return 2;
    }
  }
  std::string text;
  if (!file.empty()) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    text = manifest(n, e, slices);
  }

  using nlohmann::json;
  // Each reader: text -> the documents as JSON (kept, as a reader that
  // hands them on would), returns how many.
  std::vector<std::pair<std::string, std::function<size_t()>>> readers = {
      {"libyaml events -> JSON",
       [&] {
         std::vector<json> docs;
         auto err = svclb::yaml::readYaml(text, [&](json&& d) { docs.push_back(std::move(d)); });
         if (err) fmt::print(stderr, "libyaml: {}\n", *err);
         return docs.size();
       }},
      {"parseManifests (read + decode, threads)",
       [&] {
         auto objs = svclb::parseManifests(text, "bench.yaml");
         if (!objs.ok()) fmt::print(stderr, "parseManifests: {}\n", objs.error().message);
         return objs.ok() ? objs->size() : 0;
       }},
  };
  std::map<std::string, std::vector<double>> times, cpu;
  std::map<std::string, size_t> counts;
  for (int r = 0; r < rounds; ++r)
    for (auto& [name, fn] : readers) {
      const double c0 = cpuMs();
      auto t0 = std::chrono::steady_clock::now();
      counts[name] = fn();
      times[name].push_back(ms(std::chrono::steady_clock::now() - t0));
      cpu[name].push_back(cpuMs() - c0);
    }
  fmt::print("manifest: {} bytes, {} Services x {} endpoints{}, {} rounds\n", text.size(), n, e,
             slices ? " (+ EndpointSlices)" : "", rounds);
  for (auto& [name, fn] : readers) {
    auto v = times[name], c = cpu[name];
    std::sort(v.begin(), v.end());
    std::sort(c.begin(), c.end());
    fmt::print(
        "{:<42} wall median {:7.1f} ms (min {:7.1f})  cpu median {:7.1f} ms (min {:7.1f})  {} "
        "documents/objects\n",
        name, v[v.size() / 2], v.front(), c[c.size() / 2], c.front(), counts[name]);
  }
  return 0;
}
