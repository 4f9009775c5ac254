// Specification of core/list_decoder.*: a LIST page body becomes list metadata and records;
// an error body becomes a KubeStatus.
#include "core/list_decoder.h"

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/defaults.h"

namespace informerd::core {
namespace {

using Labels = std::vector<LabelSet::Entry>;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

const std::string kManagedFields =
    R"("managedFields":[{"manager":"kube-controller-manager","operation":"Update",)"
    R"("apiVersion":"v1","time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1",)"
    R"("fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}}])";

// An item as the apiserver writes it, with managedFields; and the same item stripped.
std::string Item(const std::string& name, const std::string& node) {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"shop","uid":"uid-)" + name +
         R"(","resourceVersion":"5)" + std::to_string(name.size()) +
         R"(","labels":{"app":"web","run":")" + name + R"("},)" + kManagedFields +
         R"(},"spec":{"nodeName":")" + node + R"(","containers":[{"name":"c","items":[1]}]}})";
}
std::string StrippedItem(const std::string& name, const std::string& node) {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"shop","uid":"uid-)" + name +
         R"(","resourceVersion":"5)" + std::to_string(name.size()) +
         R"(","labels":{"app":"web","run":")" + name + R"("}},"spec":{"nodeName":")" + node +
         R"(","containers":[{"name":"c","items":[1]}]}})";
}

TEST_CASE("decodes a page: list metadata with continue token, and every item") {
  ListDecoder decoder(ScanOptions{true, {"spec.nodeName"}});
  const std::string body =
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123",)"
      R"("continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzLCJzdGFydCI6InBvZC1jXHUwMDAwIn0",)"
      R"("remainingItemCount":5},"items":[)" +
      Item("pod-a", "n1") + "," + Item("pod-bb", "n2") + "," + Item("pod-ccc", "n3") + "]}";
  auto page = decoder.Decode(body);
  REQUIRE(page.ok());
  CHECK(page->metadata.resource_version == "123");
  CHECK(page->metadata.continue_token ==
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzLCJzdGFydCI6InBvZC1jXHUwMDAwIn0");
  CHECK(page->metadata.remaining_item_count == 5);
  REQUIRE(page->items.size() == 3);

  const std::vector<std::pair<std::string, std::string>> expected = {
      {"pod-a", "n1"}, {"pod-bb", "n2"}, {"pod-ccc", "n3"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [name, node] = expected[i];
    const ObjectRecord& item = page->items[i];
    INFO(name);
    CHECK(item.name == name);
    CHECK(item.namespace_name == "shop");
    CHECK(item.uid == "uid-" + name);
    CHECK(item.resource_version == "5" + std::to_string(name.size()));
    CHECK(item.labels.entries() == Labels{{"app", "web"}, {"run", name}});
    CHECK(item.extra_fields == std::vector<std::optional<std::string>>{node});
    // The list's kind and apiVersion, inserted at the start; managedFields cut.
    CHECK(item.json == R"({"kind":"Pod","apiVersion":"v1",)" + StrippedItem(name, node).substr(1));
    // Every view is into the record's own JSON, offsets of the final text.
    CHECK(item.compact());
  }
}

TEST_CASE("the last page has no continue token and no remaining count") {
  ListDecoder decoder(ScanOptions{});
  auto page = decoder.Decode(
      R"({"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[)"
      R"({"metadata":{"name":"cm"},"data":{"items":"[not, the, list]"}}]})");
  REQUIRE(page.ok());
  CHECK(page->metadata.resource_version == "9");
  CHECK(page->metadata.continue_token.empty());
  CHECK_FALSE(page->metadata.remaining_item_count.has_value());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].json == R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm"},)"
                               R"("data":{"items":"[not, the, list]"}})");
}

TEST_CASE("keeps managedFields in items when stripping is off") {
  ListDecoder decoder(ScanOptions{false, {}});
  auto page =
      decoder.Decode(R"({"metadata":{"resourceVersion":"1"},"items":[)" + Item("a", "n") + "]}");
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].json == Item("a", "n"));
}

