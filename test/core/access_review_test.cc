// Specification of core/access_review.*: TokenReview and SubjectAccessReview request bodies as
// the apiserver reads them, and its answers parsed. The answer bodies are kube-apiserver 1.20's,
// captured from test/cluster's apiserver (compact JSON, as it answers a non-curl client); the
// service account tokens in them are shortened.
#include "core/access_review.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "core/user_info.h"

namespace informerd::core {
namespace {

// A projected service account token (audience "informerd") with its signature shortened.
const std::string kToken =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Ik0wSnJldkFVYng5R2g2cW0yMTExU0hSTG80bUdlT3FRd2QwUnlGdkJxZ3cifQ."
    "eyJhdWQiOlsiaW5mb3JtZXJkIl0sInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDp0ZWFtLWE6cmVhZGVyIn0."
    "NW2MH97LRkJ57Nw6Z8edWZ0GPY9FTe3t9hHGbFnck";

// TokenReview{token, audiences: [informerd]} for a pod-bound service account token.
std::string AuthenticatedAnswer() {
  return R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authentication.k8s.io/v1","time":"2026-12-07T06:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:audiences":{},"f:token":{}}}}]},"spec":{"token":")" +
         kToken +
         R"(","audiences":["informerd"]},"status":{"authenticated":true,"user":{"username":"system:serviceaccount:team-a:reader","uid":"0f891e8c-5178-4539-9d50-5396ad101f8d","groups":["system:serviceaccounts","system:serviceaccounts:team-a","system:authenticated"],"extra":{"authentication.kubernetes.io/pod-name":["web-1"],"authentication.kubernetes.io/pod-uid":["fb5ed4c7-e6d8-4133-b93a-ac8313c1eaaa"]}},"audiences":["informerd"]}})";
}

// The same token reviewed for audience "other".
std::string WrongAudienceAnswer() {
  return R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authentication.k8s.io/v1","time":"2026-12-07T06:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:audiences":{},"f:token":{}}}}]},"spec":{"token":")" +
         kToken +
         R"(","audiences":["other"]},"status":{"user":{},"error":"[invalid bearer token, token audiences [\"informerd\"] is invalid for the target audiences [\"other\"]]"}})";
}

constexpr char kInvalidTokenAnswer[] =
    R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authentication.k8s.io/v1","time":"2026-12-07T06:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:token":{}}}}]},"spec":{"token":"not-a-token"},"status":{"user":{},"error":"invalid bearer token"}})";

// A static token (--token-auth-file) reviewed without audiences: the apiserver's own audience.
constexpr char kStaticTokenAnswer[] =
    R"({"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authentication.k8s.io/v1","time":"2026-12-07T06:23:29Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:token":{}}}}]},"spec":{"token":"811e71de45e881b04ad7cb5a24a67a5184d0ec8dac1e271c"},"status":{"authenticated":true,"user":{"username":"alice","uid":"uid-alice","groups":["system:authenticated"]},"audiences":["https://kubernetes.default.svc"]}})";

constexpr char kAllowedAnswer[] =
    R"({"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authorization.k8s.io/v1","time":"2026-12-07T06:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:groups":{},"f:resourceAttributes":{".":{},"f:namespace":{},"f:resource":{},"f:verb":{}},"f:user":{}}}}]},"spec":{"resourceAttributes":{"namespace":"team-b","verb":"list","resource":"pods"},"user":"alice","groups":["system:authenticated"]},"status":{"allowed":true,"reason":"RBAC: allowed by ClusterRoleBinding \"informerd-test-reader-alice\" of ClusterRole \"informerd-test-reader\" to User \"alice\""}})";

