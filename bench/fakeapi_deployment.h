// FakeapiDeployment: one fakeapi_server in load mode and one informerd against it, as the
// benchmarks that measure informerd alone run them (fanout_bench, overload_bench). It starts the
// fake, writes the kubeconfig and configuration for it, starts informerd, waits until the
// caller's `synced` says every resource is cached, and only then tells the fake to start its
// events (SIGUSR2, the fake's --events-on-signal), so that none is sent before the watch began.
// Both processes are stopped when it is destroyed. Dies (bench::Die) on any failure: a benchmark
// has nothing to measure without its deployment. Main thread only (see bench::Process).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/flags.h"
#include "bench/process_support.h"

namespace informerd::bench {

struct FakeapiDeploymentSpec {
  // Resources the fake serves and informerd's configuration lists, as "pods", "configmaps"...
  std::vector<std::string> resources = {"pods"};
  // The fake's load: events per second in all.
  double events_per_second = 0;
  // Further flags of the fake (after --objects, --object-bytes, --namespaces, --events-per-second
  // from the run options) and of informerd (after the run options' --daemon-arg ones).
  std::vector<std::string> fake_args;
  std::vector<std::string> daemon_args;
  // Names the logs and files of this deployment in the run's temporary directory.
  std::string tag;
  // Whether informerd has synced, given its metrics port; polled every 50 ms for up to 300 s.
  std::function<bool(int metrics_port)> synced;
};

class FakeapiDeployment {
 public:
  FakeapiDeployment(const FakeapiRunOptions& options, const FakeapiDeploymentSpec& spec);
  FakeapiDeployment(const FakeapiDeployment&) = delete;
  FakeapiDeployment& operator=(const FakeapiDeployment&) = delete;

  const std::string& grpc_address() const { return grpc_address_; }
  int metrics_port() const { return metrics_port_; }
  int fake_port() const { return fake_port_; }
  pid_t daemon_pid() const { return daemon_->pid(); }
  pid_t fake_pid() const { return fake_->pid(); }

 private:
  std::unique_ptr<Process> fake_;
  std::unique_ptr<Process> daemon_;
  int fake_port_ = 0;
  int metrics_port_ = 0;
  std::string grpc_address_;
};

}  // namespace informerd::bench