TEST_CASE("an empty page: items empty or null") {
  ListDecoder decoder(ScanOptions{});
  for (const std::string body :
       {R"({"kind":"PodList","metadata":{"resourceVersion":"77"},"items":[]})",
        R"({"kind":"PodList","metadata":{"resourceVersion":"77"},"items":null})",
        R"({"items":[],"metadata":{"resourceVersion":"77","continue":null}})"}) {
    INFO(body);
    auto page = decoder.Decode(body);
    REQUIRE(page.ok());
    CHECK(page->items.empty());
    CHECK(page->metadata.resource_version == "77");
  }
}

TEST_CASE("skips unknown members wherever they are, however they nest") {
  ListDecoder decoder(ScanOptions{});
  auto page = decoder.Decode(
      R"({"before":{"items":[{"metadata":{"name":"decoy"}}],"metadata":{"resourceVersion":"0"}},)"
      R"("metadata":{"selfLink":"/x","extra":{"continue":"no"},"resourceVersion":"5",)"
      R"("more":[["x"]]},"list":[1,{"a":[null]}],)"
      R"("items":[{"metadata":{"name":"real"}}],"after":[{"items":[]}]})");
  REQUIRE(page.ok());
  CHECK(page->metadata.resource_version == "5");
  CHECK(page->metadata.continue_token.empty());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].name == "real");
}

TEST_CASE("rejects a page that is not a well-formed list") {
  ListDecoder decoder(ScanOptions{});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"kind":"Status","code":500})", "has no \"items\" (kind \"Status\")"},
      {R"({"metadata":{},"items":[{"metadata":{"name":"a"}},)",
       "list page: invalid JSON at byte 50: Invalid value."},
      {R"({"items":[{"metadata":{"name":"a"}},7]})", "items[1] is a number, not an object"},
      {R"({"items":[[]]})", "items[0] is an array, not an object"},
      {R"({"items":[{"metadata":{"name":"a"}},{"metadata":{"labels":[]}}]})",
       "items[1]: metadata.labels must be an object"},
      {R"({"items":{}})", "\"items\" is an object, not an array"},
      {R"({"items":"none"})", "\"items\" is a string, not an array"},
      {R"({"metadata":[],"items":[]})", "\"metadata\" is an array, not an object"},
      {R"({"metadata":{"resourceVersion":123},"items":[]})",
       "metadata.resourceVersion is a number, not a string"},
      {R"({"metadata":{"continue":{}},"items":[]})", "metadata.continue is an object"},
      {R"({"metadata":{"remainingItemCount":"5"},"items":[]})",
       "metadata.remainingItemCount is a string, not an integer"},
      {R"({"metadata":{"remainingItemCount":1.5},"items":[]})",
       "metadata.remainingItemCount is 1.5, not a 64-bit integer"},
      {"[]", "the body is an array, not a JSON object"},
      {"\"x\"", "the body is a string, not a JSON object"},
      {"", "list page: invalid JSON at byte 0: The document is empty."},
      {"{\"items\":[{\"metadata\":{\"name\":\"\xC0\xAF\"}}]}", "Invalid encoding in string."},
      {std::string("{\"items\":[]}\0", 13), "NUL byte"},
  };
  for (const auto& [body, expected] : cases) {
    INFO(body);
    auto page = decoder.Decode(body);
    REQUIRE_FALSE(page.ok());
    CHECK(page.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(Message(page.status()), Catch::Contains(expected));
  }
}