// RBAC's plain denial: no reason at all.
constexpr char kDeniedAnswer[] =
    R"({"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authorization.k8s.io/v1","time":"2026-12-07T06:23:47Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:groups":{},"f:resourceAttributes":{".":{},"f:namespace":{},"f:resource":{},"f:verb":{}},"f:user":{}}}}]},"spec":{"resourceAttributes":{"namespace":"team-b","verb":"list","resource":"pods"},"user":"bob","groups":["system:authenticated"]},"status":{"allowed":false}})";

// A RoleBinding naming a Role that does not exist: RBAC denies, and says why.
constexpr char kDeniedMissingRoleAnswer[] =
    R"({"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null,"managedFields":[{"manager":"informerd-test","operation":"Update","apiVersion":"authorization.k8s.io/v1","time":"2026-12-07T06:23:52Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:groups":{},"f:resourceAttributes":{".":{},"f:namespace":{},"f:resource":{},"f:verb":{}},"f:user":{}}}}]},"spec":{"resourceAttributes":{"namespace":"team-b","verb":"list","resource":"pods"},"user":"bob","groups":["system:authenticated"]},"status":{"allowed":false,"reason":"RBAC: role.rbac.authorization.k8s.io \"missing\" not found"}})";

// What the apiserver sends for a request it rejects (HTTP 400): not an answer to parse.
constexpr char kStatusBody[] =
    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"token is required for TokenReview in authentication","reason":"BadRequest","code":400})";

rapidjson::Document ParseJson(const std::string& json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  REQUIRE_FALSE(document.HasParseError());
  REQUIRE(document.IsObject());
  return document;
}

std::string String(const rapidjson::Value& value) {
  REQUIRE(value.IsString());
  return std::string(value.GetString(), value.GetStringLength());
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// ---- TokenReview requests.

TEST_CASE("a TokenReview request carries the token and the audiences") {
  CHECK(
      BuildTokenReview("abc.def", {"informerd", "other"}) ==
      R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"abc.def","audiences":["informerd","other"]}})");
}

TEST_CASE("without audiences the request leaves them out: the apiserver's own audiences apply") {
  CHECK(BuildTokenReview("abc", {}) ==
        R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"abc"}})");
}

TEST_CASE("any token is a valid JSON string in the request, quotes and control bytes escaped") {
  const std::string token = std::string("a\"b\\c\nd\te") + '\0' + "f";
  const rapidjson::Document request = ParseJson(BuildTokenReview(token, {}));
  CHECK(String(request["spec"]["token"]) == token);
}

TEST_CASE("bytes that are not UTF-8 become U+FFFD, so that the request stays valid JSON") {
  const rapidjson::Document request =
      ParseJson(BuildTokenReview("ok\xff\xc3(\xed\xa0\x80\xf4\x90\x80\x80\xc0\xafz", {}));
  // Each ill-formed byte is replaced on its own (a lone 0xff; a lead byte 0xc3 without its
  // continuation; a surrogate; a code point above U+10FFFF; an overlong '/').
  const std::string r = "\xEF\xBF\xBD";
  CHECK(String(request["spec"]["token"]) ==
        "ok" + r + r + "(" + r + r + r + r + r + r + r + r + r + "z");
  // Well-formed multi-byte text is kept.
  CHECK(String(ParseJson(
            BuildTokenReview("zo\xc3\xab \xe2\x82\xac \xf0\x9f\x94\x91", {}))["spec"]["token"]) ==
        "zo\xc3\xab \xe2\x82\xac \xf0\x9f\x94\x91");
}

// ---- TokenReview answers.

TEST_CASE("an authenticated answer gives the user, groups, uid, extra and audiences") {
  absl::StatusOr<TokenReviewResult> result = ParseTokenReview(AuthenticatedAnswer());
  REQUIRE(result.ok());
  CHECK(result->authenticated);
  CHECK(result->user.name == "system:serviceaccount:team-a:reader");
  CHECK(result->user.uid == "0f891e8c-5178-4539-9d50-5396ad101f8d");
  CHECK(result->user.groups == std::vector<std::string>{"system:serviceaccounts",
                                                        "system:serviceaccounts:team-a",
                                                        "system:authenticated"});
  CHECK(result->user.extra ==
        std::map<std::string, std::vector<std::string>>{
            {"authentication.kubernetes.io/pod-name", {"web-1"}},
            {"authentication.kubernetes.io/pod-uid", {"fb5ed4c7-e6d8-4133-b93a-ac8313c1eaaa"}}});
  CHECK(result->audiences == std::vector<std::string>{"informerd"});
  CHECK(result->error.empty());
}

