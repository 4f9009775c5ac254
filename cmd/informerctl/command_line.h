// CommandLine: informerctl's arguments, parsed and checked without side effects.
//
// Called once from main() before any connection is made. Parsing never prints or exits: it
// returns the invocation to run, a request to print help, or an InvalidArgument status whose
// message is the one-line usage error (main prints it and exits 2). Flags may come before or
// after the command, as with kubectl; a flag that does not apply to the command is an error
// rather than silently ignored.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace informerd::ctl {

inline constexpr char kDefaultAddress[] = "127.0.0.1:50051";

enum class Command { kResources, kGet, kList, kWatch };

enum class OutputFormat { kTable, kJson, kName };

// How to reach informerd and who to be to it: the flags as given. Files are named, not read:
// reading them (and a kubeconfig) is the connection's job (connection.h), at run time.
struct ConnectionFlags {
  // --tls: TLS with the system's trusted CAs, even without the flags below.
  bool tls = false;
  // --cacert: PEM CA certificates that sign informerd's certificate (instead of the system's).
  std::string ca_file;
  // --cert, --key: a PEM client certificate (chain) and its key, for mutual TLS. Both or neither.
  std::string cert_file;
  std::string key_file;
  // --insecure-skip-tls-verify: TLS without checking informerd's certificate at all.
  bool insecure_skip_tls_verify = false;
  // --tls-server-name: the name informerd's certificate must carry, when it is not the address's
  // host (a port-forward to 127.0.0.1 of a certificate made for the Service's DNS name).
  std::string tls_server_name;
  // --token, --token-file: a bearer token, sent as "authorization: Bearer <token>" on every call.
  std::string token;
  std::string token_file;
  // --kubeconfig, --context: the credentials of a kubeconfig context's user (its token, token
  // file, client certificate or exec plugin). Its cluster's server is not used: informerd's
  // address is --address.
  std::string kubeconfig;
  std::string context;
};

struct Invocation {
  enum class Action { kRun, kPrintHelp };
  Action action = Action::kRun;
  // The text for kPrintHelp.
  std::string help_text;

  // --address, else $INFORMERD_ADDRESS, else kDefaultAddress. Any gRPC target string, or
  // https://HOST[:PORT] (TLS, port 443 by default).
  std::string address = kDefaultAddress;
  ConnectionFlags connection;
  // --timeout; nullopt when not given (each command has its default). Zero means none.
  std::optional<std::chrono::milliseconds> timeout;
  OutputFormat output = OutputFormat::kTable;

  Command command = Command::kResources;
  // get, list, watch: the resource as typed (pods, po, deployments.apps, apps/v1/deployments).
  std::string resource;
  // get: the object's name.
  std::string name;
  // -n; empty for all namespaces (list, watch) or a cluster-scoped object (get).
  std::string namespace_name;
  // True unless -n was given (-A only makes it explicit).
  bool all_namespaces = true;
  std::string label_selector;
  std::string field_selector;
  // get, list: --min-resource-version (ListRequest/GetRequest.min_resource_version): informerd
  // waits until its cache has reached it. Passed as typed; informerd checks it.
  std::string min_resource_version;
  // list: --chunk-size, the `limit` of each page (ListRequest.limit); 0 asks for the whole list
  // in one answer. 500 by default, as kubectl's.
  std::size_t chunk_size = 500;
  // watch: --resource-version and --bookmarks.
  std::string resource_version;
  bool bookmarks = false;
};

// `address_from_env` is $INFORMERD_ADDRESS (nullptr when unset).
absl::StatusOr<Invocation> ParseCommandLine(int argc, const char* const* argv,
                                            const char* address_from_env);

// "10s", "500ms", "2m", "1h30m", "0" → milliseconds. nullopt when not a duration.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace informerd::ctl