TEST_CASE("an item larger than the limit is skipped and named; the page and the list go on") {
  // The limit counts an item as the page has it, managedFields included.
  const std::string small = Item("pod-a", "n1");
  const std::string large = Item("pod-bbbbbbbb", "n2");
  const std::string other = Item("pod-c", "n3");
  REQUIRE(large.size() > small.size());
  const auto skip_of = [&](std::size_t limit) {
    SkippedObject skipped;
    skipped.namespace_name = "shop";
    skipped.name = "pod-bbbbbbbb";
    skipped.uid = "uid-pod-bbbbbbbb";
    skipped.resource_version = "512";
    skipped.bytes = large.size();
    skipped.limit = limit;
    return skipped;
  };

  SECTION("at the limit, an item is accepted") {
    ListDecoder decoder(ScanOptions{}, large.size());
    auto page = decoder.Decode(R"({"metadata":{"resourceVersion":"7"},"items":[)" + small + "," +
                               large + "," + other + "]}");
    REQUIRE(page.ok());
    CHECK(page->items.size() == 3);
    CHECK(page->skipped.empty());
  }
  SECTION("one byte over it, the item is left out and the others decoded") {
    ListDecoder decoder(ScanOptions{}, large.size() - 1);
    auto page = decoder.Decode(R"({"metadata":{"resourceVersion":"7","continue":"t"},"items":[)" +
                               small + "," + large + "," + other + "]}");
    REQUIRE(page.ok());
    CHECK(page->metadata.resource_version == "7");
    CHECK(page->metadata.continue_token == "t");
    REQUIRE(page->items.size() == 2);
    CHECK(page->items[0].name == "pod-a");
    CHECK(page->items[1].name == "pod-c");
    CHECK(page->items[1].json == StrippedItem("pod-c", "n3"));
    CHECK(page->skipped == std::vector<SkippedObject>{skip_of(large.size() - 1)});
    CHECK(page->skipped[0].Describe() == "shop/pod-bbbbbbbb");
  }
  SECTION("across the pages of one list") {
    ListDecoder decoder(ScanOptions{}, large.size() - 1);
    auto first = decoder.Decode(R"({"metadata":{"resourceVersion":"7","continue":"t"},"items":[)" +
                                small + "," + large + "]}");
    REQUIRE(first.ok());
    CHECK(first->items.size() == 1);
    CHECK(first->skipped == std::vector<SkippedObject>{skip_of(large.size() - 1)});
    auto second = decoder.Decode(R"({"metadata":{"resourceVersion":"7"},"items":[)" + large + "," +
                                 other + "," + large + "]}");
    REQUIRE(second.ok());
    REQUIRE(second->items.size() == 1);
    CHECK(second->items[0].name == "pod-c");
    CHECK(second->skipped ==
          std::vector<SkippedObject>{skip_of(large.size() - 1), skip_of(large.size() - 1)});
    // An error after a skipped item still names the item by its place in the page.
    auto bad = decoder.Decode(R"({"items":[)" + large + R"(,{"metadata":{"name":7}}]})");
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(Message(bad.status()), Catch::StartsWith("list page: items[1]: metadata.name"));
  }
  SECTION("a cluster-scoped item is named by its name, one without a name says so") {
    const std::string node = R"({"metadata":{"name":"node-1"},"spec":{"podCIDR":"10.0.0.0/24"}})";
    const std::string nameless = R"({"metadata":{},"spec":{"podCIDR":"10.0.0.0/24"}})";
    ListDecoder decoder(ScanOptions{}, 20);
    auto page = decoder.Decode(R"({"items":[)" + node + "," + nameless + "]}");
    REQUIRE(page.ok());
    CHECK(page->items.empty());
    REQUIRE(page->skipped.size() == 2);
    CHECK(page->skipped[0].Describe() == "node-1");
    CHECK(page->skipped[0].bytes == node.size());
    CHECK(page->skipped[1].Describe() == "an object with no name");
    CHECK(page->skipped[1].bytes == nameless.size());
    CHECK(page->skipped[1].limit == 20);
  }
  SECTION("the default limit is maxObjectBytes' default, 32 MiB") {
    ListDecoder decoder(ScanOptions{});
    std::string huge = R"({"metadata":{"name":"huge","namespace":"shop"},"data":")";
    huge += std::string(kDefaultMaxObjectBytes - huge.size() - 2, 'x') + "\"}";
    REQUIRE(huge.size() == kDefaultMaxObjectBytes);
    CHECK(kDefaultMaxObjectBytes == std::size_t{32} << 20);
    auto fits = decoder.Decode(R"({"items":[)" + huge + "]}");
    REQUIRE(fits.ok());
    CHECK(fits->items.size() == 1);
    huge.insert(huge.size() - 2, "x");
    auto over = decoder.Decode(R"({"items":[)" + huge + "]}");
    REQUIRE(over.ok());
    CHECK(over->items.empty());
    REQUIRE(over->skipped.size() == 1);
    CHECK(over->skipped[0].Describe() == "shop/huge");
    CHECK(over->skipped[0].bytes == 33554433);
    CHECK(over->skipped[0].limit == 33554432);
  }
}

