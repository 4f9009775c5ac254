// Specification of core/object_filter.*: which fields a selector may name, and how a filter
// matches an object.
#include "core/object_filter.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "test/common/cache_test_support.h"

namespace informerd::core {
namespace {

using testing::MakeObject;

const std::vector<std::string> kPaths = {"spec.nodeName", "status.phase"};

ObjectFilter MustCreate(std::string namespace_name, std::string_view labels,
                        std::string_view fields) {
  absl::StatusOr<ObjectFilter> filter =
      ObjectFilter::Create(std::move(namespace_name), *LabelSelector::Parse(labels),
                           *FieldSelector::Parse(fields), kPaths);
  REQUIRE(filter.ok());
  return *std::move(filter);
}

TEST_CASE(
    "a field selector on an unsupported field is InvalidArgument listing the supported ones") {
  const absl::StatusOr<ObjectFilter> filter =
      ObjectFilter::Create("", LabelSelector(), *FieldSelector::Parse("spec.foo=x"), kPaths);
  REQUIRE_FALSE(filter.ok());
  CHECK(filter.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(filter.status().message()) ==
        "field selector: field \"spec.foo\" is not supported (supported: metadata.name, "
        "metadata.namespace, spec.nodeName, status.phase)");
}

TEST_CASE("metadata.name, metadata.namespace and the configured paths are supported fields") {
  const ObjectFilter filter = MustCreate(
      "", "", "metadata.name=a,metadata.namespace=ns,spec.nodeName=n1,status.phase!=Failed");
  REQUIRE(filter.field_terms().size() == 4);
  const auto object =
      MakeObject("ns", "a", "u", 1, {}, {std::string("n1"), std::string("Running")});
  CHECK(filter.Matches(object));
  CHECK_FALSE(filter.Matches(
      MakeObject("ns", "a", "u", 1, {}, {std::string("n1"), std::string("Failed")})));
  CHECK_FALSE(filter.Matches(
      MakeObject("other", "a", "u", 1, {}, {std::string("n1"), std::string("Running")})));
}

TEST_CASE("a missing extra field compares as the empty string") {
  const auto unscheduled = MakeObject("ns", "a", "u", 1, {}, {std::nullopt, std::nullopt});
  CHECK(MustCreate("", "", "spec.nodeName=").Matches(unscheduled));
  CHECK_FALSE(MustCreate("", "", "spec.nodeName!=").Matches(unscheduled));
  CHECK(MustCreate("", "", "spec.nodeName!=n1").Matches(unscheduled));
  // A record scanned without the configured paths lacks them too.
  CHECK(MustCreate("", "", "spec.nodeName=").Matches(MakeObject("ns", "a", "u", 1)));
}

TEST_CASE("the request namespace and the label selector both restrict the match") {
  const ObjectFilter filter = MustCreate("shop", "app=web,tier!=db", "");
  CHECK(filter.Matches(MakeObject("shop", "a", "u", 1, {{"app", "web"}})));
  CHECK_FALSE(filter.Matches(MakeObject("other", "a", "u", 1, {{"app", "web"}})));
  CHECK_FALSE(filter.Matches(MakeObject("shop", "a", "u", 1, {{"app", "web"}, {"tier", "db"}})));
  CHECK_FALSE(filter.Matches(MakeObject("shop", "a", "u", 1, {{"app", "api"}})));
}

TEST_CASE("the default filter selects everything") {
  const ObjectFilter filter;
  CHECK(filter.selects_everything());
  CHECK(filter.Matches(MakeObject("", "cluster-scoped", "u", 1)));
  CHECK_FALSE(MustCreate("x", "", "").selects_everything());
}

}  // namespace
}  // namespace informerd::core
