// Test support for daemon/security's in-process tests.
//
// Outcome and Record: what an asynchronous callback was called with, and how often.
//
// FakeReviewClient: a daemon::ReviewClient whose answers the test gives, one POST at a time, for
// the in-process tests of daemon/security. No sockets and no threads: every POST is recorded and
// held until the test answers it; the answer is posted to a strand of the test's io_context and
// reaches the caller when the test runs it (io.poll()), never inside Post() or Answer().
// Single-threaded, except Post() and AnswerPending(), which may race each other (for tests that
// call the code under test from several threads). Also: the answer bodies the apiserver sends
// (kube-apiserver 1.20's shapes), and a logger whose lines the test reads.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "daemon/kube/review_client.h"

namespace informerd::test {

// The last result a callback made by Record was called with (`result`, Unknown "not called"
// until then) and how many times it was called. `Result`: an absl::StatusOr. An Outcome must
// outlive its callback: keep it as long as a review that may still answer.
template <typename Result>
struct Outcome {
  int calls = 0;
  Result result = absl::UnknownError("not called");
};

template <typename Result>
std::function<void(Result)> Record(Outcome<Result>& outcome) {
  return [&outcome](Result result) {
    ++outcome.calls;
    outcome.result = std::move(result);
  };
}

class FakeReviewClient final : public daemon::ReviewClient {
 public:
  struct Request {
    std::string path;
    std::string body;
    PostCallback done;
    bool answered = false;
  };

  explicit FakeReviewClient(boost::asio::io_context& io);

  void Post(std::string path, std::string json_body, PostCallback done) override;
  Strand strand() const override { return strand_; }

  // Every POST, oldest first.
  const std::vector<Request>& requests() const { return requests_; }
  std::size_t unanswered() const;
  // Answers POST `index` (once). The callback runs when the test next runs the io_context.
  void Answer(std::size_t index, daemon::HttpResult result);
  // Answers the newest POST.
  void AnswerLast(daemon::HttpResult result) { Answer(requests_.size() - 1, std::move(result)); }
  // Answers every POST not answered yet with answer(request); how many.
  std::size_t AnswerPending(const std::function<daemon::HttpResult(const Request&)>& answer);

 private:
  Strand strand_;
  mutable std::mutex mu_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<Request> requests_;
};

// Runs `threads` threads that each call `call(i, done)` for i in [0, calls_per_thread), while
// another thread answers every pending POST of `client` with answer(request) and runs `io`,
// until every call's `done` has run. `done(positive)`: the code under test answered, positively
// or not. Returns how many `done`s ran and how many of them were positive.
struct ConcurrentCalls {
  int answered = 0;
  int positive = 0;
};
ConcurrentCalls CallFromThreads(
    FakeReviewClient& client, boost::asio::io_context& io, int threads, int calls_per_thread,
    const std::function<daemon::HttpResult(const FakeReviewClient::Request&)>& answer,
    const std::function<void(int i, std::function<void(bool positive)> done)>& call);

// A 201 Created answer with `body`, as the apiserver answers a review.
daemon::HttpResult Created(std::string body);

struct ReviewedUser {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
};

// A TokenReview answer: authenticated as `user`, valid for `audiences`. The apiserver echoes the
// token reviewed in spec.token: `token`.
std::string TokenReviewAuthenticated(const ReviewedUser& user,
                                     const std::vector<std::string>& audiences,
                                     const std::string& token = "");
// A TokenReview answer: not authenticated, with status.error `error` (omitted when empty).
std::string TokenReviewUnauthenticated(const std::string& error, const std::string& token = "");
// A SubjectAccessReview answer.
std::string SubjectAccessReviewAnswer(bool allowed, const std::string& reason);

// A logger named `name` writing every line, from trace up, as "[level] [name] message" into `out`.
std::shared_ptr<spdlog::logger> StringLogger(std::ostringstream& out,
                                             const std::string& name = "test");

}  // namespace informerd::test