TEST_CASE("items get the list's kind and apiVersion when they lack them") {
  const auto items_of = [](ListDecoder& decoder, const std::string& body) {
    auto page = decoder.Decode(body);
    REQUIRE(page.ok());
    std::vector<std::string> json;
    for (const ObjectRecord& item : page->items) json.push_back(item.json.str());
    return json;
  };
  using Strings = std::vector<std::string>;

  SECTION("a built-in list names them before its items; its own names win") {
    ListDecoder decoder(ScanOptions{}, kDefaultMaxObjectBytes, ItemType{"Other", "other/v9"});
    CHECK(items_of(decoder,
                   R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{},"items":[)"
                   R"({"metadata":{"name":"a"}},{},{"apiVersion":"apps/v1beta1","metadata":{}},)"
                   R"({"kind":"Deployment","metadata":{}}]})") ==
          Strings{R"({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"a"}})",
                  R"({"kind":"Deployment","apiVersion":"apps/v1"})",
                  R"({"kind":"Deployment","apiVersion":"apps/v1beta1","metadata":{}})",
                  R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{}})"});
  }
  SECTION("a custom resource's list, keys sorted: its kind comes after the items") {
    // The apiserver writes a custom resource list as a sorted map; its items carry their own
    // kind and apiVersion (they are stored with them), which stay as they are.
    const std::string body =
        R"({"apiVersion":"stable.example.com/v1","items":[)"
        R"({"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c1"}},)"
        R"({"metadata":{"name":"c2"},"spec":{"cronSpec":"* * * * */5"}}],)"
        R"("kind":"CronTabList","metadata":{"continue":"","resourceVersion":"812"}})";
    ListDecoder with_type(ScanOptions{}, kDefaultMaxObjectBytes,
                          ItemType{"CronTab", "stable.example.com/v1"});
    CHECK(items_of(with_type, body) ==
          Strings{
              R"({"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c1"}})",
              R"({"kind":"CronTab","apiVersion":"stable.example.com/v1",)"
              R"("metadata":{"name":"c2"},"spec":{"cronSpec":"* * * * */5"}})"});
    // Without the resource's type, what the list said before the item is all there is.
    ListDecoder without(ScanOptions{});
    CHECK(items_of(without, body)[1] ==
          R"({"apiVersion":"stable.example.com/v1","metadata":{"name":"c2"},)"
          R"("spec":{"cronSpec":"* * * * */5"}})");
  }
  SECTION("a list kind or apiVersion no apiserver writes is not copied into the items") {
    // "\ude00" decodes to a lone surrogate: copied into an item it would make its JSON invalid.
    ListDecoder decoder(ScanOptions{}, kDefaultMaxObjectBytes, ItemType{"ConfigMap", "v1"});
    CHECK(items_of(decoder, R"({"kind":"Con\ude00figMapList","apiVersion":"v\u0001","metadata":{},)"
                            R"("items":[{"metadata":{"name":"a"}}]})") ==
          Strings{R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}})"});
    ListDecoder unknown(ScanOptions{});
    CHECK(items_of(unknown, R"({"kind":"Pod List","apiVersion":"v 1","items":[{}]})") ==
          Strings{"{}"});
  }
  SECTION("nothing known, nothing inserted; a member present with any value is left alone") {
    ListDecoder decoder(ScanOptions{});
    CHECK(items_of(decoder, R"({"items":[{"metadata":{"name":"a"}}]})") ==
          Strings{R"({"metadata":{"name":"a"}})"});
    CHECK(items_of(decoder, R"({"kind":"List","items":[{"metadata":{"name":"a"}}]})") ==
          Strings{R"({"metadata":{"name":"a"}})"});
    CHECK(items_of(
              decoder,
              R"({"kind":"PodList","apiVersion":"v1","items":[{"kind":null,"apiVersion":{}}]})") ==
          Strings{R"({"kind":null,"apiVersion":{}})"});
  }
  SECTION("with the members inserted, fields, labels and extra fields still resolve") {
    ListDecoder decoder(ScanOptions{true, {"spec.nodeName"}});
    auto page = decoder.Decode(R"({"kind":"Q2List","apiVersion":"x.example-1.io/v1","items":[)" +
                               Item("pod-a", "n1") + "]}");
    REQUIRE(page.ok());
    REQUIRE(page->items.size() == 1);
    const ObjectRecord& item = page->items[0];
    CHECK(item.json == R"({"kind":"Q2","apiVersion":"x.example-1.io/v1",)" +
                           StrippedItem("pod-a", "n1").substr(1));
    auto rescanned = ObjectScanner(ScanOptions{true, {"spec.nodeName"}}).Scan(item.json);
    REQUIRE(rescanned.ok());
    CHECK(*rescanned == item);
    CHECK(item.labels.entries() == Labels{{"app", "web"}, {"run", "pod-a"}});
    CHECK(item.extra_fields == std::vector<std::optional<std::string>>{"n1"});
  }
}

