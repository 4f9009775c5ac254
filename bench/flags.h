// Command-line flags of the benchmark programs (boost::program_options), parsed the same way in
// each: long flags only ("--name VALUE" or "--name=VALUE"), exact names (no abbreviations), no
// positional arguments; --help prints the flags and exits 0; an error (an unknown flag, a missing
// or malformed value, a flag given twice) prints "<program>: <error>" and the flags on stderr and
// exits 2.
//
// --smoke (small numbers, a few seconds, for the smoke tests) is a flag of every benchmark: its
// values replace the defaults only, so that a flag given explicitly wins wherever it stands on
// the command line ("--smoke --window 2" runs the smoke numbers with a 2 s window).
#pragma once

#include <boost/program_options.hpp>
#include <cstddef>
#include <string>
#include <vector>

namespace informerd::bench {

// An empty description of flags to add to, 100 columns wide for --help.
boost::program_options::options_description FlagsDescription(const std::string& caption);

// Parses argv against `flags`, to which it adds --help and --smoke (which sets `smoke`). Returns
// what was given; exits on --help and on errors, as above.
boost::program_options::variables_map ParseFlags(int argc, char** argv,
                                                 boost::program_options::options_description& flags,
                                                 bool& smoke);

// Whether the flag `name` was given on the command line (not just its default).
bool Given(const boost::program_options::variables_map& given, const std::string& name);

// A --smoke value: `field` = `value` unless the flag `name` was given on the command line.
template <typename T, typename V>
void SmokeDefault(const boost::program_options::variables_map& given, const std::string& name,
                  T& field, const V& value) {
  if (!Given(given, name)) field = value;
}

// What the benchmarks that run informerd against fakeapi_server (overload_bench, fanout_bench)
// have in common. Their Options derive from it, setting its defaults of their own first.
struct FakeapiRunOptions {
  bool smoke = false;
  std::size_t objects = 1000;  // per resource the fake serves
  std::size_t object_bytes = 4096;
  std::size_t namespaces = 10;
  double window = 10;                    // seconds of a measured window
  double warmup = 3;                     // seconds before a window
  std::vector<std::string> daemon_args;  // passed to every informerd started
  std::string cpus_informerd;            // CPU lists for taskset -c; empty: not pinned.
  std::string cpus_fakeapi;
  std::string cpus_bench;
  std::string informerd;  // the binaries; empty: from the runfiles
  std::string fakeapi;
  std::string temp_dir;  // the runs' logs and files
};

// Adds their flags (--objects, --object-bytes, --namespaces, --window, --warmup, --daemon-arg,
// --cpus-informerd, --cpus-fakeapi, --cpus-bench, --informerd, --fakeapi), with the values in
// `options` as the defaults shown.
void AddFakeapiRunFlags(boost::program_options::options_description& flags,
                        FakeapiRunOptions& options);

// After the flags: finds the binaries not given in the runfiles, makes the temporary directory
// (`program`.XXXXXX under TEST_TMPDIR when there is one, else /tmp) and pins this process to
// --cpus-bench, before any thread starts so that gRPC's threads are pinned too. Dies on failure.
void PrepareFakeapiRun(const std::string& argv0, const std::string& program,
                       FakeapiRunOptions& options);

// For the header line: ", not pinned" or ", pinned: informerd LIST, fakeapi LIST, bench LIST".
std::string PinningText(const FakeapiRunOptions& options);

}  // namespace informerd::bench
