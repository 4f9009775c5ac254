#include "core/http_status.h"

namespace informerd::core {

absl::StatusCode StatusCodeForHttpError(int http_status) {
  switch (http_status) {
    case 0:
      return absl::StatusCode::kUnavailable;
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    case 502:
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      break;
  }
  if (http_status >= 400 && http_status <= 499) return absl::StatusCode::kFailedPrecondition;
  if (http_status >= 500 && http_status <= 599) return absl::StatusCode::kInternal;
  return absl::StatusCode::kUnknown;
}

}  // namespace informerd::core
