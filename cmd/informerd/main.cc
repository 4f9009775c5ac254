// informerd: parses flags and hands over to daemon::RunDaemon. Nothing else lives here.
#include <cstdio>

#include "daemon/app.h"
#include "daemon/options.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  auto options = informerd::daemon::ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "informerd: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  switch (options->action) {
    case informerd::daemon::Options::Action::kPrintHelp:
      std::fputs(options->help_text.c_str(), stdout);
      return 0;
    case informerd::daemon::Options::Action::kPrintVersion:
      std::printf("informerd %s\n", informerd::kVersion);
      return 0;
    case informerd::daemon::Options::Action::kRun:
      break;
  }
  const absl::Status status = informerd::daemon::RunDaemon(*options);
  if (!status.ok()) {
    std::fprintf(stderr, "informerd: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
