// The canned Informer service; see fake_informer.h.
#include "test/common/fake_informer.h"

#include <grpc/grpc_security_constants.h>

#include <iterator>
#include <stdexcept>
#include <thread>
#include <utility>

#include "fmt/format.h"

namespace informerd::test {

void FakeInformerService::SetResources(v1::ListResourcesResponse response) {
  std::lock_guard<std::mutex> lock(mutex_);
  resources_ = std::move(response);
}

void FakeInformerService::SetList(v1::ListResponse response) {
  std::lock_guard<std::mutex> lock(mutex_);
  list_ = std::move(response);
}

void FakeInformerService::QueueList(
    std::vector<std::pair<grpc::Status, v1::ListResponse>> answers) {
  std::lock_guard<std::mutex> lock(mutex_);
  list_queue_.insert(list_queue_.end(), std::make_move_iterator(answers.begin()),
                     std::make_move_iterator(answers.end()));
}

void FakeInformerService::AddObject(const std::string& namespace_name, const std::string& name,
                                    std::string json, std::string resource_version) {
  std::lock_guard<std::mutex> lock(mutex_);
  v1::GetResponse& response = objects_[{namespace_name, name}];
  response.set_object(std::move(json));
  response.set_resource_version(std::move(resource_version));
}

void FakeInformerService::SetSubscribe(SubscribeScript script) {
  std::lock_guard<std::mutex> lock(mutex_);
  subscribe_ = std::move(script);
}

void FakeInformerService::FailWith(grpc::Status status, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = std::move(status);
  failure_delay_ = delay;
}

std::vector<v1::ListRequest> FakeInformerService::list_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return list_requests_;
}

std::vector<v1::GetRequest> FakeInformerService::get_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return get_requests_;
}

std::vector<v1::SubscribeRequest> FakeInformerService::subscribe_requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return subscribe_requests_;
}

int FakeInformerService::calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_;
}

std::vector<CallerSeen> FakeInformerService::callers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return callers_;
}

bool FakeInformerService::WaitForCancelledStreams(int count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return cancelled_streams_ >= count; });
}

std::optional<grpc::Status> FakeInformerService::Begin(const char* method,
                                                       grpc::ServerContext* context) {
  CallerSeen caller;
  caller.method = method;
  const auto& metadata = context->client_metadata();
  for (auto [it, end] = metadata.equal_range("authorization"); it != end; ++it) {
    caller.authorization.emplace_back(it->second.data(), it->second.size());
  }
  if (const auto auth = context->auth_context()) {
    for (const grpc::string_ref& name : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      caller.client_common_name.assign(name.data(), name.size());
    }
  }
  std::optional<grpc::Status> failure;
  std::chrono::milliseconds delay;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++calls_;
    callers_.push_back(std::move(caller));
    failure = failure_;
    delay = failure_delay_;
  }
  if (failure) std::this_thread::sleep_for(delay);
  return failure;
}

grpc::Status FakeInformerService::ListResources(grpc::ServerContext* context,
                                                const v1::ListResourcesRequest*,
                                                v1::ListResourcesResponse* response) {
  if (auto failure = Begin("ListResources", context)) return *failure;
  std::lock_guard<std::mutex> lock(mutex_);
  *response = resources_;
  return grpc::Status::OK;
}

grpc::Status FakeInformerService::List(grpc::ServerContext* context, const v1::ListRequest* request,
                                       v1::ListResponse* response) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    list_requests_.push_back(*request);
  }
  if (auto failure = Begin("List", context)) return *failure;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!list_queue_.empty()) {
    auto [status, answer] = std::move(list_queue_.front());
    list_queue_.erase(list_queue_.begin());
    *response = std::move(answer);
    return status;
  }
  *response = list_;
  return grpc::Status::OK;
}

grpc::Status FakeInformerService::Get(grpc::ServerContext* context, const v1::GetRequest* request,
                                      v1::GetResponse* response) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    get_requests_.push_back(*request);
  }
  if (auto failure = Begin("Get", context)) return *failure;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = objects_.find({request->namespace_(), request->name()});
  if (found == objects_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        fmt::format("{} \"{}\" not found in namespace \"{}\"", request->resource(),
                                    request->name(), request->namespace_()));
  }
  *response = found->second;
  return grpc::Status::OK;
}

grpc::Status FakeInformerService::Subscribe(grpc::ServerContext* context,
                                            const v1::SubscribeRequest* request,
                                            grpc::ServerWriter<v1::Event>* writer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    subscribe_requests_.push_back(*request);
  }
  if (auto failure = Begin("Subscribe", context)) return *failure;
  SubscribeScript script;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    script = subscribe_;
  }
  for (const v1::Event& event : script.events) {
    if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
  }
  if (!script.hold_open) return script.end;
  while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++cancelled_streams_;
  }
  changed_.notify_all();
  return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
}

FakeInformer::FakeInformer() : FakeInformer(grpc::InsecureServerCredentials()) {}

FakeInformer::FakeInformer(std::shared_ptr<grpc::ServerCredentials> credentials) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", std::move(credentials), &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) throw std::runtime_error("FakeInformer: cannot listen on 127.0.0.1:0");
  address_ = fmt::format("127.0.0.1:{}", port);
}

FakeInformer::~FakeInformer() {
  // Streams held open end when the deadline passes and gRPC cancels them.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  server_->Wait();
}

}  // namespace informerd::test
