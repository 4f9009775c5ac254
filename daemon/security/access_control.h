// AccessControl: what the gRPC service asks before it reads anything for a caller, and where it
// records what each call did.
//
//   Authenticate(credentials)       → the user, or Unauthenticated / Unavailable (Authenticator)
//   Authorize(user, needed)         → OK when every check in `needed` is allowed; else
//                                     PermissionDenied for the first check denied (in the order
//                                     given), "<core::DescribeDenial>[: <the apiserver's
//                                     reason>]"; else Unavailable when a check could not be made
//                                     (never allowed by default). A long stream calls it again
//                                     every recheck_interval() to re-authorize.
//   Check(credentials, needed)      → both: the user when authenticated and allowed.
//   Audit(record)                   → one info line per finished call on the "audit" logger.
//
// The checks of one Authorize run at once (a Subscribe's list and watch cost one round trip when
// neither is cached); a denial wins over a failed check, since it is the answer.
//
// Threads: every member may be called from any thread; callbacks run exactly once, inline when
// every answer is known at once, else on the thread of the last answer (the review client's
// strand). The authenticator and authorizer must outlive this object and every answer still to
// come from them (the daemon declares them before the service and destroys them after it).
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/user_info.h"
#include "daemon/security/authenticator.h"
#include "daemon/security/authorizer.h"

namespace informerd::daemon {

// The access decision an audit line reports.
enum class AuditDecision { kAllow, kDeny, kError, kUnauthenticated };

// "allow", "deny", "error", "unauthenticated".
const char* AuditDecisionName(AuditDecision decision);

// The decision an access check's result stands for: OK allow, Unauthenticated unauthenticated,
// PermissionDenied deny, any other error (Unavailable) error.
AuditDecision AuditDecisionFor(const absl::Status& access);

// One finished call, as the audit line records it: who, from where, what, and how it ended.
// Never object contents, selectors or credentials.
struct AuditRecord {
  std::string user;            // the authenticated user's name; empty when there is none
  std::string peer;            // CallCredentials::peer
  std::string method;          // the RPC: "Subscribe", "List", "Get", "ListResources"
  std::string resource;        // as resolved ("deployments.apps") or, before that, as asked
  std::string namespace_name;  // empty: all namespaces, or not namespaced
  AuditDecision decision = AuditDecision::kError;
  absl::StatusCode code = absl::StatusCode::kOk;  // the call's final status
};

// The audit line's text, as logfmt with JSON-quoted values:
//   user="alice" peer="ipv4:10.0.0.7:51234" method="List" resource="pods" namespace="team-b"
//   decision=deny code=PERMISSION_DENIED
std::string FormatAuditRecord(const AuditRecord& record);

class AccessControl {
 public:
  using CheckCallback = std::function<void(absl::StatusOr<core::UserInfo>)>;
  using AuthorizeCallback = std::function<void(absl::Status)>;

  // `audit`: the "audit" logger; null turns auditing off (--audit-log=false).
  AccessControl(Authenticator& authenticator, Authorizer& authorizer,
                std::shared_ptr<spdlog::logger> audit);

  void Authenticate(const CallCredentials& credentials, Authenticator::Callback done);
  void Authorize(const core::UserInfo& user, std::vector<core::ResourceAttributes> needed,
                 AuthorizeCallback done);
  void Check(const CallCredentials& credentials, std::vector<core::ResourceAttributes> needed,
             CheckCallback done);

  // Authorizer::recheck_interval(): how often a long stream is authorized again; zero: never.
  std::chrono::milliseconds recheck_interval() const { return authorizer_.recheck_interval(); }

  // Writes the record's line at info level when auditing is on.
  void Audit(const AuditRecord& record) const;
  bool audit_enabled() const { return audit_ != nullptr; }

 private:
  Authenticator& authenticator_;
  Authorizer& authorizer_;
  const std::shared_ptr<spdlog::logger> audit_;
};

}  // namespace informerd::daemon
