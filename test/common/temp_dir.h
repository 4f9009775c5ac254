// TempDir: a fresh directory under $TEST_TMPDIR for one test, removed at the end; plus helpers
// to write files into it and to find checked-in test data. Test support for the kubeconfig,
// credential and in-cluster tests, whose file paths matter (relative paths resolve against the
// kubeconfig's directory). One test thread.
#pragma once

#include <string>

namespace informerd::daemon::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/relative, as a string.
  std::string Path(const std::string& relative) const;
  // Writes `contents` to path()/relative (creating directories), returns its path.
  std::string Write(const std::string& relative, const std::string& contents,
                    int mode = 0644) const;

 private:
  std::string path_;
};

// The absolute path of test/daemon/kube/auth/testdata/<name> in the runfiles.
std::string TestData(const std::string& name);
// The contents of a file; fails the test if it cannot be read.
std::string ReadAll(const std::string& path);

}  // namespace informerd::daemon::testing
