// decode_bench: throughput of the decoding layer (core/watch_event_decoder, core/list_decoder) on
// realistic pods, to check it against the engine's budget of >= 50,000 objects/s of 4 KB pods on
// one core, decoding included. Prints figures; asserts nothing. Run with
//   bazel run -c opt //bench:decode_bench [-- seconds_per_case]
//
// The pods look like what a Deployment's pods look like on a real cluster: labels, annotations,
// an owner reference, containers with env, ports, resources and mounts, volumes,
// tolerations, conditions and container statuses, and managedFields for kubectl,
// kube-controller-manager and kubelet whose fieldsV1 mirror the spec (so they grow with it,
// making up about a quarter to a third of the object, as they do on real clusters; see
// docs/kubernetes-semantics.md, "managedFields and memory").
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/list_decoder.h"
#include "core/watch_event_decoder.h"
#include "fmt/format.h"

namespace informerd::core {
namespace {

// How a pod reaches its size: env vars (which managedFields mirror) and, for big pods, kubectl's
// last-applied-configuration annotation (a JSON document inside a string: many escaped quotes).
struct Shape {
  int env_count = 0;
  std::size_t applied_bytes = 0;
};

std::string LastAppliedConfiguration(std::size_t bytes) {
  std::string text =
      R"({\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},)"
      R"(\"name\":\"checkout\",\"namespace\":\"shop\"},\"spec\":{\"template\":{\"spec\":)"
      R"({\"containers\":[)";
  for (int i = 0; text.size() < bytes; ++i) {
    if (i > 0) text += ",";
    text += fmt::format(
        R"({{\"name\":\"sidecar-{0}\",\"image\":\"registry.example.com/sidecar:1.{0}\",)"
        R"(\"args\":[\"--port={1}\",\"--verbose\"]}})",
        i, 9000 + i);
  }
  return text + R"(]}}}}\n)";
}

// One pod. `index` varies the identity and values; `shape` sets the size.
std::string MakePod(int index, const Shape& shape) {
  const int env_count = shape.env_count;
  const std::string applied = shape.applied_bytes == 0
                                  ? std::string()
                                  : R"("kubectl.kubernetes.io/last-applied-configuration":")" +
                                        LastAppliedConfiguration(shape.applied_bytes) + "\",";
  const std::string name = fmt::format("checkout-7d4b9c6f5-{:05x}", index * 7919 % 1048576);
  const std::string uid = fmt::format("{:08x}-5a1e-4c3b-9d2f-{:012x}", index, index * 104729LL);
  std::string env;
  std::string env_fields;
  for (int i = 0; i < env_count; ++i) {
    if (i > 0) env += ",";
    env +=
        fmt::format(R"({{"name":"CHECKOUT_SETTING_{}","value":"value-{}-{}"}})", i, i, index % 97);
    // Each entry with its leading comma: it follows the "." member.
    env_fields += fmt::format(
        R"(,"k:{{\"name\":\"CHECKOUT_SETTING_{}\"}}":{{".":{{}},"f:name":{{}},"f:value":{{}}}})",
        i);
  }
  std::string pod;
  pod.reserve(4096 + static_cast<std::size_t>(env_count) * 160);
  pod += fmt::format(
      R"({{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"{0}","generateName":"checkout-7d4b9c6f5-",)"
      R"("namespace":"shop-{1}","uid":"{2}","resourceVersion":"{3}",)"
      R"("creationTimestamp":"2024-05-01T10:{4:02}:{5:02}Z",)"
      R"("labels":{{"app.kubernetes.io/name":"checkout","app.kubernetes.io/part-of":"shop",)"
      R"("pod-template-hash":"7d4b9c6f5","tier":"backend","version":"v2.14.{1}"}},)"
      R"("annotations":{{{6}"prometheus.io/scrape":"true"}},)"
      R"("ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet",)"
      R"("name":"checkout-7d4b9c6f5","uid":"6c0f3e1a-2b4d-4e8f-9a1c-3d5e7f9b1c2d",)"
      R"("controller":true,"blockOwnerDeletion":true}}],)",
      name, index % 40, uid, 1000000 + index, index % 60, index * 7 % 60, applied);
  pod += fmt::format(
      R"("managedFields":[{{"manager":"kube-controller-manager","operation":"Update",)"
      R"("apiVersion":"v1","time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":)"
      R"({{"f:metadata":{{"f:annotations":{{".":{{}},"f:prometheus.io/scrape":{{}}}},)"
      R"("f:generateName":{{}},)"
      R"("f:labels":{{".":{{}},"f:app.kubernetes.io/name":{{}},"f:app.kubernetes.io/part-of":{{}},)"
      R"("f:pod-template-hash":{{}},"f:tier":{{}},"f:version":{{}}}},"f:ownerReferences":)"
      R"({{".":{{}},"k:{{\"uid\":\"6c0f3e1a-2b4d-4e8f-9a1c-3d5e7f9b1c2d\"}}":{{}}}}}},)"
      R"("f:spec":{{"f:containers":{{"k:{{\"name\":\"checkout\"}}":{{".":{{}},"f:env":{{".":{{}}{0}}},)"
      R"("f:image":{{}},"f:imagePullPolicy":{{}},"f:name":{{}},"f:ports":)"
      R"({{".":{{}},"k:{{\"containerPort\":8080,\"protocol\":\"TCP\"}}":{{".":{{}},)"
      R"("f:containerPort":{{}},"f:name":{{}},"f:protocol":{{}}}}}}}}}},"f:dnsPolicy":{{}},)"
      R"("f:restartPolicy":{{}},"f:schedulerName":{{}},"f:terminationGracePeriodSeconds":{{}})"
      R"(}}}}}},)"
      R"({{"manager":"kubelet","operation":"Update","apiVersion":"v1",)"
      R"("time":"2024-05-01T10:00:09Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":)"
      R"({{"f:conditions":{{"k:{{\"type\":\"Ready\"}}":)"
      R"({{".":{{}},"f:lastProbeTime":{{}},"f:lastTransitionTime":{{}},"f:status":{{}},)"
      R"("f:type":{{}}}}}},"f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},)"
      R"("f:podIP":{{}},"f:podIPs":{{".":{{}},"k:{{\"ip\":\"10.244.{1}.{2}\"}}":{{".":{{}},)"
      R"("f:ip":{{}}}}}},"f:startTime":{{}}}}}},"subresource":"status"}}]}},)",
      env_fields, index % 250, index % 200 + 2);
  pod += fmt::format(
      R"("spec":{{"volumes":[{{"name":"config","configMap":{{"name":"checkout-config",)"
      R"("defaultMode":420}}}}],)"
      R"("containers":[{{"name":"checkout","image":"registry.example.com/shop/checkout:v2.14.{0}",)"
      R"("ports":[{{"name":"http","containerPort":8080,"protocol":"TCP"}}],"env":[{1}],)"
      R"("resources":{{"limits":{{"cpu":"1","memory":"512Mi"}},"requests":{{"cpu":"250m",)"
      R"("memory":"256Mi"}}}},"volumeMounts":[{{"name":"config","mountPath":"/etc/checkout"}}],)"
      R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File",)"
      R"("imagePullPolicy":"IfNotPresent"}}],"restartPolicy":"Always",)"
      R"("terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",)"
      R"("serviceAccountName":"default","serviceAccount":"default","nodeName":"node-{2}",)"
      R"("securityContext":{{}},"schedulerName":"default-scheduler","tolerations":[)"
      R"({{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute",)"
      R"("tolerationSeconds":300}},{{"key":"node.kubernetes.io/unreachable","operator":"Exists",)"
      R"("effect":"NoExecute","tolerationSeconds":300}}],"priority":0,)"
      R"("enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"}},)",
      index % 40, env, index % 64);
  pod += fmt::format(
      R"("status":{{"phase":"Running","conditions":[{{"type":"Initialized","status":"True",)"
      R"("lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:00Z"}},{{"type":"Ready",)"
      R"("status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:09Z"}},)"
      R"({{"type":"ContainersReady","status":"True","lastProbeTime":null,)"
      R"("lastTransitionTime":"2024-05-01T10:00:09Z"}}],"hostIP":"192.168.7.{0}",)"
      R"("podIP":"10.244.{1}.{2}","podIPs":[{{"ip":"10.244.{1}.{2}"}}],)"
      R"("startTime":"2024-05-01T10:00:00Z","containerStatuses":[{{"name":"checkout",)"
      R"("state":{{"running":{{"startedAt":"2024-05-01T10:00:05Z"}}}},"lastState":{{}},)"
      R"("ready":true,"restartCount":0,"image":"registry.example.com/shop/checkout:v2.14.3",)"
      R"("imageID":"registry.example.com/shop/checkout@sha256:)"
      R"(9b2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d",)"
      R"("containerID":"containerd://{3:064x}","started":true}}],"qosClass":"Burstable"}}}})",
      index % 64 + 10, index % 250, index % 200 + 2, index * 2654435761ULL);
  return pod;
}

// The shape that brings a pod to at least `bytes`.
Shape ShapeFor(std::size_t bytes) {
  Shape shape;
  if (bytes > 8192) {
    shape.env_count = 24;
    shape.applied_bytes = 64;
  }
  while (MakePod(0, shape).size() < bytes) {
    if (shape.applied_bytes == 0) {
      ++shape.env_count;
    } else {
      shape.applied_bytes += 64;
    }
  }
  return shape;
}

struct Corpus {
  std::vector<std::string> pods;
  std::size_t bytes = 0;
  std::size_t managed_fields_bytes = 0;
};

Corpus MakeCorpus(std::size_t pod_bytes, int count) {
  Corpus corpus;
  const Shape shape = ShapeFor(pod_bytes);
  ObjectScanner stripper(ScanOptions{true, {}});
  for (int i = 0; i < count; ++i) {
    corpus.pods.push_back(MakePod(i, shape));
    corpus.bytes += corpus.pods.back().size();
    auto stripped = stripper.Scan(corpus.pods.back());
    if (!stripped.ok()) {
      std::fprintf(stderr, "generated pod does not scan: %s\n",
                   std::string(stripped.status().message()).c_str());
      std::exit(1);
    }
    corpus.managed_fields_bytes += corpus.pods.back().size() - stripped->json.size();
  }
  return corpus;
}

struct Result {
  double objects_per_second;
  double megabytes_per_second;
};

// This thread's CPU time: the figures are per core-second, which is what the budget is about,
// and unlike wall time they do not drop when other work on the machine takes the core away.
double CpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Runs `pass` (which handles `objects` objects in `bytes` bytes) for `seconds` of CPU time.
template <typename Pass>
Result Measure(double seconds, std::size_t objects, std::size_t bytes, Pass pass) {
  pass();  // warm-up: buffers reach their working size
  std::size_t passes = 0;
  const double start = CpuSeconds();
  double elapsed = 0;
  do {
    pass();
    ++passes;
    elapsed = CpuSeconds() - start;
  } while (elapsed < seconds);
  return Result{static_cast<double>(objects * passes) / elapsed,
                static_cast<double>(bytes * passes) / elapsed / 1e6};
}

void Print(const char* what, const Result& result) {
  std::printf("  %-58s %10.0f objects/s %8.1f MB/s\n", what, result.objects_per_second,
              result.megabytes_per_second);
}

// RapidJSON alone with the decoders' flags and a handler that does nothing: the floor under
// every figure above it.
struct NullHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NullHandler> {};

void RunSize(std::size_t pod_bytes, double seconds) {
  constexpr int kPageItems = 500;  // client-go's page size
  const Corpus corpus = MakeCorpus(pod_bytes, kPageItems);
  std::printf("\n%zu pods of %.1f KB on average (managedFields %.0f%% of the bytes)\n",
              corpus.pods.size(), static_cast<double>(corpus.bytes) / corpus.pods.size() / 1024,
              100.0 * static_cast<double>(corpus.managed_fields_bytes) / corpus.bytes);

  // WATCH: one MODIFIED event per pod, newline-terminated, read in 16 KiB pieces (a TLS
  // record's worth, which is what a socket read typically returns). The second stream has one
  // non-ASCII character per pod, which makes the decoder validate UTF-8 (see object_scanner.cc).
  std::string stream;
  std::string non_ascii_stream;
  for (const std::string& pod : corpus.pods) {
    stream += R"({"type":"MODIFIED","object":)";
    stream += pod;
    stream += "}\n";
  }
  for (std::size_t at = 0; at < stream.size(); ++at) {
    non_ascii_stream += stream[at];
    // "prometheus.io/scrape":"true" becomes "prometheus.io/scrape":"tru\u00e9", UTF-8 encoded.
    if (stream.compare(at, 7, "\"true\"}") == 0) {
      non_ascii_stream += "tru\xC3\xA9";
      at += 4;
    }
  }
  constexpr std::size_t kPiece = 16 * 1024;
  const std::vector<std::string> extra = {"spec.nodeName", "status.phase"};
  std::size_t sink = 0;
  // As a reflector would: one vector, emptied after each batch of events has been applied.
  std::vector<WatchEvent> events;
  struct WatchCase {
    const char* name;
    bool strip;
    const std::string* stream;
    ScanOptions::FastPath fast_path;
  };
  using FastPath = ScanOptions::FastPath;
  for (const WatchCase& watch_case :
       {WatchCase{"watch decoder, 16 KiB pieces, strip managedFields, 2 paths", true, &stream,
                  FastPath::kNonAscii},
        WatchCase{"  the same, simdjson (fast_path kAlways)", true, &stream, FastPath::kAlways},
        WatchCase{"watch decoder, 16 KiB pieces, keep managedFields, 2 paths", false, &stream,
                  FastPath::kNonAscii},
        WatchCase{"watch decoder, as the first, one non-ASCII char per pod", true,
                  &non_ascii_stream, FastPath::kNonAscii},
        WatchCase{"  the same, RapidJSON only (fast_path kOff)", true, &non_ascii_stream,
                  FastPath::kOff}}) {
    const std::string& body = *watch_case.stream;
    const Result watch = Measure(seconds, corpus.pods.size(), body.size(), [&] {
      WatchDecoderOptions options;
      options.scan = ScanOptions{watch_case.strip, extra, watch_case.fast_path};
      WatchEventDecoder decoder(options);
      events.clear();
      for (std::size_t at = 0; at < body.size(); at += kPiece) {
        if (!decoder.Feed(std::string_view(body).substr(at, kPiece), events).ok()) {
          std::fprintf(stderr, "watch decode failed: %s\n",
                       std::string(decoder.status().message()).c_str());
          std::exit(1);
        }
      }
      if (events.size() != corpus.pods.size()) {
        std::fprintf(stderr, "watch decode lost events: %zu\n", events.size());
        std::exit(1);
      }
      sink += events.back().object.json.size();
    });
    Print(watch_case.name, watch);
  }

  // LIST: one page of 500 items.
  std::string page = R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":)"
                     R"("1000500","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ",)"
                     R"("remainingItemCount":12000},"items":[)";
  for (std::size_t i = 0; i < corpus.pods.size(); ++i) {
    if (i > 0) page += ",";
    page += corpus.pods[i];
  }
  page += "]}";
  for (const FastPath fast_path : {FastPath::kNonAscii, FastPath::kAlways}) {
    ListDecoder list_decoder(ScanOptions{true, extra, fast_path});
    const Result list = Measure(seconds, corpus.pods.size(), page.size(), [&] {
      auto decoded = list_decoder.Decode(page);
      if (!decoded.ok()) {
        std::fprintf(stderr, "list decode failed: %s\n",
                     std::string(decoded.status().message()).c_str());
        std::exit(1);
      }
      sink += decoded->items.size();
    });
    Print(fast_path == FastPath::kNonAscii
              ? "list decoder, 500-item page, strip managedFields, 2 paths"
              : "  the same, simdjson (fast_path kAlways)",
          list);
  }

  rapidjson::Reader reader;
  NullHandler handler;
  std::string scratch;
  const auto in_situ = [&](auto flags) {
    return Measure(seconds, corpus.pods.size(), page.size(), [&] {
      scratch.assign(page);
      rapidjson::InsituStringStream in(scratch.data());
      reader.Parse<decltype(flags)::value>(in, handler);
      sink += reader.HasParseError() ? 0 : 1;
    });
  };
  using rapidjson::kParseInsituFlag;
  using rapidjson::kParseNumbersAsStringsFlag;
  using rapidjson::kParseValidateEncodingFlag;
  Print("(floor) RapidJSON, no-op handler, in situ on a copy",
        in_situ(std::integral_constant<unsigned, kParseInsituFlag | kParseNumbersAsStringsFlag>()));
  Print("(floor) the same, validating UTF-8 (non-ASCII documents)",
        in_situ(std::integral_constant<unsigned, kParseInsituFlag | kParseNumbersAsStringsFlag |
                                                     kParseValidateEncodingFlag>()));
  Print("(floor) RapidJSON, no-op handler, plain validating parse",
        Measure(seconds, corpus.pods.size(), page.size(), [&] {
          rapidjson::MemoryStream in(page.data(), page.size());
          reader.Parse<kParseNumbersAsStringsFlag | kParseValidateEncodingFlag>(in, handler);
          sink += reader.HasParseError() ? 0 : 1;
        }));
  if (sink == 0) std::printf("(unreachable)\n");
}

}  // namespace
}  // namespace informerd::core

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::printf(
      "decode_bench: per second of one core's CPU time, %.1f s per case; MB = 10^6 bytes of "
      "input\n",
      seconds);
  informerd::core::RunSize(4 * 1024, seconds);
  informerd::core::RunSize(20 * 1024, seconds);
  return 0;
}
