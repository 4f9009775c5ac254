// The one table from an HTTP status to an absl::StatusCode, for requests to kube-apiserver that
// failed. The API client (daemon/kube/apiserver_client.h, HttpResult::status) and the reflector
// (core/reflector.h, ApiError::ToStatus) both use it, so the same answer from the server carries
// the same code whichever of them reports it. Pure function: any thread.
//
// The meanings are the apiserver's (the Status reasons it sends with each code, which client-go's
// k8s.io/apimachinery/pkg/api/errors turns into IsBadRequest, IsNotFound, ...), translated into
// the codes' own meanings (absl/status/status.h: whether retrying can help, and whether the
// request or the system is what has to change):
//
//   HTTP      Code                Why
//   0         Unavailable         No response at all (connection refused or reset, TLS failure,
//                                 a proxy that went away): the server cannot be reached now, and
//                                 the same request may well work later.
//   400, 422  InvalidArgument     BadRequest and Invalid: the apiserver rejected the request
//                                 itself (a malformed selector, a query parameter this server
//                                 version forbids). Sending it again changes nothing.
//   401       Unauthenticated     Unauthorized: the credentials were missing, expired or unknown.
//   403       PermissionDenied    Forbidden: authenticated, but RBAC does not allow the verb.
//   404       NotFound            The resource type or object does not exist (on this server).
//   409       Aborted             Conflict: a concurrent change won; retrying at a higher level
//                                 (read again, then act) is the remedy.
//   410       OutOfRange          Expired/Gone: the resourceVersion or continue token is older
//                                 than what the server keeps, the same idea as informerd's own
//                                 OUT_OF_RANGE for a resource_version older than its window.
//   429       ResourceExhausted   TooManyRequests: priority-and-fairness or max-in-flight
//                                 throttling; retry after Retry-After.
//   other 4xx FailedPrecondition  405 (a verb the resource does not serve), 406 (an Accept type
//                                 it cannot produce), 413, 415 and the rest. informerd's own
//                                 code builds every request, and the apiserver reports the
//                                 argument errors it checks as 400 or 422; any other 4xx says
//                                 that this server, or a proxy in front of it, cannot serve such
//                                 a request in its present configuration (an aggregated API
//                                 without watch, an older version), not that an argument is
//                                 malformed. Retrying unchanged does not help; the server side
//                                 has to change (client-go's IsMethodNotSupported: "not
//                                 supported by the server"). InvalidArgument would also, once
//                                 surfaced over gRPC, tell informerd's clients that their own
//                                 request was bad.
//   500       Internal            InternalError: the server failed (an etcd error, a panic).
//   502, 503  Unavailable         503 ServiceUnavailable: the apiserver or an aggregated API is
//                                 not ready or sheds load (often with Retry-After). A 502 does
//                                 not come from the apiserver at all: a proxy or load balancer
//                                 in front of it could not get an answer from it, which for
//                                 informerd is the same situation as no response (client-go's
//                                 generic mapping names it InternalError, but retries it like
//                                 any 5xx). Both are transient by nature.
//   504       DeadlineExceeded    Timeout: the server gave up waiting (including "Too large
//                                 resource version", an apiserver behind its peers).
//   other 5xx Internal            501, 505, 507 and the rest: a server fault that HTTP does not
//                                 describe as temporary, unlike 502/503/504. client-go reports
//                                 every 5xx it has no name for as InternalError too.
//                                 (Unavailable would invite callers to retry a request the
//                                 server does not implement.)
//   other     Unknown             1xx, 2xx and 3xx are not failures the apiserver sends (the
//                                 client follows no redirects); a failure that still arrives with
//                                 one (a watch stream broken after its 200 header) has no better
//                                 code. Likewise numbers outside 100-599.
#pragma once

#include "absl/status/status.h"

namespace informerd::core {

// The code for a request that failed with `http_status` (0: no response); see the table above.
// Never kOk: every input is a failure.
absl::StatusCode StatusCodeForHttpError(int http_status);

}  // namespace informerd::core
