#include "bench/fakeapi_deployment.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "fmt/format.h"

namespace informerd::bench {

FakeapiDeployment::FakeapiDeployment(const FakeapiRunOptions& options,
                                     const FakeapiDeploymentSpec& spec) {
  const std::string& dir = options.temp_dir;
  std::vector<std::string> fake_args = {options.fakeapi,
                                        "--objects",
                                        std::to_string(options.objects),
                                        "--object-bytes",
                                        std::to_string(options.object_bytes),
                                        "--namespaces",
                                        std::to_string(options.namespaces),
                                        "--events-per-second",
                                        fmt::format("{:.0f}", spec.events_per_second),
                                        "--events-on-signal"};
  fake_args.insert(fake_args.end(), spec.fake_args.begin(), spec.fake_args.end());
  fake_args.push_back("--resource");
  fake_args.insert(fake_args.end(), spec.resources.begin(), spec.resources.end());
  fake_ = std::make_unique<Process>(fake_args, dir + "/fakeapi-" + spec.tag + ".log",
                                    /*stdout_pipe=*/true, options.cpus_fakeapi);
  fake_port_ = std::atoi(fake_->ReadLine().c_str());
  if (fake_port_ <= 0) Die("fakeapi_server printed no port; see its log in " + dir);

  const std::string kubeconfig = dir + "/kubeconfig-" + spec.tag;
  WriteFile(kubeconfig, fmt::format("apiVersion: v1\nkind: Config\n"
                                    "clusters:\n- name: fake\n  cluster:\n"
                                    "    server: http://127.0.0.1:{}\n"
                                    "users:\n- name: bench\n  user:\n    token: t0ken\n"
                                    "contexts:\n- name: fake\n  context:\n    cluster: fake\n"
                                    "    user: bench\ncurrent-context: fake\n",
                                    fake_port_));
  std::string config_text = "resources:\n";
  for (const std::string& resource : spec.resources) {
    config_text += "  - resource: " + resource + "\n";
  }
  const std::string config = dir + "/config-" + spec.tag + ".yaml";
  WriteFile(config, config_text);

  const std::string log = dir + "/informerd-" + spec.tag + ".log";
  std::vector<std::string> args = {
      options.informerd, "--config",       config,        "--kubeconfig",
      kubeconfig,        "--listen",       "127.0.0.1:0", "--metrics-listen",
      "127.0.0.1:0",     "--probe-listen", "none"};
  args.insert(args.end(), options.daemon_args.begin(), options.daemon_args.end());
  args.insert(args.end(), spec.daemon_args.begin(), spec.daemon_args.end());
  daemon_ = std::make_unique<Process>(args, log, /*stdout_pipe=*/false, options.cpus_informerd);
  grpc_address_ = LoggedAddress(log, "gRPC listening on ");
  metrics_port_ = PortOf(LoggedAddress(log, "metrics listening on "));

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!spec.synced(metrics_port_)) {
    if (std::chrono::steady_clock::now() > deadline) {
      Die("informerd did not sync; its log: " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Synced and watching: the events start now, so that none wait for the watch to begin.
  kill(fake_->pid(), SIGUSR2);
}

}  // namespace informerd::bench
