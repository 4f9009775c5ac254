#include "daemon/security/access_control.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>

#include "fmt/format.h"

namespace informerd::daemon {
namespace {

// `text` as a JSON string: quotes, backslashes and control characters escaped, so that a name
// cannot forge other fields of the line or another line.
std::string Quoted(const std::string& text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

// One Authorize: the answers as they arrive, judged when the last one is in.
struct PendingChecks {
  PendingChecks(core::UserInfo user, std::vector<core::ResourceAttributes> needed,
                AccessControl::AuthorizeCallback done)
      : user(std::move(user)),
        needed(std::move(needed)),
        answers(this->needed.size()),
        remaining(this->needed.size()),
        done(std::move(done)) {}

  // Records answer `index`; the last one judges and calls `done`.
  void Answer(std::size_t index, absl::StatusOr<AccessDecision> answer) {
    {
      std::lock_guard<std::mutex> lock(mu);
      answers[index] = std::move(answer);
      if (--remaining > 0) return;
    }
    done(Judge());
  }

  absl::Status Judge() const {
    for (std::size_t i = 0; i < needed.size(); ++i) {
      if (answers[i]->ok() && !(*answers[i])->allowed) {
        std::string message = core::DescribeDenial(user, needed[i]);
        if (!(*answers[i])->reason.empty()) message += ": " + (*answers[i])->reason;
        return absl::PermissionDeniedError(message);
      }
    }
    for (const auto& answer : answers) {
      if (!answer->ok()) return absl::UnavailableError(answer->status().message());
    }
    return absl::OkStatus();
  }

  const core::UserInfo user;
  const std::vector<core::ResourceAttributes> needed;
  std::mutex mu;
  std::vector<std::optional<absl::StatusOr<AccessDecision>>> answers;
  std::size_t remaining;
  AccessControl::AuthorizeCallback done;
};

// Every check of `needed` asked at once; `done` when the last answer is in.
void AuthorizeAll(Authorizer& authorizer, const core::UserInfo& user,
                  std::vector<core::ResourceAttributes> needed,
                  AccessControl::AuthorizeCallback done) {
  if (needed.empty()) return done(absl::OkStatus());
  auto pending = std::make_shared<PendingChecks>(user, std::move(needed), std::move(done));
  for (std::size_t i = 0; i < pending->needed.size(); ++i) {
    authorizer.Authorize(pending->user, pending->needed[i],
                         [pending, i](absl::StatusOr<AccessDecision> answer) {
                           pending->Answer(i, std::move(answer));
                         });
  }
}

}  // namespace

const char* AuditDecisionName(AuditDecision decision) {
  switch (decision) {
    case AuditDecision::kAllow:
      return "allow";
    case AuditDecision::kDeny:
      return "deny";
    case AuditDecision::kError:
      return "error";
    case AuditDecision::kUnauthenticated:
      return "unauthenticated";
  }
  return "error";
}

AuditDecision AuditDecisionFor(const absl::Status& access) {
  switch (access.code()) {
    case absl::StatusCode::kOk:
      return AuditDecision::kAllow;
    case absl::StatusCode::kUnauthenticated:
      return AuditDecision::kUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return AuditDecision::kDeny;
    default:
      return AuditDecision::kError;
  }
}

std::string FormatAuditRecord(const AuditRecord& record) {
  return fmt::format("user={} peer={} method={} resource={} namespace={} decision={} code={}",
                     Quoted(record.user), Quoted(record.peer), Quoted(record.method),
                     Quoted(record.resource), Quoted(record.namespace_name),
                     AuditDecisionName(record.decision), absl::StatusCodeToString(record.code));
}

AccessControl::AccessControl(Authenticator& authenticator, Authorizer& authorizer,
                             std::shared_ptr<spdlog::logger> audit)
    : authenticator_(authenticator), authorizer_(authorizer), audit_(std::move(audit)) {}

void AccessControl::Authenticate(const CallCredentials& credentials, Authenticator::Callback done) {
  authenticator_.Authenticate(credentials, std::move(done));
}

void AccessControl::Authorize(const core::UserInfo& user,
                              std::vector<core::ResourceAttributes> needed,
                              AuthorizeCallback done) {
  AuthorizeAll(authorizer_, user, std::move(needed), std::move(done));
}

void AccessControl::Check(const CallCredentials& credentials,
                          std::vector<core::ResourceAttributes> needed, CheckCallback done) {
  // The authorizer, not this object, is what the answer needs: it may come after this is gone.
  authenticator_.Authenticate(credentials, [authorizer = &authorizer_, needed = std::move(needed),
                                            done = std::move(done)](
                                               absl::StatusOr<core::UserInfo> user) mutable {
    if (!user.ok()) return done(user.status());
    core::UserInfo who = *user;
    AuthorizeAll(*authorizer, who, std::move(needed),
                 [user = *std::move(user), done = std::move(done)](absl::Status access) mutable {
                   if (!access.ok()) return done(access);
                   done(std::move(user));
                 });
  });
}

void AccessControl::Audit(const AuditRecord& record) const {
  if (audit_) audit_->info("{}", FormatAuditRecord(record));
}

}  // namespace informerd::daemon
