#include "test/daemon/security/security_test_support.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>
#include <thread>
#include <utility>

namespace informerd::test {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& writer, const std::string& text) {
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void Strings(Writer& writer, const std::vector<std::string>& texts) {
  writer.StartArray();
  for (const std::string& text : texts) String(writer, text);
  writer.EndArray();
}

// Opens the answer object and writes kind, apiVersion and metadata as the apiserver does; the
// caller writes spec and status and closes it.
void StartReview(Writer& writer, const char* kind, const char* api_version) {
  writer.StartObject();
  writer.Key("kind");
  writer.String(kind);
  writer.Key("apiVersion");
  writer.String(api_version);
  writer.Key("metadata");
  writer.StartObject();
  writer.Key("creationTimestamp");
  writer.Null();
  writer.EndObject();
}

// A TokenReview answer up to its status, with spec.token as the apiserver echoes it.
void StartTokenReview(Writer& writer, const std::string& token) {
  StartReview(writer, "TokenReview", "authentication.k8s.io/v1");
  writer.Key("spec");
  writer.StartObject();
  writer.Key("token");
  String(writer, token);
  writer.EndObject();
}

}  // namespace

FakeReviewClient::FakeReviewClient(boost::asio::io_context& io)
    : strand_(boost::asio::make_strand(io)), work_(boost::asio::make_work_guard(io)) {}

void FakeReviewClient::Post(std::string path, std::string json_body, PostCallback done) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(Request{std::move(path), std::move(json_body), std::move(done), false});
}

std::size_t FakeReviewClient::unanswered() const {
  std::size_t count = 0;
  for (const Request& request : requests_) count += request.answered ? 0 : 1;
  return count;
}

void FakeReviewClient::Answer(std::size_t index, daemon::HttpResult result) {
  REQUIRE(index < requests_.size());
  Request& request = requests_[index];
  REQUIRE_FALSE(request.answered);
  request.answered = true;
  boost::asio::post(
      strand_, [done = std::move(request.done), result = std::move(result)]() { done(result); });
}

std::size_t FakeReviewClient::AnswerPending(
    const std::function<daemon::HttpResult(const Request&)>& answer) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t answered = 0;
  for (Request& request : requests_) {
    if (request.answered) continue;
    request.answered = true;
    ++answered;
    daemon::HttpResult result = answer(request);
    boost::asio::post(
        strand_, [done = std::move(request.done), result = std::move(result)]() { done(result); });
  }
  return answered;
}

ConcurrentCalls CallFromThreads(
    FakeReviewClient& client, boost::asio::io_context& io, int threads, int calls_per_thread,
    const std::function<daemon::HttpResult(const FakeReviewClient::Request&)>& answer,
    const std::function<void(int i, std::function<void(bool positive)> done)>& call) {
  std::atomic<int> answered{0};
  std::atomic<int> positive{0};
  const int total = threads * calls_per_thread;
  std::thread reviewer([&] {
    while (answered < total) {
      client.AnswerPending(answer);
      io.poll();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < calls_per_thread; ++i) {
        call(i, [&](bool is_positive) {
          if (is_positive) ++positive;
          ++answered;
        });
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  reviewer.join();
  return ConcurrentCalls{answered, positive};
}

daemon::HttpResult Created(std::string body) {
  daemon::HttpResult result;
  result.http_status = 201;
  result.body = std::move(body);
  return result;
}

std::string TokenReviewAuthenticated(const ReviewedUser& user,
                                     const std::vector<std::string>& audiences,
                                     const std::string& token) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  StartTokenReview(writer, token);
  writer.Key("status");
  writer.StartObject();
  writer.Key("authenticated");
  writer.Bool(true);
  writer.Key("user");
  writer.StartObject();
  writer.Key("username");
  String(writer, user.username);
  if (!user.uid.empty()) {
    writer.Key("uid");
    String(writer, user.uid);
  }
  writer.Key("groups");
  Strings(writer, user.groups);
  if (!user.extra.empty()) {
    writer.Key("extra");
    writer.StartObject();
    for (const auto& [key, values] : user.extra) {
      String(writer, key);
      Strings(writer, values);
    }
    writer.EndObject();
  }
  writer.EndObject();
  writer.Key("audiences");
  Strings(writer, audiences);
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string TokenReviewUnauthenticated(const std::string& error, const std::string& token) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  StartTokenReview(writer, token);
  writer.Key("status");
  writer.StartObject();
  writer.Key("user");
  writer.StartObject();
  writer.EndObject();
  if (!error.empty()) {
    writer.Key("error");
    String(writer, error);
  }
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string SubjectAccessReviewAnswer(bool allowed, const std::string& reason) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  StartReview(writer, "SubjectAccessReview", "authorization.k8s.io/v1");
  writer.Key("spec");
  writer.StartObject();
  writer.EndObject();
  writer.Key("status");
  writer.StartObject();
  writer.Key("allowed");
  writer.Bool(allowed);
  if (!reason.empty()) {
    writer.Key("reason");
    String(writer, reason);
  }
  writer.EndObject();
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::shared_ptr<spdlog::logger> StringLogger(std::ostringstream& out, const std::string& name) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("[%l] [%n] %v"));
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  logger->set_level(spdlog::level::trace);
  return logger;
}

}  // namespace informerd::test