TEST_CASE("a token reviewed without audiences is valid for the apiserver's") {
  absl::StatusOr<TokenReviewResult> result = ParseTokenReview(kStaticTokenAnswer);
  REQUIRE(result.ok());
  CHECK(result->authenticated);
  CHECK(result->user.name == "alice");
  CHECK(result->user.uid == "uid-alice");
  CHECK(result->user.groups == std::vector<std::string>{"system:authenticated"});
  CHECK(result->user.extra.empty());
  CHECK(result->audiences == std::vector<std::string>{"https://kubernetes.default.svc"});
}

TEST_CASE("an unauthenticated answer gives the apiserver's error and no user") {
  SECTION("wrong audience") {
    absl::StatusOr<TokenReviewResult> result = ParseTokenReview(WrongAudienceAnswer());
    REQUIRE(result.ok());
    CHECK_FALSE(result->authenticated);
    CHECK(result->user == UserInfo{});
    CHECK(result->audiences.empty());
    CHECK(
        result->error ==
        R"([invalid bearer token, token audiences ["informerd"] is invalid for the target audiences ["other"]])");
  }
  SECTION("not a token at all") {
    absl::StatusOr<TokenReviewResult> result = ParseTokenReview(kInvalidTokenAnswer);
    REQUIRE(result.ok());
    CHECK_FALSE(result->authenticated);
    CHECK(result->user == UserInfo{});
    CHECK(result->error == "invalid bearer token");
  }
}

TEST_CASE("null members read as absent, as Go reads them") {
  absl::StatusOr<TokenReviewResult> result = ParseTokenReview(
      R"({"kind":"TokenReview","status":{"authenticated":true,"user":{"username":"u","uid":null,"groups":null,"extra":{"k":null}},"audiences":null,"error":null}})");
  REQUIRE(result.ok());
  CHECK(result->user.name == "u");
  CHECK(result->user.groups.empty());
  CHECK(result->user.extra == std::map<std::string, std::vector<std::string>>{{"k", {}}});
}

