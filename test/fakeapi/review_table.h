// ReviewTable: who the fake apiserver's TokenReview says a token is, and what its
// SubjectAccessReview says a user may do, as the test configures them. The fake's answers to
// informerd's delegated authentication and authorization (POST tokenreviews and
// subjectaccessreviews, see review_api.h) come from here, so a test decides each identity and
// each permission without a real apiserver, and changes them at run time (a revoked binding).
//
// Tokens: an unknown token is not authenticated ("invalid bearer token"). A known one is
// authenticated when it is valid for the audiences the review asks for, as the apiserver checks
// them: a review without audiences means the apiserver's own (kApiServerAudience); with
// audiences, at least one of them must be the token's, and the answer lists those that are. A
// token refused for its audiences gets kube-apiserver 1.20's error: "invalid bearer token" for an
// audience-agnostic token (a static token file's: TokenIdentity::audiences empty), the audiences
// named for one that carries its own (a service account token from a TokenRequest).
//
// Access: rules in the order added; the first that matches a review decides. No match is RBAC's
// plain denial (allowed false, no reason): the default is deny.
//
// Owned by FakeApiServer; written from the test thread and read by connection handlers on the
// I/O thread, hence the lock. Values in, values out.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace informerd::fakeapi {

// The audience of a token the apiserver issued for itself (its --api-audiences default).
inline constexpr char kApiServerAudience[] = "https://kubernetes.default.svc";

// Who a token is (authentication.k8s.io/v1 UserInfo), and whom it was issued for.
struct TokenIdentity {
  std::string username;
  std::string uid;
  // As answered: the apiserver's own answers include "system:authenticated"; write it when the
  // test wants it.
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  // The audiences the token is valid for; empty: an audience-agnostic token, valid for
  // kApiServerAudience only.
  std::vector<std::string> audiences;
};

struct TokenReviewOutcome {
  bool authenticated = false;
  TokenIdentity user;                  // When authenticated.
  std::vector<std::string> audiences;  // When authenticated: the audiences it is valid for.
  std::string error;                   // When not: the apiserver's wording.
};

// What a SubjectAccessReview asks: spec.user, spec.groups and spec.resourceAttributes.
struct AccessQuery {
  std::string user;
  std::vector<std::string> groups;
  std::string verb;
  std::string group;
  std::string resource;
  std::string namespace_name;
  std::string name;
};

// Which reviews a rule answers. Each field matches its value exactly, or anything when "*" (the
// default). `user` may also be "group:NAME", which matches a review whose groups include NAME.
struct AccessRule {
  std::string user = "*";
  std::string verb = "*";
  std::string group = "*";
  std::string resource = "*";
  std::string namespace_name = "*";
  std::string name = "*";

  bool Matches(const AccessQuery& query) const;
  bool operator==(const AccessRule& other) const;
};

// A SubjectAccessReview's status.
struct AccessAnswer {
  bool allowed = false;
  bool denied = false;  // An explicit denial (only meaningful when not allowed).
  std::string reason;
  std::string evaluation_error;
};

class ReviewTable {
 public:
  // Adds or replaces the identity of `token`.
  void AddToken(const std::string& token, TokenIdentity identity);
  void RemoveToken(const std::string& token);

  // Adds `rule` at the end, or replaces the answer of an equal rule where it stands.
  void SetAccess(const AccessRule& rule, AccessAnswer answer);
  // SetAccess with allowed true / false and `reason`. A Deny stops the rules after it from
  // allowing; its answer is RBAC's (allowed false, `denied` unset): SetAccess for an explicit
  // denial.
  void Allow(const AccessRule& rule, std::string reason = "");
  void Deny(const AccessRule& rule, std::string reason = "");
  // Removes an equal rule; false if there was none.
  bool RemoveAccess(const AccessRule& rule);
  void ClearAccess();

  // The decisions the review endpoints answer with.
  TokenReviewOutcome ReviewToken(const std::string& token,
                                 const std::vector<std::string>& audiences) const;
  AccessAnswer ReviewAccess(const AccessQuery& query) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, TokenIdentity> tokens_;
  std::vector<std::pair<AccessRule, AccessAnswer>> rules_;
};

}  // namespace informerd::fakeapi
