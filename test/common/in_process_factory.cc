#include "test/common/in_process_factory.h"

#include <utility>

#include "fmt/format.h"
#include "spdlog/sinks/null_sink.h"
#include "test/common/discovery_documents.h"

namespace informerd::test {

std::string ApisDocument(bool with_widgets) {
  return std::string(R"({"kind":"APIGroupList","apiVersion":"v1","groups":[)") +
         (with_widgets ? R"({"name":"example.com","versions":[{"groupVersion":"example.com/v1",
             "version":"v1"}],"preferredVersion":{"groupVersion":"example.com/v1","version":"v1"}})"
                       : "") +
         "]}";
}

daemon::ResourceConfig ConfigEntry(const std::string& resource) {
  daemon::ResourceConfig config;
  config.resource = resource;
  return config;
}

std::string PodJson(const std::string& name, const std::string& resource_version) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}","resourceVersion":"{}"}},"spec":{{}}}})",
      name, name, resource_version);
}

std::string PodListJson(const std::string& resource_version, const std::string& continue_token,
                        const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return fmt::format(
      R"({{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"{}"{}}},"items":[{}]}})",
      resource_version,
      continue_token.empty() ? "" : fmt::format(R"(,"continue":"{}")", continue_token), joined);
}

std::string WidgetListJson(const std::string& resource_version) {
  return fmt::format(
      R"({{"kind":"WidgetList","apiVersion":"example.com/v1","metadata":{{"resourceVersion":"{}"}},"items":[]}})",
      resource_version);
}

std::string WatchEventLine(const std::string& type, const std::string& object) {
  return fmt::format(R"({{"type":"{}","object":{}}})", type, object) + "\n";
}

InProcessFactory::InProcessFactory(std::vector<daemon::ResourceConfig> entries,
                                   daemon::SharedInformerFactoryOptions options,
                                   daemon::DiscoveryOptions discovery_options,
                                   std::shared_ptr<spdlog::logger> logger) {
  if (!logger) {
    logger =
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  }
  discovery_ = std::make_unique<daemon::Discovery>(client_, clock_, discovery_options);
  options.registry = &registry_;
  options.timers = &timers_;
  options.random = &random_;
  factory_ = daemon::SharedInformerFactory::Create(client_, *discovery_, clock_, std::move(entries),
                                                   std::move(options), nullptr, std::move(logger));
}

InProcessFactory::~InProcessFactory() {
  factory_->Stop();
  io_.poll();
}

void InProcessFactory::Run() { io_.poll(); }

void InProcessFactory::Advance(std::chrono::milliseconds by) {
  timers_.Advance(by);
  io_.poll();
}

void InProcessFactory::ServeDiscovery(bool with_widgets) {
  client_.ScriptGet("/api", HttpOk(kApi));
  client_.ScriptGet("/apis", HttpOk(ApisDocument(with_widgets)));
  Run();
  client_.ScriptGet("/api/v1", HttpOk(kCoreV1));
  if (with_widgets) {
    client_.ScriptGet("/apis/example.com/v1",
                      HttpOk(ResourceList("example.com/v1", Resource("widgets", "Widget", true))));
  }
  Run();
}

std::vector<std::chrono::milliseconds> InProcessFactory::Armed() const {
  return timers_.armed_durations();
}

}  // namespace informerd::test