TEST_CASE(
    "a malformed TokenReview answer is InvalidArgument naming what is wrong, never the "
    "token") {
  const std::string good = AuthenticatedAnswer();
  const std::string status_start = R"("status":{)";
  struct Case {
    std::string body;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "the TokenReview answer is not valid JSON"},
      {"{\"kind\":\"TokenReview\",\"spec\":{\"token\":\"" + kToken + "\"",
       "the TokenReview answer is not valid JSON"},
      {"[]", "the TokenReview answer is not a JSON object"},
      {kStatusBody, "the TokenReview answer is a Status, not a TokenReview"},
      {Replace(good, R"("kind":"TokenReview")", R"("kind":")" + kToken + "\""),
       "the TokenReview answer is not a TokenReview"},
      {Replace(good, R"("kind":"TokenReview")", R"("kind":7)"),
       "the TokenReview answer is not a TokenReview"},
      {R"({"kind":"TokenReview","spec":{"token":")" + kToken + "\"}}",
       "the TokenReview answer has no status"},
      {R"({"kind":"TokenReview","status":"yes"})",
       "the TokenReview answer has a status that is not an object"},
      {Replace(good, R"("authenticated":true)", R"("authenticated":"true")"),
       "the TokenReview answer has a status.authenticated that is not a boolean"},
      {R"({"kind":"TokenReview","status":{"authenticated":true}})",
       "the TokenReview answer is authenticated but has no status.user"},
      {R"({"kind":"TokenReview","status":{"authenticated":true,"user":[]}})",
       "the TokenReview answer has a status.user that is not an object"},
      {R"({"kind":"TokenReview","status":{"authenticated":true,"user":{}}})",
       "the TokenReview answer is authenticated but status.user.username is empty"},
      {Replace(good, R"("username":"system:serviceaccount:team-a:reader")", R"("username":1)"),
       "the TokenReview answer has a status.user.username that is not a string"},
      {Replace(good, R"("uid":"0f891e8c-5178-4539-9d50-5396ad101f8d")", R"("uid":{})"),
       "the TokenReview answer has a status.user.uid that is not a string"},
      {Replace(good, R"("groups":["system:serviceaccounts",)", R"("groups":[1,)"),
       "the TokenReview answer has a status.user.groups with an item that is not a string"},
      {Replace(good, R"("groups":)", R"("groups":"system:masters","x":)"),
       "the TokenReview answer has a status.user.groups that is not an array"},
      {Replace(good, R"("extra":{)", R"("extra":"x","y":{)"),
       "the TokenReview answer has a status.user.extra that is not an object"},
      {Replace(good, R"(["web-1"])", R"("web-1")"),
       "the TokenReview answer has a status.user.extra value that is not an array"},
      {Replace(good, R"("audiences":["informerd"]}})", R"("audiences":"informerd"}})"),
       "the TokenReview answer has a status.audiences that is not an array"},
      {Replace(good, status_start, status_start + R"("error":["x"],)"),
       "the TokenReview answer has a status.error that is not a string"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    absl::StatusOr<TokenReviewResult> result = ParseTokenReview(c.body);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(result.status().message());
    CHECK_THAT(message, Catch::Matchers::StartsWith(c.expected));
    // The body echoes the token; no part of it may reach the message.
    CHECK(message.find(kToken.substr(0, 12)) == std::string::npos);
    CHECK(message.find(kToken.substr(kToken.size() - 12)) == std::string::npos);
  }
}

TEST_CASE("an unauthenticated answer's user is not looked at") {
  // The apiserver sends "user": {} with no username; that is fine when not authenticated.
  absl::StatusOr<TokenReviewResult> result =
      ParseTokenReview(R"({"kind":"TokenReview","status":{"user":[],"error":"x"}})");
  REQUIRE(result.ok());
  CHECK_FALSE(result->authenticated);
}

// ---- SubjectAccessReview requests.

TEST_CASE("a SubjectAccessReview request is the user and the attributes, as kubectl would send") {
  UserInfo user;
  user.name = "system:serviceaccount:team-a:reader";
  user.uid = "0f891e8c-5178-4539-9d50-5396ad101f8d";
  user.groups = {"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"};
  user.extra = {{"authentication.kubernetes.io/pod-uid", {"fb5ed4c7"}},
                {"authentication.kubernetes.io/pod-name", {"web-1"}}};
  ResourceAttributes attributes;
  attributes.verb = "get";
  attributes.resource = "pods";
  attributes.namespace_name = "team-a";
  attributes.name = "web-1";
  // The field order of the apiserver's own types; extra keys sorted.
  CHECK(
      BuildSubjectAccessReview(user, attributes) ==
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"namespace":"team-a","verb":"get","resource":"pods","name":"web-1"},"user":"system:serviceaccount:team-a:reader","groups":["system:serviceaccounts","system:serviceaccounts:team-a","system:authenticated"],"extra":{"authentication.kubernetes.io/pod-name":["web-1"],"authentication.kubernetes.io/pod-uid":["fb5ed4c7"]},"uid":"0f891e8c-5178-4539-9d50-5396ad101f8d"}})");
}

