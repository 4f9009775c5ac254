// FakeInformer: an in-process informerd.v1.Informer server with canned answers, for testing
// clients (informerctl) before and independently of the daemon's real service.
//
// A test creates one FakeInformer (it listens on 127.0.0.1 with a free port), fills in the
// answers with Set*(), runs the client against address(), and then reads back the requests the
// fake received. Every answer can instead be any gRPC status, so clients are tested against each
// code the API documents. It can listen with any server credentials (TLS, mutual TLS), and it
// records who each call came from: its "authorization" metadata and the client certificate's
// common name. gRPC serves the calls on its own threads; every method here is thread-safe. The
// destructor shuts the server down and cancels streams still open.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "informerd/v1/informerd.grpc.pb.h"

namespace informerd::test {

// What one Subscribe call does: send `events`, then end with `end` — or, when `hold_open`, keep
// the stream open until the client cancels it (or the fake shuts down).
struct SubscribeScript {
  std::vector<v1::Event> events;
  grpc::Status end = grpc::Status::OK;
  bool hold_open = false;
};

// Who made one call, as the server saw it.
struct CallerSeen {
  std::string method;  // "ListResources", "List", "Get", "Subscribe"
  // Every "authorization" metadata value, in order (a well-behaved client sends one).
  std::vector<std::string> authorization;
  // The verified client certificate's subject CN ("" without one; only with TLS).
  std::string client_common_name;
};

class FakeInformerService final : public v1::Informer::Service {
 public:
  void SetResources(v1::ListResourcesResponse response);
  void SetList(v1::ListResponse response);
  // The next List calls answer these, one each, in order (a paged list, an expired continue),
  // before SetList's answer serves the rest.
  void QueueList(std::vector<std::pair<grpc::Status, v1::ListResponse>> answers);
  // Get answers from the objects given here, keyed by namespace and name; others are NOT_FOUND.
  void AddObject(const std::string& namespace_name, const std::string& name, std::string json,
                 std::string resource_version);
  void SetSubscribe(SubscribeScript script);
  // Every call answers with `status` instead (after `delay`), whatever the RPC.
  void FailWith(grpc::Status status, std::chrono::milliseconds delay = {});

  std::vector<v1::ListRequest> list_requests() const;
  std::vector<v1::GetRequest> get_requests() const;
  std::vector<v1::SubscribeRequest> subscribe_requests() const;
  // Calls of any kind received so far.
  int calls() const;
  std::vector<CallerSeen> callers() const;
  // Waits until `count` streams held open have seen their client cancel; false on timeout.
  bool WaitForCancelledStreams(int count, std::chrono::milliseconds timeout);

  grpc::Status ListResources(grpc::ServerContext* context, const v1::ListResourcesRequest* request,
                             v1::ListResourcesResponse* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListRequest* request,
                    v1::ListResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Subscribe(grpc::ServerContext* context, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::Event>* writer) override;

 private:
  // Records the caller; the scripted failure, if any, after its delay; counts the call.
  std::optional<grpc::Status> Begin(const char* method, grpc::ServerContext* context);

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int calls_ = 0;
  std::vector<CallerSeen> callers_;
  std::optional<grpc::Status> failure_;
  std::chrono::milliseconds failure_delay_{0};
  v1::ListResourcesResponse resources_;
  v1::ListResponse list_;
  std::vector<std::pair<grpc::Status, v1::ListResponse>> list_queue_;
  std::map<std::pair<std::string, std::string>, v1::GetResponse> objects_;
  SubscribeScript subscribe_;
  std::vector<v1::ListRequest> list_requests_;
  std::vector<v1::GetRequest> get_requests_;
  std::vector<v1::SubscribeRequest> subscribe_requests_;
  int cancelled_streams_ = 0;
};

class FakeInformer {
 public:
  // Plaintext.
  FakeInformer();
  // With these credentials, e.g. grpc::SslServerCredentials.
  explicit FakeInformer(std::shared_ptr<grpc::ServerCredentials> credentials);
  ~FakeInformer();
  FakeInformer(const FakeInformer&) = delete;
  FakeInformer& operator=(const FakeInformer&) = delete;

  // "127.0.0.1:PORT".
  const std::string& address() const { return address_; }
  FakeInformerService& service() { return service_; }

 private:
  FakeInformerService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace informerd::test
