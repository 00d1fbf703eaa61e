// HARD RULE of this project: generated traffic stays inside network
// namespaces we created. Shared by every bench tool that sends packets.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <string>

namespace svclb::bench {

// True when the calling thread's netns is one of the named namespaces under
// /run/netns and not the root one (/proc/1/ns/net, when readable); else
// false with the reason in *why.
inline bool inCreatedNetns(std::string* why) {
  struct stat self {
  }, root{};
  if (stat("/proc/self/ns/net", &self) != 0) return *why = "cannot stat /proc/self/ns/net", false;
  if (stat("/proc/1/ns/net", &root) == 0 && root.st_ino == self.st_ino &&
      root.st_dev == self.st_dev)
    return *why = "this is the root network namespace", false;
  if (DIR* d = opendir("/run/netns")) {
    while (dirent* e = readdir(d)) {
      struct stat st {};
      std::string p = std::string("/run/netns/") + e->d_name;
      if (e->d_name[0] != '.' && stat(p.c_str(), &st) == 0 && st.st_ino == self.st_ino &&
          st.st_dev == self.st_dev) {
        closedir(d);
        return true;
      }
    }
    closedir(d);
  }
  return *why = "not inside a namespace listed under /run/netns", false;
}

}  // namespace svclb::bench
