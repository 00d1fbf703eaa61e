// svcctl: kubectl-like client for svclbd. All logic lives in svcctl_lib.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  svclb::cli::Context ctx{.socketPath = "",
                          .now = std::chrono::system_clock::now(),
                          .in = std::cin,
                          .out = std::cout,
                          .err = std::cerr};
  return svclb::cli::runSvcctl(args, ctx);
}