TEST_CASE("empty fields are left out: cluster scope has no namespace, the core group no group") {
  UserInfo user;
  user.name = "alice";
  ResourceAttributes attributes;
  attributes.verb = "watch";
  attributes.group = "apps";
  attributes.resource = "deployments";
  CHECK(
      BuildSubjectAccessReview(user, attributes) ==
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"watch","group":"apps","resource":"deployments"},"user":"alice"}})");
  attributes.group.clear();
  attributes.resource = "nodes";
  CHECK(
      BuildSubjectAccessReview(AnonymousUser(), attributes) ==
      R"({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"watch","resource":"nodes"},"user":"system:anonymous","groups":["system:unauthenticated"]}})");
}

TEST_CASE("every string of a SubjectAccessReview request round-trips through JSON") {
  UserInfo user;
  user.name = "CN=\"eve\"\n";
  user.uid = "u\\1";
  user.groups = {"g\t1", "g\"2"};
  user.extra = {{"k\"ey", {"v\n1", "v2"}}};
  ResourceAttributes attributes{"list", "example.com", "widgets", "ns", "name\"x"};
  const rapidjson::Document request = ParseJson(BuildSubjectAccessReview(user, attributes));
  const rapidjson::Value& spec = request["spec"];
  CHECK(String(request["apiVersion"]) == "authorization.k8s.io/v1");
  CHECK(String(request["kind"]) == "SubjectAccessReview");
  CHECK(String(spec["user"]) == user.name);
  CHECK(String(spec["uid"]) == user.uid);
  REQUIRE(spec["groups"].Size() == 2);
  CHECK(String(spec["groups"][0]) == "g\t1");
  CHECK(String(spec["groups"][1]) == "g\"2");
  REQUIRE(spec["extra"].HasMember("k\"ey"));
  CHECK(String(spec["extra"]["k\"ey"][0]) == "v\n1");
  CHECK(String(spec["extra"]["k\"ey"][1]) == "v2");
  const rapidjson::Value& resource = spec["resourceAttributes"];
  CHECK(String(resource["verb"]) == "list");
  CHECK(String(resource["group"]) == "example.com");
  CHECK(String(resource["resource"]) == "widgets");
  CHECK(String(resource["namespace"]) == "ns");
  CHECK(String(resource["name"]) == "name\"x");
}

TEST_CASE("a user name that is not UTF-8 still makes a valid request") {
  UserInfo user;
  user.name = "caf\xe9";  // Latin-1
  user.extra = {{"k\xff", {"v\xfe"}}};
  const rapidjson::Document request =
      ParseJson(BuildSubjectAccessReview(user, ResourceAttributes{"list", "", "pods", "", ""}));
  CHECK(String(request["spec"]["user"]) == "caf\xEF\xBF\xBD");
  CHECK(request["spec"]["extra"].HasMember("k\xEF\xBF\xBD"));
}

// ---- SubjectAccessReview answers.

TEST_CASE("an allowed answer gives RBAC's reason") {
  absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(kAllowedAnswer);
  REQUIRE(result.ok());
  CHECK(result->allowed);
  CHECK_FALSE(result->denied);
  CHECK(
      result->reason ==
      R"(RBAC: allowed by ClusterRoleBinding "informerd-test-reader-alice" of ClusterRole "informerd-test-reader" to User "alice")");
  CHECK(result->evaluation_error.empty());
}

TEST_CASE("a denied answer: RBAC's plain denial has no reason") {
  absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(kDeniedAnswer);
  REQUIRE(result.ok());
  CHECK_FALSE(result->allowed);
  CHECK_FALSE(result->denied);
  CHECK(result->reason.empty());
  CHECK(result->evaluation_error.empty());
}

TEST_CASE("a denied answer with a reason") {
  absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(kDeniedMissingRoleAnswer);
  REQUIRE(result.ok());
  CHECK_FALSE(result->allowed);
  CHECK(result->reason == R"(RBAC: role.rbac.authorization.k8s.io "missing" not found)");
}