TEST_CASE("a decoder is reusable after a bad page") {
  ListDecoder decoder(ScanOptions{});
  REQUIRE_FALSE(decoder.Decode(R"({"items":[{"metadata":{"name":1}}]})").ok());
  auto page = decoder.Decode(R"({"items":[{"metadata":{"name":"ok"}}]})");
  REQUIRE(page.ok());
  REQUIRE(page->items.size() == 1);
  CHECK(page->items[0].name == "ok");
  CHECK(page->items[0].json == R"({"metadata":{"name":"ok"}})");
}

TEST_CASE("ParseKubeStatus reads the Status of an error response") {
  auto expired = ParseKubeStatus(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
      R"("message":"The provided continue parameter is too old to display a consistent list )"
      R"(result. You can start a new list without the continue parameter.","reason":"Expired",)"
      R"("code":410})");
  REQUIRE(expired.ok());
  CHECK(expired->code == 410);
  CHECK(expired->status == "Failure");
  CHECK(expired->reason == "Expired");
  CHECK_THAT(expired->message, Catch::StartsWith("The provided continue parameter is too old"));

  auto forbidden = ParseKubeStatus(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)"
      R"("pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API )"
      R"(group \"\" at the cluster scope","reason":"Forbidden","details":{"kind":"pods"},)"
      R"("code":403})");
  REQUIRE(forbidden.ok());
  CHECK(*forbidden == KubeStatus{403, "Failure", "Forbidden",
                                 "pods is forbidden: User \"system:anonymous\" cannot list "
                                 "resource \"pods\" in API group \"\" at the cluster scope"});

  auto bare = ParseKubeStatus(R"({"kind":"Status"})");
  REQUIRE(bare.ok());
  CHECK(*bare == KubeStatus{});
}

TEST_CASE("ParseKubeStatus rejects bodies that are not a Status") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<html><body>502 Bad Gateway</body></html>",
       "not a Kubernetes Status: invalid JSON at byte 0: Invalid value."},
      {R"({"kind":"Pod","metadata":{"name":"a"}})",
       "not a Kubernetes Status: the object's kind is \"Pod\""},
      {R"({"code":404})", "not a Kubernetes Status: the object's kind is \"\""},
      {"", "not a Kubernetes Status: invalid JSON at byte 0: The document is empty."},
  };
  for (const auto& [body, expected] : cases) {
    INFO(body);
    auto status = ParseKubeStatus(body);
    REQUIRE_FALSE(status.ok());
    CHECK(status.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Message(status.status()) == expected);
  }
}

}  // namespace
}  // namespace informerd::core
