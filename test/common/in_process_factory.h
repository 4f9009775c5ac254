// InProcessFactory: SharedInformerFactory (daemon/informers/shared_informer_factory.*) wired as
// daemon/app.cc wires it (Discovery with its default options, a ResourceRegistry, the factory's
// options as given), but upstream is a ScriptedListWatchClient, every timer is a FakeTimers timer
// on a FakeClock and randomness is scripted, and the test runs the io_context itself. Discovery,
// the factory and every informer it starts therefore do exactly what the test scripts, when the
// test says, without sockets, threads or sleeps; timer durations are read, not waited for.
//
// Also the JSON the tests script: discovery documents with and without the example.com/v1
// "widgets" CRD, pods, pod lists and watch event lines.
//
// Single-threaded, like the scripted client and the fake timers.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/reflector.h"
#include "daemon/config.h"
#include "daemon/informers/resource_registry.h"
#include "daemon/informers/shared_informer_factory.h"
#include "daemon/kube/discovery.h"
#include "test/common/fake_clock.h"
#include "test/common/fake_random_source.h"
#include "test/common/fake_timers.h"
#include "test/common/scripted_list_watch_client.h"

namespace informerd::test {

// `/apis`: no group, or example.com/v1 (the widgets CRD) when `with_widgets`.
std::string ApisDocument(bool with_widgets);
// A configuration entry naming `resource`, everything else left at its default.
daemon::ResourceConfig ConfigEntry(const std::string& resource);
// A pod in namespace "ns", uid "uid-NAME".
std::string PodJson(const std::string& name, const std::string& resource_version);
// A LIST page: the list's resourceVersion, the continue token ("" on the last page), the items.
std::string PodListJson(const std::string& resource_version, const std::string& continue_token,
                        const std::vector<std::string>& items);
// An empty WidgetList at `resource_version`.
std::string WidgetListJson(const std::string& resource_version);
// One watch event line, newline included.
std::string WatchEventLine(const std::string& type, const std::string& object);

class InProcessFactory {
 public:
  // `logger` receives the factory's and the informers' lines (nullptr: nowhere). options.registry,
  // .timers and .random are set to this object's.
  InProcessFactory(std::vector<daemon::ResourceConfig> entries,
                   daemon::SharedInformerFactoryOptions options,
                   daemon::DiscoveryOptions discovery_options = {},
                   std::shared_ptr<spdlog::logger> logger = nullptr);
  // Stops the factory and runs what that posted.
  ~InProcessFactory();
  InProcessFactory(const InProcessFactory&) = delete;
  InProcessFactory& operator=(const InProcessFactory&) = delete;

  // Runs what is ready on the io_context.
  void Run();
  // Moves the fake clock (firing the timers now due) and runs what that set off.
  void Advance(std::chrono::milliseconds by);
  // Answers a discovery fetch in progress: /api, /apis, then /api/v1 (and the widgets CRD's
  // group version when `with_widgets`).
  void ServeDiscovery(bool with_widgets);
  // The durations of the timers armed and not yet due, earliest deadline first.
  std::vector<std::chrono::milliseconds> Armed() const;

  boost::asio::io_context io_;
  ScriptedListWatchClient client_{io_};
  core::FakeClock clock_;
  FakeTimers timers_{clock_, client_.strand()};
  // 0.5 unless scripted: a first backoff waits 1200 ms, watches ask for timeoutSeconds=450.
  core::ScriptedRandomSource random_;
  std::unique_ptr<daemon::Discovery> discovery_;
  daemon::ResourceRegistry registry_;
  std::shared_ptr<daemon::SharedInformerFactory> factory_;
};

}  // namespace informerd::test