TEST_CASE("an explicit denial with an evaluation error (a webhook authorizer's answer)") {
  absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(
      R"({"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"resourceAttributes":{"verb":"list","resource":"secrets"},"user":"alice"},"status":{"allowed":false,"denied":true,"reason":"secrets are off limits","evaluationError":"policy \"extra\" could not be evaluated"}})");
  REQUIRE(result.ok());
  CHECK_FALSE(result->allowed);
  CHECK(result->denied);
  CHECK(result->reason == "secrets are off limits");
  CHECK(result->evaluation_error == R"(policy "extra" could not be evaluated)");
}

TEST_CASE("a malformed SubjectAccessReview answer is InvalidArgument naming what is wrong") {
  const std::string good = kAllowedAnswer;
  struct Case {
    std::string body;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"{", "the SubjectAccessReview answer is not valid JSON"},
      {"\"allowed\"", "the SubjectAccessReview answer is not a JSON object"},
      {kStatusBody, "the SubjectAccessReview answer is a Status, not a SubjectAccessReview"},
      {AuthenticatedAnswer(), "the SubjectAccessReview answer is a TokenReview, not a"},
      {R"({"kind":"SubjectAccessReview"})", "the SubjectAccessReview answer has no status"},
      {R"({"kind":"SubjectAccessReview","status":[]})",
       "the SubjectAccessReview answer has a status that is not an object"},
      {R"({"kind":"SubjectAccessReview","status":{"reason":"x"}})",
       "the SubjectAccessReview answer has no status.allowed"},
      {R"({"kind":"SubjectAccessReview","status":{"allowed":null}})",
       "the SubjectAccessReview answer has no status.allowed"},
      {Replace(good, R"("allowed":true)", R"("allowed":"true")"),
       "the SubjectAccessReview answer has a status.allowed that is not a boolean"},
      {Replace(good, R"("allowed":true)", R"("allowed":1)"),
       "the SubjectAccessReview answer has a status.allowed that is not a boolean"},
      {Replace(good, R"("allowed":true)", R"("allowed":false,"denied":"yes")"),
       "the SubjectAccessReview answer has a status.denied that is not a boolean"},
      {Replace(good, R"("allowed":true)", R"("allowed":true,"denied":true)"),
       "the SubjectAccessReview answer has both status.allowed and status.denied true"},
      {R"({"kind":"SubjectAccessReview","status":{"allowed":false,"reason":{}}})",
       "the SubjectAccessReview answer has a status.reason that is not a string"},
      {R"({"kind":"SubjectAccessReview","status":{"allowed":false,"evaluationError":2}})",
       "the SubjectAccessReview answer has a status.evaluationError that is not a string"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(c.body);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(result.status().message()), Catch::Matchers::StartsWith(c.expected));
  }
}

// ---- Round trips: what the builders write is what a reviewer reads back.

TEST_CASE("round trip: the request's user and attributes come back in an answer's spec") {
  UserInfo user;
  user.name = "alice";
  user.groups = {"devs", "system:authenticated"};
  ResourceAttributes attributes{"list", "apps", "deployments", "team-b", ""};
  rapidjson::Document request = ParseJson(BuildSubjectAccessReview(user, attributes));
  // The apiserver answers with the request and a status added.
  rapidjson::Value status(rapidjson::kObjectType);
  status.AddMember("allowed", true, request.GetAllocator());
  request.AddMember("status", status, request.GetAllocator());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  request.Accept(writer);
  absl::StatusOr<AccessReviewResult> result = ParseSubjectAccessReview(buffer.GetString());
  REQUIRE(result.ok());
  CHECK(result->allowed);

  rapidjson::Document token_request = ParseJson(BuildTokenReview(kToken, {"informerd"}));
  CHECK(String(token_request["spec"]["token"]) == kToken);
  CHECK(String(token_request["spec"]["audiences"][0]) == "informerd");
}

}  // namespace
}  // namespace informerd::core
