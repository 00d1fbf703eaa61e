// Argument handling shared by several subcommands.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_util.h"
#include "model/model.h"

namespace svclb::cli {

std::string goErrno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

namespace {

bool readFile(const std::string& path, Context& ctx, std::string& text) {
  // read(2) in large chunks (an istreambuf_iterator reads byte by byte).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ctx.err << fmt::format("error: open {}: {}\n", path, goErrno(errno ? errno : EIO));
    return false;
  }
  struct stat st {};
  text.clear();
  if (::fstat(fd, &st) == 0 && st.st_size > 0) text.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ctx.err << fmt::format("error: read {}: {}\n", path, goErrno(EIO));
      return false;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // svclbd refuses requests over 16 MiB; say so before sending one.
  constexpr size_t kMaxManifest = 15u << 20;
  if (text.size() > kMaxManifest) {
    ctx.err << fmt::format(
        "error: {} is {} MiB; svclbd accepts manifests up to {} MiB: split it into smaller files\n",
        path, text.size() >> 20, kMaxManifest >> 20);
    return false;
  }
  return true;
}

}  // namespace

void warnOnce(Context& ctx, const std::string& line) {
  if (!ctx.warned.insert(line).second) return;
  ctx.out.flush();  // after the lines printed so far, as kubectl's unbuffered writes
  ctx.err << line << "\n";
}

namespace {

bool parseTargetList(const std::vector<std::string>& args, Context& ctx,
                     std::vector<Target>& targets) {
  targets.clear();
  if (args.empty()) {
    ctx.err << "error: you must specify the type of resource: svc, ep or endpointslice\n";
    return false;
  }
  auto unknown = [&](const std::string& t) {
    ctx.err << fmt::format("error: the server doesn't have a resource type \"{}\"\n", t);
    return false;
  };
  if (args[0].find('/') != std::string::npos) {
    // TYPE/NAME [TYPE/NAME...]: each run of one type is one target.
    for (const auto& a : args) {
      size_t slash = a.find('/');
      std::string name = slash == std::string::npos ? "" : a.substr(slash + 1);
      if (slash == std::string::npos || name.empty() || name.find('/') != std::string::npos) {
        ctx.err << fmt::format(
            "error: arguments in resource/name form must have a single resource and name: "
            "\"{}\"\n",
            a);
        return false;
      }
      auto type = resolveResource(a.substr(0, slash));
      if (!type) return unknown(a.substr(0, slash));
      if (targets.empty() || targets.back().type.kind != type->kind)
        targets.push_back(Target{*type, {}});
      targets.back().names.push_back(name);
    }
    return true;
  }
  // TYPE[,TYPE...] [NAME...]; kubectl's "all" category holds Services here.
  std::vector<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i].find('/') != std::string::npos) {
      ctx.err
          << "error: there is no need to specify a resource type as a separate argument when "
             "passing arguments in resource/name form (e.g. 'svcctl get resource/<resource_name>' "
             "instead of 'svcctl get resource resource/<resource_name>'\n";
      return false;
    }
    names.push_back(args[i]);
  }
  size_t pos = 0;
  const std::string& list = args[0];
  while (true) {
    size_t comma = list.find(',', pos);
    std::string t = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto type = t == "all" ? resolveResource("services") : resolveResource(t);
    if (!type) return unknown(t);
    bool seen = std::any_of(targets.begin(), targets.end(),
                            [&](const Target& x) { return x.type.kind == type->kind; });
    if (!seen) targets.push_back(Target{*type, names});
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

}  // namespace

bool parseTargets(const std::vector<std::string>& args, Context& ctx,
                  std::vector<Target>& targets) {
  return parseTargetList(args, ctx, targets);
}

