// cache_bench: what the informer engine's serving half (core/cache.*) costs per object: apply
// rate, resident memory relative to the JSON it holds, and the memory peak of a full relist.
// Prints figures; asserts nothing. Run with
//   bazel run -c opt //bench:cache_bench [-- objects_4k objects_20k]
//
// Objects are realistic pods (labels, annotations, an owner reference, managedFields, containers
// with env, status) generated as JSON and turned into ObjectRecords by core/object_scanner, as the
// decoders would (managedFields stripped, spec.nodeName and status.phase extracted). Times cover
// the cache's work only (ListItems / ApplyWatchEvent), not generating or scanning.
//
// Memory is the process's resident set from /proc/self/statm, after malloc_trim, before and
// after; the objects are generated and applied in pages, so the input does not stay resident.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "core/cache.h"
#include "core/clock.h"
#include "core/object_scanner.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

using Seconds = std::chrono::duration<double>;

using bench::ResidentBytes;
using bench::TrimmedResidentBytes;

// One pod of about `env_count` * 170 + 3,000 bytes. `version` changes the resourceVersion and
// a status field, as a kubelet status update does.
std::string MakePod(int index, int env_count, uint64_t version) {
  std::string env;
  std::string env_fields;
  for (int i = 0; i < env_count; ++i) {
    env += fmt::format(R"({}{{"name":"SETTING_{}","value":"value-{}-{}"}})", i ? "," : "", i, i,
                       index % 97);
    env_fields += fmt::format(R"(,"k:{{\"name\":\"SETTING_{}\"}}":{{".":{{}},"f:name":{{}},)"
                              R"("f:value":{{}}}})",
                              i);
  }
  return fmt::format(
      R"({{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"checkout-7d4b9c6f5-{0:05x}",)"
      R"("generateName":"checkout-7d4b9c6f5-","namespace":"shop-{1}",)"
      R"("uid":"{0:08x}-5a1e-4c3b-9d2f-{2:012x}","resourceVersion":"{3}",)"
      R"("creationTimestamp":"2024-05-01T10:00:00Z","labels":{{"app.kubernetes.io/name":)"
      R"("checkout","app.kubernetes.io/part-of":"shop","pod-template-hash":"7d4b9c6f5",)"
      R"("tier":"backend","version":"v2.14.{1}"}},"annotations":{{"prometheus.io/scrape":"true"}},)"
      R"("ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet",)"
      R"("name":"checkout-7d4b9c6f5","uid":"6c0f3e1a-2b4d-4e8f-9a1c-3d5e7f9b1c2d",)"
      R"("controller":true,"blockOwnerDeletion":true}}],"managedFields":[{{"manager":)"
      R"("kube-controller-manager","operation":"Update","apiVersion":"v1","time":)"
      R"("2024-05-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{)"
      R"("f:generateName":{{}},"f:labels":{{".":{{}},"f:app.kubernetes.io/name":{{}},)"
      R"("f:pod-template-hash":{{}}}}}},"f:spec":{{"f:containers":{{"k:{{\"name\":\"checkout\"}}":)"
      R"({{".":{{}},"f:env":{{".":{{}}{4}}},"f:image":{{}},"f:name":{{}}}}}},"f:dnsPolicy":{{}},)"
      R"("f:restartPolicy":{{}}}}}}}},{{"manager":"kubelet","operation":"Update","apiVersion":"v1",)"
      R"("time":"2024-05-01T10:00:09Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{)"
      R"("f:conditions":{{}},"f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},)"
      R"("f:podIP":{{}},"f:startTime":{{}}}}}},"subresource":"status"}}]}},)"
      R"("spec":{{"volumes":[{{"name":"config","configMap":{{"name":"checkout-config",)"
      R"("defaultMode":420}}}}],"containers":[{{"name":"checkout","image":)"
      R"("registry.example.com/shop/checkout:v2.14.{1}","ports":[{{"name":"http",)"
      R"("containerPort":8080,"protocol":"TCP"}}],"env":[{5}],"resources":{{"limits":{{"cpu":"1",)"
      R"("memory":"512Mi"}},"requests":{{"cpu":"250m","memory":"256Mi"}}}},"volumeMounts":[{{)"
      R"("name":"config","mountPath":"/etc/checkout"}}],"terminationMessagePath":)"
      R"("/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":)"
      R"("IfNotPresent"}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,)"
      R"("dnsPolicy":"ClusterFirst","serviceAccountName":"default","nodeName":"node-{6}",)"
      R"("securityContext":{{}},"schedulerName":"default-scheduler","tolerations":[{{"key":)"
      R"("node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute",)"
      R"("tolerationSeconds":300}}],"priority":0,"enableServiceLinks":true}},)"
      R"("status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True",)"
      R"("lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:09Z"}}],"hostIP":)"
      R"("192.168.7.{7}","podIP":"10.244.{8}.{7}","startTime":"2024-05-01T10:00:00Z",)"
      R"("containerStatuses":[{{"name":"checkout","ready":true,"restartCount":{9},"image":)"
      R"("registry.example.com/shop/checkout:v2.14.3","containerID":"containerd://{10:064x}",)"
      R"("started":true}}],"qosClass":"Burstable"}}}})",
      index, index % 40, index * 104729LL, version, env_fields, env, index % 64, index % 200 + 2,
      index % 250, version % 7, static_cast<uint64_t>(index) * 2654435761ULL);
}

int EnvCountFor(std::size_t bytes) {
  int env_count = 0;
  while (MakePod(0, env_count, 1000000).size() < bytes) ++env_count;
  return env_count;
}

ObjectRecord Scan(ObjectScanner& scanner, const std::string& json) {
  absl::StatusOr<ObjectRecord> record = scanner.Scan(json);
  if (!record.ok()) {
    std::fprintf(stderr, "generated pod does not scan: %s\n",
                 std::string(record.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(record);
}

// What glibc's malloc takes for an n-byte request on x86-64: 8 bytes of header, 16-byte
// granules, 32 bytes at least.
std::size_t Chunk(std::size_t n) {
  return std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15});
}

// Where one cached record's bytes go (estimated from the allocation sizes), to explain the
// measured figure. The store's own per-object costs (its entry node and index postings) come on
// top and are printed separately.
void PrintRecordBreakdown(const ObjectRecord& record) {
  // make_shared: the control block (16 bytes) and the record in one allocation.
  const std::size_t shell = Chunk(16 + sizeof(ObjectRecord));
  // A compact record's single block: JSON, strings it could not point into, label and field
  // tables.
  const std::size_t block = record.HeapBytes();
  const std::size_t tables = (4 * record.labels.size() + 2 * record.extra_fields.size()) * 4;
  std::printf(
      "    per record (%s): ObjectRecord + shared_ptr control block %zu B; one block of %zu B "
      "(malloc chunk %zu B) = JSON %zu B + %zu B copied strings and padding + %zu B tables for "
      "%zu labels and %zu fields\n",
      record.compact() ? "compact" : "NOT compact", shell, block, Chunk(block), record.json.size(),
      block - record.json.size() - tables, tables, record.labels.size(),
      record.extra_fields.size());
}

constexpr int kPage = 500;

// Applies a full list of `count` pods at `version` in pages of 500 (generated and scanned
// outside the timed part). Returns the seconds spent in the cache; `on_page` runs after each.
template <typename OnPage>
double ListPods(Cache& cache, ObjectScanner& scanner, int count, int env_count, uint64_t version,
                std::size_t* json_bytes, OnPage on_page) {
  double seconds = 0;
  cache.BeginList();
  for (int start = 0; start < count; start += kPage) {
    std::vector<ObjectRecord> page;
    for (int i = start; i < std::min(count, start + kPage); ++i) {
      page.push_back(Scan(scanner, MakePod(i, env_count, version)));
      if (json_bytes != nullptr) *json_bytes += page.back().json.size();
    }
    const auto begin = std::chrono::steady_clock::now();
    cache.ListItems(std::move(page), std::to_string(version));
    seconds += Seconds(std::chrono::steady_clock::now() - begin).count();
    on_page();
  }
  const auto begin = std::chrono::steady_clock::now();
  cache.EndList(std::to_string(version));
  seconds += Seconds(std::chrono::steady_clock::now() - begin).count();
  return seconds;
}

std::vector<std::shared_ptr<Subscription>> Subscribers(Cache& cache, int count) {
  std::vector<std::shared_ptr<Subscription>> out;
  for (int i = 0; i < count; ++i) {
    SubscribeOptions options;
    // Half see everything, half one namespace in forty.
    if (i % 2) options.namespace_name = fmt::format("shop-{}", i % 40);
    options.queue_capacity = 1 << 20;
    out.push_back(*cache.Subscribe(std::move(options)));
  }
  return out;
}

void Drain(const std::vector<std::shared_ptr<Subscription>>& subscribers) {
  for (const auto& subscriber : subscribers) {
    while (subscriber->TryPop()) {
    }
  }
}

void RunSize(std::size_t pod_bytes, int count) {
  const int env_count = EnvCountFor(pod_bytes);
  ScanOptions scan_options{true, {"spec.nodeName", "status.phase"}};
  ObjectScanner scanner(scan_options);
  const std::size_t raw_bytes = MakePod(0, env_count, 1000000).size();
  const std::size_t stored_bytes = Scan(scanner, MakePod(0, env_count, 1000000)).json.size();
  std::printf("\n%d pods of %.1f KB as received, %.1f KB stored (managedFields stripped)\n", count,
              raw_bytes / 1024.0, stored_bytes / 1024.0);

  SteadyClock clock;
  CacheOptions cache_options;
  cache_options.extra_field_paths = scan_options.extra_field_paths;

  {
    // Memory: resident growth for the whole store, relative to the JSON it holds.
    const std::size_t before = TrimmedResidentBytes();
    std::shared_ptr<Cache> cache = Cache::Create(cache_options, clock);
    std::size_t json_bytes = 0;
    const double seconds = ListPods(*cache, scanner, count, env_count, 1000000, &json_bytes, [] {});
    const std::size_t steady = TrimmedResidentBytes();
    const double per_object = static_cast<double>(steady - before) / count;
    std::printf("  %-52s %10.0f objects/s\n", "apply, initial list (500-item pages)",
                count / seconds);
    std::printf("  %-52s %10.0f bytes/object = %.3f x JSON (%.0f B JSON + %.0f B overhead)\n",
                "resident memory of the cache", per_object,
                per_object / (static_cast<double>(json_bytes) / count),
                static_cast<double>(json_bytes) / count,
                per_object - static_cast<double>(json_bytes) / count);
    {
      ObjectRecord sample = Scan(scanner, MakePod(1, env_count, 1000000));
      sample.Compact();  // as the cache does
      PrintRecordBreakdown(sample);
    }

    // A full relist in which every object changed (the worst case: every page replaces its
    // objects), without subscribers and then with subscribers draining between pages.
    std::size_t peak = steady;
    const double relist_seconds = ListPods(*cache, scanner, count, env_count, 2000000, nullptr,
                                           [&] { peak = std::max(peak, ResidentBytes()); });
    std::printf("  %-52s %10.0f objects/s\n", "apply, relist where every object changed",
                count / relist_seconds);
    std::printf("  %-52s %10.3f x steady state (%.1f MB over %.1f MB)\n",
                "peak resident during that relist", static_cast<double>(peak) / steady,
                (peak - steady) / 1e6, steady / 1e6);
    const auto subscribers = Subscribers(*cache, 10);
    Drain(subscribers);
    const std::size_t with_subscribers = TrimmedResidentBytes();
    std::size_t peak_subscribed = with_subscribers;
    const double subscribed_seconds =
        ListPods(*cache, scanner, count, env_count, 3000000, nullptr, [&] {
          peak_subscribed = std::max(peak_subscribed, ResidentBytes());
          Drain(subscribers);
        });
    std::printf("  %-52s %10.0f objects/s\n", "apply, same relist with 10 subscribers",
                count / subscribed_seconds);
    std::printf("  %-52s %10.3f x steady state\n", "peak resident during that relist",
                static_cast<double>(peak_subscribed) / with_subscribers);

    // Live updates: MODIFIED events, as kubelet status updates arrive.
    std::vector<WatchEvent> events;
    for (int i = 0; i < std::min(count, 5000); ++i) {
      WatchEvent event;
      event.type = WatchEventType::kModified;
      event.object = Scan(scanner, MakePod(i, env_count, 4000000 + i));
      events.push_back(std::move(event));
    }
    const std::size_t live = events.size();
    auto begin = std::chrono::steady_clock::now();
    for (WatchEvent& event : events) cache->ApplyWatchEvent(std::move(event));
    const double live_seconds = Seconds(std::chrono::steady_clock::now() - begin).count();
    Drain(subscribers);
    std::printf("  %-52s %10.0f objects/s\n", "apply, live MODIFIED events, 10 subscribers",
                live / live_seconds);
    for (const auto& subscriber : subscribers) subscriber->Close();
    events.clear();
    for (int i = 0; i < std::min(count, 5000); ++i) {
      WatchEvent event;
      event.type = WatchEventType::kModified;
      event.object = Scan(scanner, MakePod(i, env_count, 5000000 + i));
      events.push_back(std::move(event));
    }
    begin = std::chrono::steady_clock::now();
    for (WatchEvent& event : events) cache->ApplyWatchEvent(std::move(event));
    const double alone_seconds = Seconds(std::chrono::steady_clock::now() - begin).count();
    std::printf("  %-52s %10.0f objects/s\n", "apply, live MODIFIED events, no subscribers",
                live / alone_seconds);
  }
}

}  // namespace
}  // namespace informerd::core

int main(int argc, char** argv) {
  const int count_4k = argc > 1 ? std::atoi(argv[1]) : 50000;
  const int count_20k = argc > 2 ? std::atoi(argv[2]) : 10000;
  std::printf(
      "cache_bench: wall time of the cache's own work; resident memory from "
      "/proc/self/statm after malloc_trim\n");
  informerd::core::RunSize(4 * 1024, count_4k);
  informerd::core::RunSize(20 * 1024, count_20k);
  return 0;
}
