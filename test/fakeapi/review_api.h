// The review APIs of the fake apiserver: POST /apis/authentication.k8s.io/v1/tokenreviews and
// POST /apis/authorization.k8s.io/v1/subjectaccessreviews, as kube-apiserver answers them (201
// with the review echoed back and its status filled in; 415 for a body that is not JSON, 400 for
// one that is not the review, 422 for an invalid SubjectAccessReview), with the decisions taken
// from the test's ReviewTable. Served, and listed by discovery, when the server's review APIs
// are on (ServerOptions::review_apis).
//
// Pure functions of the request and the table; called by the request handler on the I/O thread.
#pragma once

#include <string>
#include <vector>

#include "test/fakeapi/api_handler.h"
#include "test/fakeapi/resource_catalog.h"
#include "test/fakeapi/review_table.h"

namespace informerd::fakeapi {

inline constexpr char kTokenReviewPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";
inline constexpr char kSubjectAccessReviewPath[] =
    "/apis/authorization.k8s.io/v1/subjectaccessreviews";
// Their names in the fault script (ResourceType::Key()); their verb there is Verb::kCreate.
inline constexpr char kTokenReviewsKey[] = "tokenreviews.authentication.k8s.io";
inline constexpr char kSubjectAccessReviewsKey[] = "subjectaccessreviews.authorization.k8s.io";

// tokenreviews (authentication.k8s.io/v1) and subjectaccessreviews (authorization.k8s.io/v1) as
// discovery lists them: cluster-scoped, verb "create" only.
std::vector<ResourceType> ReviewResourceTypes();

// The answer to a POST of `body` with Content-Type `content_type`.
SimpleReply ServeTokenReview(const ReviewTable& table, const std::string& content_type,
                             const std::string& body);
SimpleReply ServeSubjectAccessReview(const ReviewTable& table, const std::string& content_type,
                                     const std::string& body);

// A 201 whose body is not JSON: the garbage-body fault.
SimpleReply MalformedReviewReply(const std::string& path);

}  // namespace informerd::fakeapi
