// informerctl's flag parsing with Boost.ProgramOptions; see command_line.h.
#include "cmd/informerctl/command_line.h"

#include <boost/program_options.hpp>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace informerd::ctl {
namespace po = boost::program_options;
namespace {

constexpr char kUsage[] =
    "informerctl: read informerd's cache of Kubernetes objects.\n"
    "\n"
    "Usage: informerctl [flags] COMMAND [args]\n"
    "\n"
    "Commands:\n"
    "  resources [-n NS]              the resources informerd serves that you may list\n"
    "                                 (cluster-wide, or in namespace NS), with their state\n"
    "  get RESOURCE NAME [-n NS] [--min-resource-version RV]\n"
    "                                 one object (-n for namespaced resources)\n"
    "  list RESOURCE [-n NS | -A] [-l SEL] [--field-selector SEL]\n"
    "        [--min-resource-version RV] [--chunk-size N]\n"
    "                                 the cached objects that match, read in pages of N\n"
    "  watch RESOURCE [-n NS | -A] [-l SEL] [--field-selector SEL]\n"
    "        [--resource-version RV] [--bookmarks]\n"
    "                                 follow changes until Ctrl-C or the stream ends\n"
    "\n"
    "RESOURCE is written as kubectl takes it: pods, po, deployments.apps, apps/v1/deployments.\n"
    "Without -n, list and watch cover all namespaces (-A says so explicitly).\n"
    "\n"
    "The connection is TLS when --tls, --cacert, --cert, --insecure-skip-tls-verify or\n"
    "--tls-server-name is given, when the address is https://HOST[:PORT], or when the kubeconfig\n"
    "user authenticates with a client certificate; plaintext otherwise. A bearer token is sent\n"
    "over plaintext only to a loopback address or a unix socket.\n"
    "\n"
    "Exit status: 0 success (and Ctrl-C during watch), 1 error from informerd or the connection,\n"
    "2 usage error.\n";

// Whether `flag` (a selection or watching flag) applies to `command`.
bool FlagApplies(Command command, const std::string& flag) {
  switch (command) {
    case Command::kResources:
      return flag == "namespace";
    case Command::kGet:
      return flag == "namespace" || flag == "min-resource-version";
    case Command::kList:
      return flag != "resource-version" && flag != "bookmarks";
    case Command::kWatch:
      return flag != "min-resource-version" && flag != "chunk-size";
  }
  return false;
}

// Whether the user gave `flag` (a switch counts only when turned on).
bool Given(const po::variables_map& values, const std::string& flag) {
  if (values.count(flag) == 0) return false;
  const po::variable_value& value = values[flag];
  if (value.value().type() == typeid(bool)) return value.as<bool>();
  return !value.defaulted();
}

std::optional<Command> CommandNamed(const std::string& name) {
  if (name == "resources") return Command::kResources;
  if (name == "get") return Command::kGet;
  if (name == "list") return Command::kList;
  if (name == "watch") return Command::kWatch;
  return std::nullopt;
}

// The operands each command takes after its name.
std::size_t OperandCount(Command command) {
  switch (command) {
    case Command::kResources:
      return 0;
    case Command::kGet:
      return 2;
    case Command::kList:
    case Command::kWatch:
      return 1;
  }
  return 0;
}

const char* OperandUsage(Command command) {
  switch (command) {
    case Command::kResources:
      return "resources takes no arguments";
    case Command::kGet:
      return "usage: informerctl get RESOURCE NAME [-n NS] [--min-resource-version RV]";
    case Command::kList:
      return "usage: informerctl list RESOURCE [-n NS | -A] [-l SEL] [--field-selector SEL] "
             "[--min-resource-version RV] [--chunk-size N]";
    case Command::kWatch:
      return "usage: informerctl watch RESOURCE [-n NS | -A] [-l SEL] [--field-selector SEL] "
             "[--resource-version RV] [--bookmarks]";
  }
  return "";
}

absl::Status UsageError(const std::string& message) {
  return absl::InvalidArgumentError(fmt::format("{} (see informerctl --help)", message));
}

// Combinations of the connection flags that cannot mean anything.
absl::Status CheckConnectionFlags(const po::variables_map& values,
                                  const ConnectionFlags& connection) {
  for (const char* flag : {"cacert", "cert", "key", "tls-server-name", "token", "token-file",
                           "kubeconfig", "context"}) {
    if (values.count(flag) && values[flag].as<std::string>().empty()) {
      return UsageError(fmt::format("--{} is empty", flag));
    }
  }
  if (Given(values, "token") && Given(values, "token-file")) {
    return UsageError("--token and --token-file exclude each other");
  }
  if (Given(values, "kubeconfig")) {
    for (const char* flag : {"token", "token-file", "cert", "key"}) {
      if (Given(values, flag)) {
        return UsageError(fmt::format(
            "--kubeconfig and --{} exclude each other: the kubeconfig's user is the identity",
            flag));
      }
    }
  } else if (Given(values, "context")) {
    return UsageError("--context needs --kubeconfig");
  }
  if (Given(values, "cert") != Given(values, "key")) {
    return UsageError("--cert and --key go together");
  }
  if (Given(values, "cacert") && connection.insecure_skip_tls_verify) {
    return UsageError("--cacert and --insecure-skip-tls-verify exclude each other");
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == digits_start || pos - digits_start > 9) return std::nullopt;
    const int64_t number = std::stoll(text.substr(digits_start, pos - digits_start));
    int64_t unit_ms = 0;
    if (text.compare(pos, 2, "ms") == 0) {
      unit_ms = 1;
      pos += 2;
    } else if (pos < text.size() && text[pos] == 's') {
      unit_ms = 1000;
      ++pos;
    } else if (pos < text.size() && text[pos] == 'm') {
      unit_ms = 60 * 1000;
      ++pos;
    } else if (pos < text.size() && text[pos] == 'h') {
      unit_ms = 3600 * 1000;
      ++pos;
    } else {
      return std::nullopt;
    }
    total += number * unit_ms;
  }
  return std::chrono::milliseconds(total);
}

