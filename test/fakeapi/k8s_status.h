// ApiStatus: the `Status` object (kind: Status) the apiserver answers errors with, and the
// constructors for the errors the fake produces, with upstream's reasons and messages
// (k8s.io/apimachinery/pkg/api/errors/errors.go).
//
// Values; built by the request handler on the I/O thread, or by tests to compare against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "test/fakeapi/list_options.h"

namespace informerd::fakeapi {

struct ApiStatus {
  struct Cause {
    std::string reason;
    std::string message;
    std::string field;
  };
  int code = 500;
  std::string reason;   // "Expired", "NotFound", ... ; empty for reason "" (unknown).
  std::string message;
  // details; all optional.
  std::string details_name;
  std::string details_group;
  std::string details_kind;
  std::vector<Cause> causes;
  int retry_after_seconds = 0;

  // {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...,"code":N}
  std::string ToJson() const;
};

ApiStatus NotFoundStatus(const std::string& plural, const std::string& group,
                         const std::string& name);
// A path the server does not serve at all (a removed CRD, an unknown group).
ApiStatus PathNotFoundStatus();
ApiStatus BadRequestStatus(const std::string& message);
ApiStatus InvalidListOptionsStatus(const std::vector<FieldError>& errors);
// HTTP 410 with reason Expired: "too old resource version: X (Y)".
ApiStatus TooOldResourceVersionStatus(std::uint64_t requested, std::uint64_t oldest);
// HTTP 410 on a LIST whose continue token predates the compaction.
ApiStatus ExpiredContinueStatus();
// HTTP 410 on a LIST at a compacted revision (exact, or legacy with a limit), worded as etcd3's
// store words it: "The resourceVersion for the provided list is too old."
ApiStatus ExpiredListStatus();
ApiStatus UnauthorizedStatus();
ApiStatus TooManyRequestsStatus(int retry_after_seconds);
ApiStatus ServiceUnavailableStatus(int retry_after_seconds);
ApiStatus MethodNotAllowedStatus(const std::string& method);
ApiStatus NotAcceptableStatus();
// 504 for an RV newer than the server has: "Timeout: Too large resource version: X, current: Y".
ApiStatus TooLargeResourceVersionStatus(std::uint64_t requested, std::uint64_t current);
// A Status for an arbitrary scripted error.
ApiStatus GenericStatus(int code, const std::string& reason, const std::string& message);

}  // namespace informerd::fakeapi
