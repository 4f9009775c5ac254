// Specification of credential sources (daemon/kube/auth/credentials.*): fixed credentials, and token files
// that rotate under a running daemon.
#include "daemon/kube/auth/credentials.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test/common/temp_dir.h"

namespace informerd::daemon {
namespace {

using std::chrono::seconds;
using testing::TempDir;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

struct Fixture {
  TempDir dir;
  std::shared_ptr<std::chrono::system_clock::time_point> now =
      std::make_shared<std::chrono::system_clock::time_point>(std::chrono::hours(24 * 365 * 60));
  std::vector<std::string> warnings;

  FileTokenSource::Options Options() {
    FileTokenSource::Options options;
    options.path = dir.Path("token");
    options.description = "test token";
    options.clock = [now = now] { return *now; };
    options.on_warning = [this](const absl::Status& warning) {
      warnings.push_back(Message(warning));
    };
    return options;
  }
  std::shared_ptr<FileTokenSource> Create() {
    absl::StatusOr<std::shared_ptr<FileTokenSource>> source = FileTokenSource::Create(Options());
    INFO(source.status().ToString());
    REQUIRE(source.ok());
    return *source;
  }
  static std::shared_ptr<const Credentials> Current(CredentialSource& source) {
    absl::StatusOr<std::shared_ptr<const Credentials>> credentials = source.Current();
    REQUIRE(credentials.ok());
    return *credentials;
  }
};

TEST_CASE("a token file is trimmed, and re-read only once the period has passed") {
  Fixture f;
  f.dir.Write("token", "  one\n");
  std::shared_ptr<FileTokenSource> source = f.Create();
  std::shared_ptr<const Credentials> first = Fixture::Current(*source);
  CHECK(first->bearer_token == "one");
  f.dir.Write("token", "two\n");
  *f.now += seconds(59);
  CHECK(Fixture::Current(*source) == first);
  *f.now += seconds(1);
  std::shared_ptr<const Credentials> second = Fixture::Current(*source);
  CHECK(second->bearer_token == "two");
  // Unchanged contents keep the same object, so a caller can tell a rotation by the pointer.
  *f.now += seconds(60);
  CHECK(Fixture::Current(*source) == second);
  CHECK(f.warnings.empty());
}

TEST_CASE("Invalidate re-reads the file at once, unless the rejected token is already stale") {
  Fixture f;
  f.dir.Write("token", "one");
  std::shared_ptr<FileTokenSource> source = f.Create();
  std::shared_ptr<const Credentials> first = Fixture::Current(*source);
  f.dir.Write("token", "two");
  source->Invalidate(first);
  std::shared_ptr<const Credentials> second = Fixture::Current(*source);
  CHECK(second->bearer_token == "two");
  f.dir.Write("token", "three");
  source->Invalidate(first);  // a late 401 for the old token: nothing to do
  CHECK(Fixture::Current(*source) == second);
  source->Invalidate(nullptr);
  CHECK(Fixture::Current(*source)->bearer_token == "three");
}

TEST_CASE("when the file disappears or is empty, the last good token stays, with a warning") {
  Fixture f;
  f.dir.Write("token", "good");
  std::shared_ptr<FileTokenSource> source = f.Create();
  std::filesystem::remove(f.dir.Path("token"));
  *f.now += seconds(61);
  CHECK(Fixture::Current(*source)->bearer_token == "good");
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0] ==
        fmt::format("test token: cannot re-read the token (file {}: No such file or directory); "
                    "still using the last one",
                    f.dir.Path("token")));
  // No retry (and no warning) on every call: the next attempt is a period later.
  CHECK(Fixture::Current(*source)->bearer_token == "good");
  CHECK(f.warnings.size() == 1);

  f.dir.Write("token", "\n");
  *f.now += seconds(60);
  CHECK(Fixture::Current(*source)->bearer_token == "good");
  REQUIRE(f.warnings.size() == 2);
  CHECK_THAT(f.warnings[1], Catch::Contains(fmt::format("file {} is empty", f.dir.Path("token"))));

  f.dir.Write("token", "rotated");
  source->Invalidate(nullptr);
  CHECK(Fixture::Current(*source)->bearer_token == "rotated");
}

TEST_CASE("a token file that cannot be read at start is an error unless there is a fallback") {
  Fixture f;
  absl::StatusOr<std::shared_ptr<FileTokenSource>> missing = FileTokenSource::Create(f.Options());
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(Message(missing.status()) ==
        fmt::format("test token: file {}: No such file or directory", f.dir.Path("token")));

  FileTokenSource::Options options = f.Options();
  options.fallback_token = "inline";
  options.client_cert_pem = "CERT";
  options.client_key_pem = "KEY";
  absl::StatusOr<std::shared_ptr<FileTokenSource>> fallback = FileTokenSource::Create(options);
  REQUIRE(fallback.ok());
  std::shared_ptr<const Credentials> credentials = Fixture::Current(**fallback);
  CHECK(credentials->bearer_token == "inline");
  CHECK(credentials->client_cert_pem == "CERT");
  CHECK(f.warnings.size() == 1);
  // Once the file appears, its token replaces the fallback; the certificate stays.
  f.dir.Write("token", "from-file");
  *f.now += seconds(60);
  credentials = Fixture::Current(**fallback);
  CHECK(credentials->bearer_token == "from-file");
  CHECK(credentials->client_key_pem == "KEY");
}

TEST_CASE("fixed credentials never change and ignore Invalidate") {
  Credentials fixed;
  fixed.bearer_token = "t";
  StaticCredentialSource source(fixed);
  std::shared_ptr<const Credentials> first = Fixture::Current(source);
  source.Invalidate(first);
  CHECK(Fixture::Current(source) == first);
  CHECK(first->bearer_token == "t");
  CHECK_FALSE(first->empty());
  CHECK(Credentials{}.empty());
}

}  // namespace
}  // namespace informerd::daemon