absl::StatusOr<Invocation> ParseCommandLine(int argc, const char* const* argv,
                                            const char* address_from_env) {
  Invocation invocation;
  if (address_from_env != nullptr && *address_from_env != '\0') {
    invocation.address = address_from_env;
  }
  std::string timeout_text;
  std::string output_text;
  std::string chunk_size_text;
  std::vector<std::string> words;
  po::options_description global("Global flags");
  // clang-format off
  global.add_options()
      ("address", po::value(&invocation.address)->value_name("HOST:PORT"),
       "informerd's gRPC address (default $INFORMERD_ADDRESS, else 127.0.0.1:50051)")
      ("timeout", po::value(&timeout_text)->value_name("D"),
       "give up on a request after D: 500ms, 10s, 2m (default 10s; 0 = never). For watch the "
       "default is never, and reaching D ends the watch normally (exit 0)")
      ("output,o", po::value(&output_text)->value_name("FORMAT"),
       "json or name (default: a table). list -o json prints a kubectl-style List object; "
       "watch -o json prints one {\"type\",\"resourceVersion\",\"object\"} object per line")
      ("help,h", "print this help and exit");
  po::options_description selection("Selecting objects (get, list, watch)");
  selection.add_options()
      ("namespace,n", po::value(&invocation.namespace_name)->value_name("NS"),
       "only objects in namespace NS")
      ("all-namespaces,A", po::bool_switch(), "all namespaces (the default without -n)")
      ("selector,l", po::value(&invocation.label_selector)->value_name("SEL"),
       "label selector, kubectl syntax: app=web,tier!=db")
      ("field-selector", po::value(&invocation.field_selector)->value_name("SEL"),
       "field selector: metadata.name=x,spec.nodeName=n1");
  po::options_description reading("Reading (get, list)");
  reading.add_options()
      ("min-resource-version", po::value(&invocation.min_resource_version)->value_name("RV"),
       "wait (within --timeout) until informerd's cache has reached RV, for example the "
       "resourceVersion a write returned, so that the answer includes that write; default: "
       "answer at once")
      ("chunk-size", po::value(&chunk_size_text)->value_name("N"),
       "list: read the list in pages of at most N objects, as kubectl's --chunk-size (every "
       "page from the same state; a list that expires while paging is read again from the "
       "start); 0: in one answer, which informerd refuses for a list larger than its response "
       "bound (default 500)");
  po::options_description watching("Watching");
  watching.add_options()
      ("resource-version", po::value(&invocation.resource_version)->value_name("RV"),
       "only events after RV (resume); default: current state first, then changes")
      ("bookmarks", po::bool_switch(&invocation.bookmarks),
       "also print BOOKMARK events (a newer RV to resume from)");
  po::options_description connecting("Connecting and authenticating");
  ConnectionFlags& connection = invocation.connection;
  connecting.add_options()
      ("tls", po::bool_switch(&connection.tls),
       "use TLS, trusting the system's CAs (--cacert, --cert, --insecure-skip-tls-verify and "
       "--tls-server-name imply TLS)")
      ("cacert", po::value(&connection.ca_file)->value_name("FILE"),
       "PEM CA certificate(s) that sign informerd's certificate")
      ("cert", po::value(&connection.cert_file)->value_name("FILE"),
       "PEM client certificate (chain) for mutual TLS; with --key")
      ("key", po::value(&connection.key_file)->value_name("FILE"),
       "PEM private key of --cert")
      ("insecure-skip-tls-verify", po::bool_switch(&connection.insecure_skip_tls_verify),
       "TLS without checking informerd's certificate: anyone on the path can read and "
       "change the traffic, and take the token")
      ("tls-server-name", po::value(&connection.tls_server_name)->value_name("NAME"),
       "the name informerd's certificate must be valid for, when not the address's host")
      ("token", po::value(&connection.token)->value_name("TOKEN"),
       "bearer token sent as \"authorization: Bearer TOKEN\" (visible in ps: prefer "
       "--token-file)")
      ("token-file", po::value(&connection.token_file)->value_name("FILE"),
       "read the bearer token from FILE (surrounding whitespace ignored)")
      ("kubeconfig", po::value(&connection.kubeconfig)->value_name("FILE"),
       "authenticate as this kubeconfig's user (token, token file, client certificate or exec "
       "plugin); its server is not used")
      ("context", po::value(&connection.context)->value_name("NAME"),
       "the kubeconfig context whose user to be (default: its current-context)");
  po::options_description hidden;
  hidden.add_options()("words", po::value(&words));
  // clang-format on
  po::options_description all;
  all.add(global).add(selection).add(reading).add(watching).add(connecting).add(hidden);
  po::positional_options_description positionals;
  positionals.add("words", -1);

  po::variables_map values;
  try {
    // No prefix guessing: "--name" must not quietly mean "--namespace".
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(
        po::command_line_parser(argc, argv).options(all).positional(positionals).style(style).run(),
        values);
    po::notify(values);
  } catch (const po::error& e) {
    return UsageError(e.what());
  }

  if (values.count("help")) {
    std::ostringstream text;
    po::options_description visible;
    visible.add(global).add(selection).add(reading).add(watching).add(connecting);
    text << kUsage << visible;
    invocation.action = Invocation::Action::kPrintHelp;
    invocation.help_text = text.str();
    return invocation;
  }

  if (words.empty()) return UsageError("missing command: resources, get, list or watch");
  const std::optional<Command> command = CommandNamed(words[0]);
  if (!command) {
    return UsageError(
        fmt::format("unknown command \"{}\": expected resources, get, list or watch", words[0]));
  }
  invocation.command = *command;
  if (words.size() - 1 != OperandCount(*command)) return UsageError(OperandUsage(*command));
  if (*command != Command::kResources) invocation.resource = words[1];
  if (*command == Command::kGet) invocation.name = words[2];
  for (const char* flag : {"namespace", "all-namespaces", "selector", "field-selector",
                           "min-resource-version", "resource-version", "bookmarks", "chunk-size"}) {
    if (Given(values, flag) && !FlagApplies(*command, flag)) {
      return UsageError(fmt::format("--{} does not apply to {}", flag, words[0]));
    }
  }
  const bool all_namespaces_flag = values["all-namespaces"].as<bool>();
  if (values.count("namespace")) {
    if (all_namespaces_flag) return UsageError("-n and -A exclude each other");
    if (invocation.namespace_name.empty()) return UsageError("-n needs a namespace name");
    invocation.all_namespaces = false;
  }
  if (*command == Command::kGet) {
    invocation.all_namespaces = false;
    if (invocation.name.empty()) return UsageError("get: the object's name is empty");
  }
  if (invocation.resource.empty() && *command != Command::kResources) {
    return UsageError(fmt::format("{}: the resource is empty", words[0]));
  }

  if (values.count("timeout")) {
    const auto timeout = ParseDuration(timeout_text);
    if (!timeout) {
      return UsageError(fmt::format(
          "--timeout: \"{}\" is not a duration (for example 500ms, 10s, 2m, 0 for none)",
          timeout_text));
    }
    invocation.timeout = *timeout;
  }
  if (values.count("chunk-size")) {
    const bool digits = !chunk_size_text.empty() && chunk_size_text.size() <= 9 &&
                        chunk_size_text.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      return UsageError(
          fmt::format("--chunk-size: \"{}\" is not a whole number of objects (0 for one answer)",
                      chunk_size_text));
    }
    invocation.chunk_size = std::stoul(chunk_size_text);
  }
  if (values.count("output")) {
    if (output_text == "json") {
      invocation.output = OutputFormat::kJson;
    } else if (output_text == "name") {
      invocation.output = OutputFormat::kName;
    } else {
      return UsageError(
          fmt::format("-o: \"{}\" is not one of json, name (the default is a table)", output_text));
    }
  }
  if (invocation.address.empty()) return UsageError("--address is empty");
  if (absl::Status status = CheckConnectionFlags(values, connection); !status.ok()) return status;
  return invocation;
}

}  // namespace informerd::ctl