bool selectedNames(Context& ctx, const std::string& kind, const std::string& ns,
                   const Selector& selector, std::vector<std::string>& names) {
  auto resp = callDaemon(
      ctx.socketPath,
      {{"op", "get"}, {"kind", kind}, {"namespace", ns}, {"allNamespaces", false}, {"name", ""}},
      ctx.timeout);
  if (!resp) {
    ctx.err << resp.error().message << "\n";
    return false;
  }
  const Json& items = at(*resp, {"items"});
  if (items.is_array())
    for (const auto& item : items)
      if (selector.matches(item)) names.push_back(str(at(item, {"metadata", "name"})));
  return true;
}

void warnDeprecatedKinds(Context& ctx, const std::vector<Target>& targets) {
  if (std::any_of(targets.begin(), targets.end(),
                  [](const Target& t) { return t.type.kind == "Endpoints"; }))
    warnOnce(ctx, std::string("Warning: ") + kEndpointsDeprecation);
}

std::optional<std::string> dryRunSuffix(const std::string& value, Context& ctx) {
  if (value == "none") return std::string();
  if (value == "server") return std::string(" (server dry run)");
  if (value == "client") return std::string(" (dry run)");
  ctx.err << fmt::format(
      "error: Invalid dry-run value ({}). Must be \"none\", \"server\", or \"client\".\n", value);
  return std::nullopt;
}

std::optional<Selector> parseSelector(const std::string& text, const std::vector<Target>& targets,
                                      Context& ctx) {
  auto selector = Selector::parse(text);
  if (!selector) {
    ctx.err << "error: " << selector.error().message << "\n";
    return std::nullopt;
  }
  if (!targets.empty() && !targets.front().names.empty() && !selector->empty()) {
    ctx.err << "error: name cannot be provided when a selector is specified\n";
    return std::nullopt;
  }
  return std::move(*selector);
}

bool readManifests(const std::vector<std::string>& files, Context& ctx,
                   std::vector<Manifest>& manifests) {
  namespace fs = std::filesystem;
  for (const auto& file : files) {
    if (file == "-") {
      std::string text((std::istreambuf_iterator<char>(ctx.in)), std::istreambuf_iterator<char>());
      manifests.push_back({"-", std::move(text)});
      continue;
    }
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        ctx.err << fmt::format("error: the path \"{}\" does not exist\n", file);
      } else {
        ctx.err << fmt::format("error: stat {}: {}\n", file, goErrno(errno));
      }
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      // kubectl -f DIR: the directory's .json/.yaml/.yml files, in name order.
      std::vector<std::string> paths;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(file, ec)) {
        std::string ext = entry.path().extension().string();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
          paths.push_back(entry.path().string());
      }
      if (ec) {
        ctx.err << fmt::format("error: open {}: {}\n", file, goErrno(ec.value()));
        return false;
      }
      if (paths.empty()) {
        ctx.err << fmt::format(
            "error: error reading [{}]: recognized file extensions are [.json .yaml .yml]\n", file);
        return false;
      }
      std::sort(paths.begin(), paths.end());
      for (const auto& p : paths) {
        std::string text;
        if (!readFile(p, ctx, text)) return false;
        manifests.push_back({p, std::move(text)});
      }
      continue;
    }
    std::string text;
    if (!readFile(file, ctx, text)) return false;
    manifests.push_back({file, std::move(text)});
  }
  return true;
}

bool reportOutputOk(Context& ctx, const std::string& output) {
  if (output.empty() || output == "json") return true;
  ctx.err << fmt::format(
      "error: unable to match a printer suitable for the output format \"{}\", allowed "
      "formats are: json\n",
      output);
  return false;
}

int runReport(Context& ctx, const std::string& output, const Json& request,
              std::string (*render)(const Json&)) {
  if (!reportOutputOk(ctx, output)) return 1;
  auto resp = callDaemon(ctx.socketPath, request, ctx.timeout);
  if (!resp) {
    ctx.err << resp.error().message << "\n";
    return 1;
  }
  if (output == "json") {
    Json copy = *resp;
    copy.erase("ok");
    ctx.out << toJsonText(copy);
  } else {
    ctx.out << render(*resp);
  }
  return 0;
}

}  // namespace svclb::cli
