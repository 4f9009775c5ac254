// Specification of core/field_selector.*: kubectl field selector syntax and meaning, as
// k8s.io/apimachinery/pkg/fields/selector.go defines them.
#include "core/field_selector.h"

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace informerd::core {
namespace {

using Fields = std::map<std::string, std::string, std::less<>>;

FieldSelector MustParse(std::string_view text) {
  absl::StatusOr<FieldSelector> selector = FieldSelector::Parse(text);
  INFO("selector: \"" << std::string(text) << "\"");
  if (!selector.ok()) {
    const auto message = selector.status().message();
    FAIL("unexpected error: " << std::string(message.data(), message.size()));
  }
  return *std::move(selector);
}

std::string ParseError(std::string_view text) {
  absl::StatusOr<FieldSelector> selector = FieldSelector::Parse(text);
  INFO("selector: \"" << std::string(text) << "\"");
  REQUIRE_FALSE(selector.ok());
  CHECK(selector.status().code() == absl::StatusCode::kInvalidArgument);
  const auto message = selector.status().message();
  return std::string(message.data(), message.size());
}

// An object's fields, as the store would expose them; absent keys are missing fields.
bool Matches(const FieldSelector& selector, const Fields& fields) {
  return selector.Matches([&fields](std::string_view field) -> std::optional<std::string_view> {
    const auto it = fields.find(field);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  });
}

TEST_CASE("an empty field selector, or one of empty terms, selects everything") {
  for (const char* text : {"", ",", ",,,"}) {
    INFO(text);
    const FieldSelector selector = MustParse(text);
    CHECK(selector.empty());
    CHECK(selector.ToString().empty());
    CHECK(Matches(selector, {}));
    CHECK(Matches(selector, {{"metadata.name", "web"}}));
  }
  CHECK(FieldSelector().empty());
  CHECK(Matches(FieldSelector(), {{"metadata.name", "web"}}));
}

TEST_CASE("each operator parses into its requirement; == is the same as =") {
  struct Case {
    const char* text;
    FieldOperator op;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {"metadata.name=web", FieldOperator::kEquals, "metadata.name=web"},
      {"metadata.name==web", FieldOperator::kEquals, "metadata.name=web"},
      {"metadata.name!=web", FieldOperator::kNotEquals, "metadata.name!=web"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const FieldSelector selector = MustParse(c.text);
    REQUIRE(selector.requirements().size() == 1);
    const FieldRequirement& requirement = selector.requirements()[0];
    CHECK(requirement.field() == "metadata.name");
    CHECK(requirement.op() == c.op);
    CHECK(requirement.value() == "web");
    CHECK(requirement.ToString() == c.canonical);
    CHECK(selector.ToString() == c.canonical);
    CHECK_FALSE(selector.empty());
  }
}

TEST_CASE("empty terms between commas are skipped") {
  CHECK(MustParse(",a=b,,c!=d,").ToString() == "a=b,c!=d");
  CHECK(MustParse(",,a=b").requirements().size() == 1);
}

TEST_CASE("a term with neither field nor value selects everything, as in Kubernetes") {
  for (const char* text : {"=", "==", "!=", "=,!=,=="}) {
    INFO(text);
    CHECK(MustParse(text).empty());
  }
  CHECK(MustParse("=,a=b").ToString() == "a=b");
  // Only one side empty: kept.
  CHECK(MustParse("=x").ToString() == "=x");
  CHECK(MustParse("=x").requirements()[0].field().empty());
  CHECK(MustParse("x=").ToString() == "x=");
  CHECK(MustParse("x!=").requirements()[0].value().empty());
}

TEST_CASE("the first operator in a term splits field from value") {
  struct Case {
    const char* text;
    const char* field;
    FieldOperator op;
    const char* value;
  };
  const std::vector<Case> cases = {
      {"a!b=c", "a!b", FieldOperator::kEquals, "c"},
      {"a=x!y", "a", FieldOperator::kEquals, "x!y"},
      {"a!=!", "a", FieldOperator::kNotEquals, "!"},
      // The field is taken as written: a backslash there escapes nothing but still hides a comma
      // from the term splitter.
      {R"x(a\,b=c)x", R"x(a\,b)x", FieldOperator::kEquals, "c"},
      {R"x(a\=b)x", R"x(a\)x", FieldOperator::kEquals, "b"},
      {"spec.containers[0].name=x", "spec.containers[0].name", FieldOperator::kEquals, "x"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const FieldSelector selector = MustParse(c.text);
    REQUIRE(selector.requirements().size() == 1);
    CHECK(selector.requirements()[0].field() == c.field);
    CHECK(selector.requirements()[0].op() == c.op);
    CHECK(selector.requirements()[0].value() == c.value);
  }
}

TEST_CASE("whitespace is part of fields and values: nothing is trimmed") {
  const FieldSelector selector = MustParse(" metadata.name = web ");
  CHECK(selector.requirements()[0].field() == " metadata.name ");
  CHECK(selector.requirements()[0].value() == " web ");
  CHECK_FALSE(Matches(selector, {{"metadata.name", "web"}}));
  CHECK(Matches(selector, {{" metadata.name ", " web "}}));
}

TEST_CASE("backslash escapes ',', '=' and '\\' in values, and ToString escapes them again") {
  struct Case {
    const char* text;
    std::vector<std::string> values;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {R"x(a=x\,y)x", {"x,y"}, R"x(a=x\,y)x"},
      {R"x(a=x\=y)x", {"x=y"}, R"x(a=x\=y)x"},
      {R"x(a=x\\y)x", {R"x(x\y)x"}, R"x(a=x\\y)x"},
      {R"x(a==\\)x", {R"x(\)x"}, R"x(a=\\)x"},
      {R"x(a!=\,)x", {","}, R"x(a!=\,)x"},
      {R"x(a=\\\,\=)x", {R"x(\,=)x"}, R"x(a=\\\,\=)x"},
      // An escaped backslash does not escape the comma after it.
      {R"x(a=x\\,b=c)x", {R"x(x\)x", "c"}, R"x(a=x\\,b=c)x"},
      {R"x(a=x\,y,b=c)x", {"x,y", "c"}, R"x(a=x\,y,b=c)x"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const FieldSelector selector = MustParse(c.text);
    std::vector<std::string> values;
    for (const FieldRequirement& r : selector.requirements()) values.push_back(r.value());
    CHECK(values == c.values);
    CHECK(selector.ToString() == c.canonical);
  }
}

TEST_CASE("requirements are ordered by the terms as written, byte-wise, as Kubernetes sorts them") {
  CHECK(MustParse("spec.nodeName=n1,metadata.name==web").ToString() ==
        "metadata.name=web,spec.nodeName=n1");
  // "a==x" sorts before "a=b" ('=' < 'b'), so == terms come first among equal fields.
  const FieldSelector selector = MustParse("a=b,a==x");
  CHECK(selector.ToString() == "a=x,a=b");
  CHECK(selector.requirements()[0].value() == "x");
}

TEST_CASE("ToString parses back to a selector with the same requirements") {
  for (const char* text : {"a=b", "b!=c,a==d", R"x(x=a\,b\=c\\d)x", "=v,f=", "a=x,a!=y"}) {
    INFO(text);
    const FieldSelector once = MustParse(MustParse(text).ToString());
    const FieldSelector twice = MustParse(once.ToString());
    CHECK(twice.ToString() == once.ToString());
    CHECK(once.requirements().size() == MustParse(text).requirements().size());
  }
}

TEST_CASE("matching compares fields as strings, a missing field being the empty string") {
  const Fields web = {
      {"metadata.name", "web"}, {"metadata.namespace", "default"}, {"spec.nodeName", "node-1"}};
  const Fields db = {{"metadata.name", "db"}, {"metadata.namespace", "prod"}};
  const Fields bare = {};
  struct Case {
    const char* selector;
    bool web, db, bare;
  };
  // clang-format off
  const std::vector<Case> cases = {
      // selector                                          web    db     bare
      {"metadata.name=web",                                true,  false, false},
      {"metadata.name==web",                               true,  false, false},
      {"metadata.name!=web",                               false, true,  true},
      {"spec.nodeName=",                                   false, true,  true},
      {"spec.nodeName!=",                                  true,  false, false},
      {"metadata.namespace=default,spec.nodeName=node-1",  true,  false, false},
      {"metadata.namespace!=default,metadata.name!=web",   false, true,  true},
      {"metadata.name=WEB",                                false, false, false},
      {"status.phase=Running",                             false, false, false},
      {"status.phase!=Running",                            true,  true,  true},
      {"",                                                 true,  true,  true},
  };
  // clang-format on
  for (const Case& c : cases) {
    INFO(c.selector);
    const FieldSelector selector = MustParse(c.selector);
    CHECK(Matches(selector, web) == c.web);
    CHECK(Matches(selector, db) == c.db);
    CHECK(Matches(selector, bare) == c.bare);
  }
}

TEST_CASE("matching uses the unescaped value") {
  const FieldSelector selector = MustParse(R"x(metadata.name=a\,b\=c\\d)x");
  CHECK(Matches(selector, {{"metadata.name", R"x(a,b=c\d)x"}}));
  CHECK_FALSE(Matches(selector, {{"metadata.name", R"x(a\,b\=c\\d)x"}}));
}

TEST_CASE("a getter may return owned strings") {
  const FieldSelector selector = MustParse("metadata.name=web,spec.nodeName!=n1");
  const auto owned = [](std::string_view field) -> std::optional<std::string> {
    if (field == "metadata.name") return std::string("web");
    if (field == "spec.nodeName") return std::string(100, 'n');  // too long for SSO
    return std::nullopt;
  };
  CHECK(selector.Matches(owned));
  CHECK_FALSE(MustParse("spec.nodeName=n1").Matches(owned));
  CHECK(MustParse("spec.nodeName=" + std::string(100, 'n')).Matches(owned));
}

TEST_CASE("FieldRequirement matches an explicit empty value like a missing field") {
  const FieldSelector selector = MustParse("a=,b!=");
  REQUIRE(selector.requirements().size() == 2);
  const FieldRequirement& equals_empty = selector.requirements()[0];
  const FieldRequirement& not_empty = selector.requirements()[1];
  CHECK(equals_empty.Matches(std::nullopt));
  CHECK(equals_empty.Matches(std::string_view()));
  CHECK_FALSE(equals_empty.Matches(std::string_view("x")));
  CHECK_FALSE(not_empty.Matches(std::nullopt));
  CHECK(not_empty.Matches(std::string_view("x")));
}

TEST_CASE("malformed field selectors are rejected naming the term or sequence and its position") {
  struct Case {
    const char* text;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"a", R"x(field selector "a": expected '=', '==' or '!=' in term "a" at position 0)x"},
      {"a=b,c",
       R"x(field selector "a=b,c": expected '=', '==' or '!=' in term "c" at position 4)x"},
      {"a!b", R"x(field selector "a!b": expected '=', '==' or '!=' in term "a!b" at position 0)x"},
      {"a=b=c",
       R"x(field selector "a=b=c": unescaped '=' in value at position 3: write \= for a literal '=')x"},
      {"a===b",
       R"x(field selector "a===b": unescaped '=' in value at position 3: write \= for a literal '=')x"},
      {"a=!=b",
       R"x(field selector "a=!=b": unescaped '=' in value at position 3: write \= for a literal '=')x"},
      {"a!=b=c",
       R"x(field selector "a!=b=c": unescaped '=' in value at position 4: write \= for a literal '=')x"},
      {R"x(a=b\x)x",
       R"x(field selector "a=b\\x": invalid escape sequence "\\x" at position 3: a value may escape only '\', ',' and '=')x"},
      // '!' needs no escape in a value, and Kubernetes does not accept one.
      {R"x(a=x\!)x",
       R"x(field selector "a=x\\!": invalid escape sequence "\\!" at position 3: a value may escape only '\', ',' and '=')x"},
      {"a=\\\xc3\xa9",
       "field selector \"a=\\\\\xc3\xa9\": invalid escape sequence \"\\\\\xc3\xa9\" at position 2: "
       "a value may escape only '\\', ',' and '='"},
      {R"x(a=b\)x",
       R"x(field selector "a=b\\": unfinished escape sequence "\\" at position 3: a value may escape only '\', ',' and '=')x"},
      // Positions count from the start of the selector, escaped commas included.
      {R"x(a=x\,y,b=c\q)x",
       R"x(field selector "a=x\\,y,b=c\\q": invalid escape sequence "\\q" at position 10: a value may escape only '\', ',' and '=')x"},
      // Errors are reported for the first bad term as written (Kubernetes would sort first).
      {"b,a", R"x(field selector "b,a": expected '=', '==' or '!=' in term "b" at position 0)x"},
      {"a=\x01\\x",
       R"x(field selector "a=\x01\\x": invalid escape sequence "\\x" at position 3: a value may escape only '\', ',' and '=')x"},
  };
  for (const Case& c : cases) {
    CHECK(ParseError(c.text) == c.error);
  }
}

TEST_CASE("CountRequirements counts the terms Parse would read, without parsing") {
  for (const char* text : {"", ",", ",,,", "a=b", "a=b,c!=d", "a==b,,c=d,", R"x(a=x\,y,b=c)x",
                           R"x(a=\\,b=c)x", "metadata.name=web,spec.nodeName!=n1"}) {
    INFO("selector: \"" << text << "\"");
    CHECK(FieldSelector::CountRequirements(text) == MustParse(text).requirements().size());
  }
  // Bare '=' terms, which Parse drops, are counted: the count bounds the work, never undercounts.
  CHECK(FieldSelector::CountRequirements("=,!=,a=b") == 3);
  CHECK(MustParse("=,!=,a=b").requirements().size() == 1);
  // Invalid selectors are counted by their terms too.
  CHECK(FieldSelector::CountRequirements("a,b,c") == 3);
  std::string many = "a=b";
  for (int i = 1; i < 20000; ++i) many += ",a=b";
  CHECK(FieldSelector::CountRequirements(many) == 20000);
}

}  // namespace
}  // namespace informerd::core
