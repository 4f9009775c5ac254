// Tests of cmd/informerctl/age.*: RFC 3339 parsing and kubectl's AGE rounding.
#include "cmd/informerctl/age.h"

#include <catch2/catch.hpp>

namespace informerd::ctl {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST_CASE("ParseRfc3339 reads metav1.Time and RFC 3339 variants") {
  CHECK(ParseRfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(ParseRfc3339("2024-02-29T12:34:56Z") == 1709210096);
  CHECK(ParseRfc3339("2024-02-29T12:34:56.123456Z") == 1709210096);
  CHECK(ParseRfc3339("2024-02-29T14:34:56+02:00") == 1709210096);
  CHECK(ParseRfc3339("2024-02-29T10:04:56-02:30") == 1709210096);
  CHECK(ParseRfc3339("1969-12-31T23:59:59Z") == -1);
}

TEST_CASE("ParseRfc3339 rejects what is not a timestamp") {
  for (const char* text : {"", "2024-02-29", "2024-02-29T12:34:56", "2024-02-29 12:34:56Z",
                           "2024-13-01T00:00:00Z", "2024-02-29T24:00:00Z", "2024-02-29T12:34:56.Z",
                           "2024-02-29T12:34:56Zjunk", "24-02-29T12:34:56Z", "yesterday"}) {
    INFO(text);
    CHECK_FALSE(ParseRfc3339(text).has_value());
  }
}

TEST_CASE("HumanDuration rounds as kubectl's AGE column does") {
  const auto [elapsed, text] = GENERATE(table<milliseconds, std::string>({
      {milliseconds(-2500), "<invalid>"},
      {milliseconds(-1999), "0s"},
      {milliseconds(-500), "0s"},
      {milliseconds(0), "0s"},
      {milliseconds(59999), "59s"},
      {seconds(119), "119s"},
      {seconds(120), "2m"},
      {seconds(330), "5m30s"},
      {minutes(9) + seconds(59), "9m59s"},
      {minutes(10) + seconds(59), "10m"},
      {minutes(179), "179m"},
      {hours(3), "3h"},
      {hours(3) + minutes(7) + seconds(59), "3h7m"},
      {hours(8) + minutes(30), "8h"},
      {hours(47), "47h"},
      {hours(48), "2d"},
      {hours(50), "2d2h"},
      {hours(24 * 8 - 1), "7d23h"},
      {hours(24 * 8), "8d"},
      {hours(24 * 729), "729d"},
      {hours(24 * 730), "2y"},
      {hours(24 * 731), "2y1d"},
      {hours(24 * 365 * 8), "8y"},
      {hours(24 * 365 * 30 + 24 * 100), "30y"},
  }));
  INFO(elapsed.count());
  CHECK(HumanDuration(elapsed) == text);
}

TEST_CASE("FormatAge: from the creation timestamp to now") {
  const auto created = std::chrono::system_clock::time_point(seconds(1709210096));
  CHECK(FormatAge("2024-02-29T12:34:56Z", created + minutes(5) + milliseconds(30999)) == "5m30s");
  CHECK(FormatAge("2024-02-29T12:34:56Z", created - seconds(30)) == "<invalid>");
  CHECK(FormatAge("", created) == "<unknown>");
  CHECK(FormatAge("last tuesday", created) == "<invalid>");
}

}  // namespace
}  // namespace informerd::ctl
