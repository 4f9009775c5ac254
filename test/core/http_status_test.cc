// Specification of core/http_status.*: the one table from the HTTP status of a failed apiserver
// request to an absl::StatusCode, entry by entry, and its ranges.
#include "core/http_status.h"

#include <catch2/catch.hpp>
#include <string>

namespace informerd::core {
namespace {

// The code's name, so that a failed CHECK says which code it got.
std::string CodeFor(int http_status) {
  return absl::StatusCodeToString(StatusCodeForHttpError(http_status));
}
std::string Name(absl::StatusCode code) { return absl::StatusCodeToString(code); }

TEST_CASE("no response at all is Unavailable") {
  CHECK(CodeFor(0) == Name(absl::StatusCode::kUnavailable));
}

TEST_CASE("the 4xx codes the apiserver sends map to their meaning") {
  CHECK(CodeFor(400) == Name(absl::StatusCode::kInvalidArgument));
  CHECK(CodeFor(422) == Name(absl::StatusCode::kInvalidArgument));
  CHECK(CodeFor(401) == Name(absl::StatusCode::kUnauthenticated));
  CHECK(CodeFor(403) == Name(absl::StatusCode::kPermissionDenied));
  CHECK(CodeFor(404) == Name(absl::StatusCode::kNotFound));
  CHECK(CodeFor(409) == Name(absl::StatusCode::kAborted));
  CHECK(CodeFor(410) == Name(absl::StatusCode::kOutOfRange));
  CHECK(CodeFor(429) == Name(absl::StatusCode::kResourceExhausted));
}

TEST_CASE("any other 4xx is FailedPrecondition") {
  for (int http_status :
       {402, 405, 406, 407, 408, 411, 412, 413, 414, 415, 418, 421, 423, 426, 428, 431, 451, 499}) {
    INFO(http_status);
    CHECK(CodeFor(http_status) == Name(absl::StatusCode::kFailedPrecondition));
  }
}

TEST_CASE("5xx: 500 Internal, 502 and 503 Unavailable, 504 DeadlineExceeded") {
  CHECK(CodeFor(500) == Name(absl::StatusCode::kInternal));
  CHECK(CodeFor(502) == Name(absl::StatusCode::kUnavailable));
  CHECK(CodeFor(503) == Name(absl::StatusCode::kUnavailable));
  CHECK(CodeFor(504) == Name(absl::StatusCode::kDeadlineExceeded));
}

TEST_CASE("any other 5xx is Internal") {
  for (int http_status : {501, 505, 506, 507, 508, 510, 511, 520, 599}) {
    INFO(http_status);
    CHECK(CodeFor(http_status) == Name(absl::StatusCode::kInternal));
  }
}

TEST_CASE("statuses that are not failures, or not HTTP, are Unknown and never OK") {
  for (int http_status :
       {100, 101, 200, 201, 204, 206, 299, 301, 302, 304, 307, 399, 600, 999, -1, 1, 99}) {
    INFO(http_status);
    CHECK(CodeFor(http_status) == Name(absl::StatusCode::kUnknown));
  }
  for (int http_status = -10; http_status < 1000; ++http_status) {
    INFO(http_status);
    CHECK(StatusCodeForHttpError(http_status) != absl::StatusCode::kOk);
  }
}

}  // namespace
}  // namespace informerd::core
