#include "bench/flags.h"

#include <errno.h>
#include <sched.h>

#include <cstdlib>
#include <iostream>

#include "bench/process_support.h"
#include "fmt/format.h"

namespace informerd::bench {

namespace po = boost::program_options;

po::options_description FlagsDescription(const std::string& caption) {
  return po::options_description(caption, /*line_length=*/100, /*min_description_length=*/50);
}

po::variables_map ParseFlags(int argc, char** argv, po::options_description& flags, bool& smoke) {
  flags.add_options()("smoke", po::bool_switch(&smoke),
                      "small numbers and short windows, for the smoke test; flags given "
                      "explicitly win over its numbers")("help", "print this help");
  po::variables_map given;
  try {
    const po::positional_options_description no_positionals;
    po::store(
        po::command_line_parser(argc, argv)
            .options(flags)
            .positional(no_positionals)
            .style(po::command_line_style::unix_style & ~po::command_line_style::allow_guessing)
            .run(),
        given);
    po::notify(given);
  } catch (const po::error& e) {
    std::cerr << program_invocation_short_name << ": " << e.what() << "\n\n" << flags;
    std::exit(2);
  }
  if (given.count("help") != 0) {
    std::cout << flags;
    std::exit(0);
  }
  return given;
}

bool Given(const po::variables_map& given, const std::string& name) {
  return given.count(name) != 0 && !given[name].defaulted();
}

void AddFakeapiRunFlags(po::options_description& flags, FakeapiRunOptions& options) {
  // clang-format off
  flags.add_options()
      ("objects", po::value(&options.objects)->default_value(options.objects)->value_name("N"),
       "objects per resource the fake serves")
      ("object-bytes",
       po::value(&options.object_bytes)->default_value(options.object_bytes)->value_name("N"),
       "about how large each object is")
      ("namespaces",
       po::value(&options.namespaces)->default_value(options.namespaces)->value_name("N"),
       "namespaces the objects are spread over")
      ("window", po::value(&options.window)->default_value(options.window)->value_name("S"),
       "seconds of each measured window")
      ("warmup", po::value(&options.warmup)->default_value(options.warmup)->value_name("S"),
       "seconds before each window")
      ("daemon-arg", po::value(&options.daemon_args)->value_name("ARG"),
       "passed to every informerd started (repeatable), e.g. --daemon-arg=--rpc-nice=0")
      ("cpus-informerd", po::value(&options.cpus_informerd)->value_name("LIST"),
       "pin informerd to these CPUs (taskset -c LIST, e.g. 0-1); default: not pinned")
      ("cpus-fakeapi", po::value(&options.cpus_fakeapi)->value_name("LIST"),
       "pin fakeapi_server to these CPUs")
      ("cpus-bench", po::value(&options.cpus_bench)->value_name("LIST"),
       "pin this process to these CPUs")
      ("informerd", po::value(&options.informerd)->value_name("PATH"),
       "the informerd binary (default: from the runfiles)")
      ("fakeapi", po::value(&options.fakeapi)->value_name("PATH"),
       "the fakeapi_server binary (default: from the runfiles)");
  // clang-format on
}

void PrepareFakeapiRun(const std::string& argv0, const std::string& program,
                       FakeapiRunOptions& options) {
  if (options.informerd.empty()) options.informerd = Runfile(argv0, "cmd/informerd/informerd");
  if (options.fakeapi.empty()) options.fakeapi = Runfile(argv0, "test/fakeapi/fakeapi_server");
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/" + program + ".XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp failed");
  options.temp_dir = dir;
  if (!options.cpus_bench.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (!ParseCpuList(options.cpus_bench, set) || sched_setaffinity(0, sizeof set, &set) != 0) {
      Die("cannot pin the benchmark to CPUs " + options.cpus_bench);
    }
  }
}

std::string PinningText(const FakeapiRunOptions& options) {
  if (options.cpus_informerd.empty() && options.cpus_fakeapi.empty() &&
      options.cpus_bench.empty()) {
    return ", not pinned";
  }
  const auto any = [](const std::string& cpus) { return cpus.empty() ? "any" : cpus; };
  return fmt::format(", pinned: informerd {}, fakeapi {}, bench {}", any(options.cpus_informerd),
                     any(options.cpus_fakeapi), any(options.cpus_bench));
}

}  // namespace informerd::bench
