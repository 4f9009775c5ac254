// libFuzzer target: the kubeconfig parser (daemon/kube/auth/kubeconfig.h: ParseKubeconfig).
//
// Input: the YAML text of one kubeconfig file. Only parsing is fuzzed: resolving a context
// (RestConfigFromKubeconfig) reads the files the kubeconfig names and may start an exec plugin,
// which a fuzzer must not do. Checks, for a file that parses: it is listed as the one file read,
// and every cluster, user and context says it came from that file, with the field it was at. A
// parse error is InvalidArgument (yaml-cpp's exceptions and base64 errors never escape).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/kube/auth/kubeconfig.h"
#include "test/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "/nonexistent/fuzz/kubeconfig";
  absl::StatusOr<informerd::daemon::Kubeconfig> config =
      informerd::daemon::ParseKubeconfig(text, path);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
               config.status().ToString());
    return 0;
  }
  FUZZ_CHECK(config->files.size() == 1 && config->files[0] == path, "");
  auto check_origin = [&](const std::string& name,
                          const informerd::daemon::KubeconfigOrigin& origin) {
    FUZZ_CHECK(origin.file == path, name + ": from " + origin.file);
    FUZZ_CHECK(!origin.field.empty(), name + ": no field");
  };
  for (const auto& [name, cluster] : config->clusters) check_origin(name, cluster.origin);
  for (const auto& [name, user] : config->users) check_origin(name, user.origin);
  for (const auto& [name, context] : config->contexts) check_origin(name, context.origin);
  return 0;
}
