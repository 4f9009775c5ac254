// Specification of core/label_selector.* and core/labels.*: kubectl label selector syntax and
// meaning, as k8s.io/apimachinery/pkg/labels/selector.go defines them.
#include "core/label_selector.h"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/labels.h"

namespace informerd::core {
namespace {

LabelSelector MustParse(std::string_view text) {
  absl::StatusOr<LabelSelector> selector = LabelSelector::Parse(text);
  INFO("selector: \"" << std::string(text) << "\"");
  if (!selector.ok()) {
    const auto message = selector.status().message();
    FAIL("unexpected error: " << std::string(message.data(), message.size()));
  }
  return *std::move(selector);
}

// The error text for a selector that must be rejected as invalid input.
std::string ParseError(std::string_view text) {
  absl::StatusOr<LabelSelector> selector = LabelSelector::Parse(text);
  INFO("selector: \"" << std::string(text) << "\"");
  REQUIRE_FALSE(selector.ok());
  CHECK(selector.status().code() == absl::StatusCode::kInvalidArgument);
  const auto message = selector.status().message();
  return std::string(message.data(), message.size());
}

constexpr std::string_view kNameRule =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName', 'my.name', '123-abc')";
constexpr std::string_view kPrefixRule =
    "prefix part must be a lowercase RFC 1123 subdomain: dot-separated parts of lower case "
    "alphanumeric characters or '-', each starting and ending with an alphanumeric character "
    "(e.g. 'example.com')";
constexpr std::string_view kValueRule =
    "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character";
constexpr std::string_view kIntegerRule = "'>' and '<' need a 64-bit integer value";

// ---- LabelSet ----------------------------------------------------------------------------------

TEST_CASE("LabelSet sorts its entries by key") {
  const LabelSet labels{{"tier", "web"}, {"app", "shop"}, {"env", "prod"}};
  const std::vector<LabelSet::Entry> expected = {{"app", "shop"}, {"env", "prod"}, {"tier", "web"}};
  CHECK(labels.entries() == expected);
  CHECK(labels.size() == 3);
  CHECK_FALSE(labels.empty());
}

TEST_CASE("LabelSet keeps the last value of a repeated key") {
  const LabelSet labels{{"a", "1"}, {"b", "x"}, {"a", "2"}, {"a", "3"}, {"b", "y"}};
  const std::vector<LabelSet::Entry> expected = {{"a", "3"}, {"b", "y"}};
  CHECK(labels.entries() == expected);
}

TEST_CASE("LabelSet Find tells an absent key from a key with an empty value") {
  const LabelSet labels{{"empty", ""}, {"app", "web"}};
  REQUIRE(labels.Find("app") != nullptr);
  CHECK(*labels.Find("app") == "web");
  REQUIRE(labels.Find("empty") != nullptr);
  CHECK(labels.Find("empty")->empty());
  CHECK(labels.Find("missing") == nullptr);
  CHECK(labels.Find("ap") == nullptr);
  CHECK(labels.Find("appx") == nullptr);
  CHECK(labels.Has("empty"));
  CHECK_FALSE(labels.Has("missing"));
  CHECK(LabelSet().Find("app") == nullptr);
  CHECK(LabelSet().empty());
}

TEST_CASE("LabelSets with the same labels compare equal whatever the input order") {
  CHECK(LabelSet{{"a", "1"}, {"b", "2"}} == LabelSet{{"b", "2"}, {"a", "1"}});
  CHECK(LabelSet{{"a", "1"}} != LabelSet{{"a", "2"}});
}

// ---- Parsing: what is accepted and how it is understood ----------------------------------------

TEST_CASE("an empty or all-whitespace selector selects everything") {
  for (const char* text : {"", " ", "\t\r\n "}) {
    const LabelSelector selector = MustParse(text);
    CHECK(selector.empty());
    CHECK(selector.requirements().empty());
    CHECK(selector.ToString().empty());
    CHECK(selector.Matches(LabelSet()));
    CHECK(selector.Matches(LabelSet{{"a", "b"}}));
  }
  CHECK(LabelSelector().empty());
  CHECK(LabelSelector().Matches(LabelSet{{"a", "b"}}));
}

TEST_CASE("every operator parses into its requirement") {
  struct Case {
    const char* text;
    LabelOperator op;
    std::vector<std::string> values;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {"a=b", LabelOperator::kEquals, {"b"}, "a=b"},
      {"a==b", LabelOperator::kDoubleEquals, {"b"}, "a==b"},
      {"a!=b", LabelOperator::kNotEquals, {"b"}, "a!=b"},
      {"a in (b,c)", LabelOperator::kIn, {"b", "c"}, "a in (b,c)"},
      {"a notin (b,c)", LabelOperator::kNotIn, {"b", "c"}, "a notin (b,c)"},
      {"a", LabelOperator::kExists, {}, "a"},
      {"!a", LabelOperator::kDoesNotExist, {}, "!a"},
      {"a>5", LabelOperator::kGreaterThan, {"5"}, "a>5"},
      {"a<5", LabelOperator::kLessThan, {"5"}, "a<5"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const LabelSelector selector = MustParse(c.text);
    REQUIRE(selector.requirements().size() == 1);
    const LabelRequirement& requirement = selector.requirements()[0];
    CHECK(requirement.key() == "a");
    CHECK(requirement.op() == c.op);
    CHECK(requirement.values() == c.values);
    CHECK(requirement.ToString() == c.canonical);
    CHECK(selector.ToString() == c.canonical);
    CHECK_FALSE(selector.empty());
  }
}

TEST_CASE("whitespace separates tokens but is never required around symbols") {
  struct Case {
    const char* text;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {" a = b ", "a=b"},
      {"a\t==\tb", "a==b"},
      {"a\r\n!=\r\nb", "a!=b"},
      {"a in(b,c)", "a in (b,c)"},
      {" a  in  (  b ,  c  ) ", "a in (b,c)"},
      {"a\nnotin\n(\nb\n)", "a notin (b)"},
      {"a=b,c!=d,e", "a=b,c!=d,e"},
      {"a=b , c!=d ,e", "a=b,c!=d,e"},
      {"! a", "!a"},
      {"a > 1 , b < 2", "a>1,b<2"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(MustParse(c.text).ToString() == c.canonical);
  }
}

TEST_CASE("in and notin are keywords only where an operator is expected") {
  CHECK(MustParse("in in (in,notin)").ToString() == "in in (in,notin)");
  CHECK(MustParse("notin=in").ToString() == "notin=in");
  CHECK(MustParse("in").ToString() == "in");
  CHECK(MustParse("!notin").ToString() == "!notin");
  CHECK(MustParse("a notin (notin)").ToString() == "a notin (notin)");
}

TEST_CASE("a missing value is the empty value") {
  struct Case {
    const char* text;
    std::vector<std::string> values;
    const char* canonical;
  };
  const std::vector<Case> cases = {
      {"a=", {""}, "a="},
      {"a==", {""}, "a=="},
      {"a!=", {""}, "a!="},
      {"a=,b", {""}, "a=,b"},
      {"a in ()", {""}, "a in ()"},
      {"a in (,)", {""}, "a in ()"},
      {"a in (b,)", {"", "b"}, "a in (,b)"},
      {"a in (,b)", {"", "b"}, "a in (,b)"},
      {"a in (b,,c)", {"", "b", "c"}, "a in (,b,c)"},
      {"a notin (,,,)", {""}, "a notin ()"},
      {"a in (,,,b)", {"", "b"}, "a in (,b)"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const LabelSelector selector = MustParse(c.text);
    REQUIRE_FALSE(selector.requirements().empty());
    CHECK(selector.requirements()[0].values() == c.values);
    CHECK(selector.ToString() == c.canonical);
  }
}

TEST_CASE("set values are sorted and duplicates dropped") {
  const LabelSelector selector = MustParse("a in (c,b,c,a)");
  const std::vector<std::string> expected = {"a", "b", "c"};
  CHECK(selector.requirements()[0].values() == expected);
  CHECK(selector.ToString() == "a in (a,b,c)");
}

TEST_CASE("requirements are sorted by key, keeping the written order on ties") {
  const LabelSelector selector = MustParse("zone=z1,app!=web,app,!beta,env in (prod)");
  CHECK(selector.ToString() == "app!=web,app,!beta,env in (prod),zone=z1");
  std::vector<std::string> keys;
  for (const LabelRequirement& r : selector.requirements()) keys.push_back(r.key());
  CHECK(keys == std::vector<std::string>{"app", "app", "beta", "env", "zone"});
}

TEST_CASE("ToString is canonical and parses back to the same selector") {
  for (const char* text :
       {"a=b", "a==b", " x in ( z , y ) , !w", "k notin (),k2 in (,v)", "p.q/r-s_t.u!=V.1",
        "n>10,n<20", "in in (in)", "example.com/app", "a=,b==,c!="}) {
    INFO(text);
    const std::string canonical = MustParse(text).ToString();
    CHECK(MustParse(canonical).ToString() == canonical);
  }
}

TEST_CASE("ExactValue gives the single value an index lookup can use") {
  struct Case {
    const char* text;
    std::optional<std::string_view> exact;
  };
  const std::vector<Case> cases = {
      {"a=b", "b"},
      {"a==b", "b"},
      {"a in (b)", "b"},
      {"a=", ""},
      {"a in ()", ""},
      {"a in (b,b)", "b"},
      {"a in (b,c)", std::nullopt},
      {"a!=b", std::nullopt},
      {"a notin (b)", std::nullopt},
      {"a", std::nullopt},
      {"!a", std::nullopt},
      {"a>1", std::nullopt},
      {"a<1", std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(MustParse(c.text).requirements()[0].ExactValue() == c.exact);
  }
}

// ---- Matching ----------------------------------------------------------------------------------

TEST_CASE("matching follows Kubernetes' Requirement.Matches for every operator") {
  const LabelSet none;
  const LabelSet a_b{{"a", "b"}};
  const LabelSet a_c{{"a", "c"}};
  const LabelSet a_empty{{"a", ""}};
  const LabelSet other{{"z", "b"}};
  struct Case {
    const char* selector;
    bool none, a_b, a_c, a_empty, other;
  };
  // clang-format off
  const std::vector<Case> cases = {
      // selector          none   a=b    a=c    a=""   z=b
      {"a=b",             false, true,  false, false, false},
      {"a==b",            false, true,  false, false, false},
      {"a!=b",            true,  false, true,  true,  true},
      {"a in (b,c)",      false, true,  true,  false, false},
      {"a notin (b,c)",   true,  false, false, true,  true},
      {"a",               false, true,  true,  true,  false},
      {"!a",              true,  false, false, false, true},
      {"a=",              false, false, false, true,  false},
      {"a!=",             true,  true,  true,  false, true},
      {"a in ()",         false, false, false, true,  false},
      {"a notin ()",      true,  true,  true,  false, true},
      {"a in (,b)",       false, true,  false, true,  false},
      {"a,a!=c",          false, true,  false, true,  false},
      {"a=b,z=b",         false, false, false, false, false},
      {"!a,z",            false, false, false, false, true},
  };
  // clang-format on
  for (const Case& c : cases) {
    INFO(c.selector);
    const LabelSelector selector = MustParse(c.selector);
    CHECK(selector.Matches(none) == c.none);
    CHECK(selector.Matches(a_b) == c.a_b);
    CHECK(selector.Matches(a_c) == c.a_c);
    CHECK(selector.Matches(a_empty) == c.a_empty);
    CHECK(selector.Matches(other) == c.other);
  }
}

TEST_CASE("all requirements must match (AND)") {
  const LabelSelector selector = MustParse("app=web,env in (prod,qa),!canary,tier");
  CHECK(selector.Matches(LabelSet{{"app", "web"}, {"env", "qa"}, {"tier", "fe"}}));
  CHECK_FALSE(selector.Matches(LabelSet{{"app", "web"}, {"env", "qa"}}));
  CHECK_FALSE(selector.Matches(LabelSet{{"app", "web"}, {"env", "dev"}, {"tier", "fe"}}));
  CHECK_FALSE(
      selector.Matches(LabelSet{{"app", "web"}, {"env", "qa"}, {"tier", "fe"}, {"canary", ""}}));
  CHECK_FALSE(selector.Matches(LabelSet{{"app", "api"}, {"env", "qa"}, {"tier", "fe"}}));
}

TEST_CASE("> and < compare label values as 64-bit integers") {
  struct Case {
    const char* selector;
    const char* label;  // nullptr: no label `n`
    bool matches;
  };
  const std::vector<Case> cases = {
      {"n>5", "6", true},
      {"n>5", "5", false},
      {"n>5", "4", false},
      {"n<5", "4", true},
      {"n<5", "5", false},
      {"n<5", "-3", true},  // ParseInt accepts a sign on the label side
      {"n>5", "+6", true},
      {"n>5", "007", true},
      {"n>01", "2", true},  // the bound is the number, not the text
      {"n<5", nullptr, false},
      {"n>5", nullptr, false},
      {"n<5", "", false},
      {"n<5", "x", false},  // not an integer: never matches
      {"n<5", "3x", false},
      {"n>5", "99999999999999999999", false},  // out of range: not an integer
      {"n<9223372036854775807", "9223372036854775806", true},
      {"n<9223372036854775807", "9223372036854775807", false},
      {"n>0", "-9223372036854775808", false},
      {"n<0", "-9223372036854775808", true},
      {"n<0", "-9223372036854775809", false},
  };
  for (const Case& c : cases) {
    INFO(c.selector << " against n=" << (c.label ? c.label : "(absent)"));
    const LabelSet labels = c.label ? LabelSet{{"n", c.label}} : LabelSet{{"other", "1"}};
    CHECK(MustParse(c.selector).Matches(labels) == c.matches);
  }
}

// ---- Key and value validation ------------------------------------------------------------------

TEST_CASE("valid label keys are accepted") {
  const std::string name63(63, 'n');
  const std::string prefix253 = std::string(63, 'p') + "." + std::string(63, 'q') + "." +
                                std::string(63, 'r') + "." + std::string(61, 's');
  REQUIRE(prefix253.size() == 253);
  for (const std::string& key :
       {std::string("a"), std::string("A"), std::string("9"), std::string("a.b-c_D"),
        std::string("app.kubernetes.io/name"), std::string("example.com/MyName"),
        std::string("a-1.b-2/x"), name63, prefix253 + "/" + name63, std::string("x/" + name63)}) {
    INFO(key);
    const LabelSelector selector = MustParse(key);
    CHECK(selector.requirements()[0].key() == key);
  }
}

TEST_CASE("invalid label keys are rejected with the broken rule") {
  const std::string name64(64, 'n');
  const std::string prefix254(254, 'p');
  struct Case {
    std::string key;
    std::string_view rule;
  };
  const std::vector<Case> cases = {
      {"-a", kNameRule},
      {"a-", kNameRule},
      {"_a", kNameRule},
      {"a.", kNameRule},
      {"a*b", kNameRule},
      {"a:b", kNameRule},
      {"\xc3\xa9", kNameRule},
      {name64, "name part must be no more than 63 characters"},
      {"a/", "name part must be non-empty"},
      {"/a", "prefix part must be non-empty"},
      {"Example.com/a", kPrefixRule},
      {"example_x.com/a", kPrefixRule},
      {"a..b/c", kPrefixRule},
      {"-a.b/c", kPrefixRule},
      {"a.b-/c", kPrefixRule},
      {prefix254 + "/a", "prefix part must be no more than 253 characters"},
      {"a/b/c",
       "a key is a name with an optional DNS subdomain prefix and one '/' "
       "(e.g. 'example.com/MyName')"},
      {"example.com/-a", kNameRule},
  };
  for (const Case& c : cases) {
    INFO(c.key);
    const std::string text = c.key + "=v";
    CHECK(ParseError(text) == "label selector \"" + text + "\": invalid key \"" + c.key +
                                  "\" at position 0: " + std::string(c.rule));
  }
}

TEST_CASE("the key is validated before the rest of the requirement is read") {
  CHECK(ParseError("-a b") ==
        "label selector \"-a b\": invalid key \"-a\" at position 0: " + std::string(kNameRule));
  CHECK(ParseError("x,!-a") ==
        "label selector \"x,!-a\": invalid key \"-a\" at position 3: " + std::string(kNameRule));
}

TEST_CASE("valid label values are accepted, including the empty value") {
  const std::string value63(63, 'v');
  for (const std::string& value : {std::string("A"), std::string("1"), std::string("a.b-c_D"),
                                   std::string("MyValue"), value63}) {
    INFO(value);
    CHECK(MustParse("a=" + value).requirements()[0].values() == std::vector<std::string>{value});
  }
}

TEST_CASE("invalid label values are rejected with their position") {
  const std::string value64(64, 'v');
  struct Case {
    std::string text;
    std::string value;
    int position;
    std::string_view rule;
  };
  const std::vector<Case> cases = {
      {"a=-b", "-b", 2, kValueRule},
      {"a==b-", "b-", 3, kValueRule},
      {"a!=b*c", "b*c", 3, kValueRule},
      {"a=b/c", "b/c", 2, kValueRule},
      {"a in (b, c-)", "c-", 9, kValueRule},
      {"a notin (.b)", ".b", 9, kValueRule},
      {"a=" + value64, value64, 2, "must be no more than 63 characters"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(ParseError(c.text) == "label selector \"" + c.text + "\": invalid value \"" + c.value +
                                    "\" at position " + std::to_string(c.position) + ": " +
                                    std::string(c.rule));
  }
}

TEST_CASE("> and < need an integer bound") {
  struct Case {
    const char* text;
    const char* value;
    int position;
    std::string_view rule;
  };
  const std::vector<Case> cases = {
      {"a>x", "x", 2, kIntegerRule},
      {"a<1.5", "1.5", 2, kIntegerRule},
      {"a>", "", 2, kIntegerRule},
      {"a<,b", "", 2, kIntegerRule},
      {"a > 9223372036854775808", "9223372036854775808", 4, kIntegerRule},
      // An integer, but a label value may not start with a sign.
      {"a>-1", "-1", 2, kValueRule},
      {"a<+1", "+1", 2, kValueRule},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(ParseError(c.text) == "label selector \"" + std::string(c.text) + "\": invalid value \"" +
                                    c.value + "\" at position " + std::to_string(c.position) +
                                    ": " + std::string(c.rule));
  }
  CHECK(MustParse("a>9223372036854775807").ToString() == "a>9223372036854775807");
  CHECK(MustParse("a<0").ToString() == "a<0");
}

// ---- Malformed input ---------------------------------------------------------------------------

TEST_CASE("malformed selectors are rejected naming the token and its position") {
  struct Case {
    const char* text;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"a in (b",
       R"x(label selector "a in (b": expected ',' or ')' after "b", found end of string at position 7)x"},
      {",a", R"x(label selector ",a": expected a key or '!', found "," at position 0)x"},
      {"=a", R"x(label selector "=a": expected a key or '!', found "=" at position 0)x"},
      {"(a)", R"x(label selector "(a)": expected a key or '!', found "(" at position 0)x"},
      {"a,",
       R"x(label selector "a,": expected a key or '!' after ",", found end of string at position 2)x"},
      {"a,,b",
       R"x(label selector "a,,b": expected a key or '!' after ",", found "," at position 2)x"},
      {"!", R"x(label selector "!": expected a key after "!", found end of string at position 1)x"},
      {"!!a", R"x(label selector "!!a": expected a key after "!", found "!" at position 1)x"},
      {"!=a", R"x(label selector "!=a": expected a key or '!', found "!=" at position 0)x"},
      {"!a=b",
       R"x(label selector "!a=b": expected ',' or end of string after "a", found "=" at position 2)x"},
      {"!a in (b)",
       R"x(label selector "!a in (b)": expected ',' or end of string after "a", found "in" at position 3)x"},
      {"a b",
       R"x(label selector "a b": expected an operator (=, ==, !=, in, notin, >, <) after "a", found "b" at position 2)x"},
      {"a!b",
       R"x(label selector "a!b": expected an operator (=, ==, !=, in, notin, >, <) after "a", found "!" at position 1)x"},
      {"a (b)",
       R"x(label selector "a (b)": expected an operator (=, ==, !=, in, notin, >, <) after "a", found "(" at position 2)x"},
      {"a=b c",
       R"x(label selector "a=b c": expected ',' or end of string after "b", found "c" at position 4)x"},
      {"a=b)",
       R"x(label selector "a=b)": expected ',' or end of string after "b", found ")" at position 3)x"},
      {"a=b=c",
       R"x(label selector "a=b=c": expected ',' or end of string after "b", found "=" at position 3)x"},
      {"a in (b) c",
       R"x(label selector "a in (b) c": expected ',' or end of string after ")", found "c" at position 9)x"},
      {"a=(", R"x(label selector "a=(": expected a value after "=", found "(" at position 2)x"},
      {"a>=1", R"x(label selector "a>=1": expected a value after ">", found "=" at position 2)x"},
      {"a!==b",
       R"x(label selector "a!==b": expected a value after "!=", found "=" at position 3)x"},
      {"a in",
       R"x(label selector "a in": expected '(' after "in", found end of string at position 4)x"},
      {"a in b", R"x(label selector "a in b": expected '(' after "in", found "b" at position 5)x"},
      {"a notin in",
       R"x(label selector "a notin in": expected '(' after "notin", found "in" at position 8)x"},
      {"a in (",
       R"x(label selector "a in (": expected a value, ',' or ')' after "(", found end of string at position 6)x"},
      {"a in (=)",
       R"x(label selector "a in (=)": expected a value, ',' or ')' after "(", found "=" at position 6)x"},
      {"a in ((b))",
       R"x(label selector "a in ((b))": expected a value, ',' or ')' after "(", found "(" at position 6)x"},
      {"a in (b c)",
       R"x(label selector "a in (b c)": expected ',' or ')' after "b", found "c" at position 8)x"},
      {"a in (b,",
       R"x(label selector "a in (b,": expected a value or ',' after ",", found end of string at position 8)x"},
      {"a in (b,=)",
       R"x(label selector "a in (b,=)": expected a value or ',' after ",", found "=" at position 8)x"},
      // Kubernetes' list loop takes a second comma together with the first; what follows the
      // pair must then be a value or a comma, so these two are rejected where (,,,) is not.
      {"a in (b,,)",
       R"x(label selector "a in (b,,)": expected a value or ',' after ",", found ")" at position 9)x"},
      {"a in (,,)",
       R"x(label selector "a in (,,)": expected a value or ',' after ",", found ")" at position 8)x"},
      // Syntax is checked before the values are validated.
      {"a in (-b",
       R"x(label selector "a in (-b": expected ',' or ')' after "-b", found end of string at position 8)x"},
  };
  for (const Case& c : cases) {
    CHECK(ParseError(c.text) == c.error);
  }
}

// ---- Counting requirements before parsing ------------------------------------------------------

TEST_CASE("CountRequirements counts what Parse would build, without parsing") {
  // Every valid selector: the count is exactly the parsed requirements'.
  for (const char* text : {"", " \t", "a", "!a", "a=b", "a==b,c!=d", "a in (b,c),d notin (e,,f),g",
                           "a in ()", "a in (,,,)", "x>1,y<2", " a = b , c ",
                           "in in (in),notin notin (notin)", "example.com/k in (v1, v2, v3),k2"}) {
    INFO("selector: \"" << text << "\"");
    CHECK(LabelSelector::CountRequirements(text) == MustParse(text).requirements().size());
  }
  // Invalid ones: a bound on what Parse would build before it fails; unbalanced parentheses
  // never hide a separator.
  CHECK(LabelSelector::CountRequirements(",") == 2);
  CHECK(LabelSelector::CountRequirements("a in (b,c") == 1);
  CHECK(LabelSelector::CountRequirements("a),b,c") == 3);
  // A selector of 20,000 clauses is counted as such in one pass.
  std::string many = "a";
  for (int i = 1; i < 20000; ++i) many += ",a";
  CHECK(LabelSelector::CountRequirements(many) == 20000);
}

TEST_CASE("error messages escape control characters in the selector") {
  CHECK(ParseError("a\x01=b") ==
        "label selector \"a\\x01=b\": invalid key \"a\\x01\" at position 0: " +
            std::string(kNameRule));
  // A NUL byte is part of a word (Go's lexer would treat it as the end of the input).
  CHECK(ParseError(std::string_view("a\0", 2)) ==
        "label selector \"a\\x00\": invalid key \"a\\x00\" at position 0: " +
            std::string(kNameRule));
}

}  // namespace
}  // namespace informerd::core
