// Label and field selectors as the apiserver parses them from `labelSelector`/`fieldSelector`.
//
// Pure values, built once per request by the connection that received it and then only read.
// Labels: the full kubectl syntax (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
// `a>1`, `a<1`), k8s.io/apimachinery/pkg/labels/selector.go. Fields: `metadata.name` and
// `metadata.namespace` with `=`, `==`, `!=`; any other field is rejected as the apiserver rejects
// a field the kind does not support (400 BadRequest, worded per kind: see FieldLabelErrors).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace informerd::fakeapi {

using Labels = std::map<std::string, std::string>;

class LabelSelector {
 public:
  // Empty text selects everything. Errors are InvalidArgument with a message for a 400 Status.
  static absl::StatusOr<LabelSelector> Parse(std::string_view text);

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  enum class Op { kExists, kDoesNotExist, kIn, kNotIn, kGreaterThan, kLessThan };
  struct Requirement {
    std::string key;
    Op op;
    std::set<std::string> values;
    long long bound = 0;  // kGreaterThan, kLessThan.
  };
  std::vector<Requirement> requirements_;
};

// How the apiserver words its refusal of a field the kind does not support.
enum class FieldLabelErrors {
  // Core kinds with field labels of their own (Pod, Node, Event, Namespace, Secret,
  // ReplicationController) and custom resources: "field label not supported: F".
  kFieldLabelNotSupported,
  // Other built-in kinds (ConfigMap, Service, Deployment): "\"F\" is not a known field
  // selector: only \"metadata.name\", \"metadata.namespace\"".
  kNotAKnownFieldSelector,
};

class FieldSelector {
 public:
  static absl::StatusOr<FieldSelector> Parse(
      std::string_view text, FieldLabelErrors errors = FieldLabelErrors::kFieldLabelNotSupported);

  bool Matches(std::string_view namespace_name, std::string_view name) const;
  bool empty() const { return terms_.empty(); }

 private:
  struct Term {
    bool on_name;  // false: metadata.namespace.
    bool equal;
    std::string value;
  };
  std::vector<Term> terms_;
};

}  // namespace informerd::fakeapi
