// Tests of cmd/informerctl/output.* and table.*: the printers with a fixed clock. (The binary's
// exact output for each command is tested in informerctl_test.cc.)
#include "cmd/informerctl/output.h"

#include <catch2/catch.hpp>

#include "cmd/informerctl/table.h"

namespace informerd::ctl {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// 2024-03-01T00:00:00Z
const auto kNow = std::chrono::system_clock::time_point(seconds(1709251200));

v1::Event Event(v1::Event::Type type, const std::string& resource_version,
                const std::string& object = "") {
  v1::Event event;
  event.set_type(type);
  event.set_resource_version(resource_version);
  event.set_object(object);
  return event;
}

TEST_CASE("Table pads like kubectl: widest cell + 3, at least 6, last column unpadded") {
  Table table({"A", "LONGER-HEADER", "LAST"});
  table.AddRow({"x", "y", "z"});
  table.AddRow({"a-much-longer-cell", "", ""});
  CHECK(table.Render() == std::string() + "A" + std::string(20, ' ') + "LONGER-HEADER   LAST\n" +
                              "x" + std::string(20, ' ') + "y               z\n" +
                              "a-much-longer-cell\n");
}

TEST_CASE("StreamingTable prints the header once and only ever widens columns") {
  StreamingTable table({"NAME", "AGE"});
  CHECK(table.Row({"a", "1s"}) == "NAME   AGE\na      1s\n");
  CHECK(table.Row({"much-longer", "2s"}) == "much-longer   2s\n");
  CHECK(table.Row({"b", "3s"}) == "b             3s\n");
}

TEST_CASE("list table with a fixed clock") {
  v1::ListResponse response;
  response.add_items(
      R"({"metadata":{"name":"a","namespace":"ns1","creationTimestamp":"2024-02-29T21:00:00Z"}})");
  response.add_items(
      R"({"metadata":{"name":"b","namespace":"ns2","creationTimestamp":"2024-02-01T00:00:00Z"}})");
  const auto text = FormatList(response, {OutputFormat::kTable, "pods", true}, kNow);
  REQUIRE(text.ok());
  CHECK(*text ==
        "NAMESPACE   NAME   AGE\n"
        "ns1         a      3h\n"
        "ns2         b      29d\n");
}

TEST_CASE("objects that are not JSON objects are errors naming the item") {
  v1::ListResponse response;
  response.add_items("[1,2]");
  const auto text = FormatList(response, {OutputFormat::kTable, "pods", true}, kNow);
  REQUIRE_FALSE(text.ok());
  CHECK(text.status().message() ==
        "informerd sent list item 0 that is invalid: object is not a JSON object");

  v1::GetResponse get;
  get.set_object("{\"a\":\"\xff\"}");  // not UTF-8
  const auto got = FormatGet(get, {OutputFormat::kJson, "pods", false}, kNow);
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().message().find("not JSON") != absl::string_view::npos);
}

TEST_CASE("watch table: a cluster-scoped first object drops the NAMESPACE column") {
  WatchPrinter printer({OutputFormat::kTable, "nodes", true});
  auto first = printer.Print(
      Event(v1::Event::ADDED, "5",
            R"({"metadata":{"name":"n1","creationTimestamp":"2024-02-29T23:59:00Z"}})"),
      kNow);
  REQUIRE(first.ok());
  CHECK(*first == "EVENT      NAME   AGE\nADDED      n1     60s\n");
  auto synced = printer.Print(Event(v1::Event::SYNCED, "6"), kNow);
  REQUIRE(synced.ok());
  CHECK(*synced == "SYNCED\n");
}

TEST_CASE("watch json: unknown event types print their number; no object, no key") {
  WatchPrinter printer({OutputFormat::kJson, "pods", true});
  auto text = printer.Print(Event(static_cast<v1::Event::Type>(42), "7"), kNow);
  REQUIRE(text.ok());
  CHECK(*text == "{\"type\":\"42\",\"resourceVersion\":\"7\"}\n");
}

TEST_CASE("watch json keeps the object on one line whatever its layout") {
  WatchPrinter printer({OutputFormat::kJson, "pods", true});
  auto text = printer.Print(
      Event(v1::Event::MODIFIED, "8", "{\n  \"metadata\": {\"name\": \"x\"},\n  \"n\": 1e3\n}"),
      kNow);
  REQUIRE(text.ok());
  CHECK(*text ==
        "{\"type\":\"MODIFIED\",\"resourceVersion\":\"8\",\"object\":{\"metadata\":{\"name\":"
        "\"x\"},\"n\":1e3}}\n");
}

}  // namespace
}  // namespace informerd::ctl
