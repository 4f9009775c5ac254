// Specification of informerd's command-line flags (daemon/options.*).
#include "daemon/options.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace informerd::daemon {
namespace {

absl::StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "informerd");
  std::vector<const char*> argv;
  for (const auto& arg : args) argv.push_back(arg.c_str());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

std::string ErrorOf(std::vector<std::string> args) {
  auto options = Parse(std::move(args));
  REQUIRE_FALSE(options.ok());
  CHECK(options.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(options.status().message());
}

TEST_CASE("defaults: loopback listen address, info level, text logs") {
  auto options = Parse({"--config", "c.yaml"});
  REQUIRE(options.ok());
  CHECK(options->action == Options::Action::kRun);
  CHECK(options->config_path == "c.yaml");
  CHECK(options->listen_address == "127.0.0.1:50051");
  CHECK(options->log_level == "info");
  CHECK(options->log_format == LogFormat::kText);
  CHECK(options->kubeconfig_path.empty());
  CHECK(options->context.empty());
  CHECK(options->metrics_listen_address == "0.0.0.0:9090");
}

TEST_CASE("--metrics-listen takes HOST:PORT, or none (or nothing) to turn the metrics port off") {
  auto options = Parse({"--config", "c", "--metrics-listen", "127.0.0.1:0"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address == "127.0.0.1:0");
  options = Parse({"--config", "c", "--metrics-listen", "[::]:9100"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address == "[::]:9100");
  options = Parse({"--config", "c", "--metrics-listen", "none"});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address.empty());
  options = Parse({"--config", "c", "--metrics-listen", ""});
  REQUIRE(options.ok());
  CHECK(options->metrics_listen_address.empty());
  CHECK(ErrorOf({"--config", "c", "--metrics-listen", "9090"}) ==
        "--metrics-listen: \"9090\" is not HOST:PORT or none (for example 0.0.0.0:9090)");
}

TEST_CASE("--probe-listen: the probe port, 0.0.0.0:9091 by default, none turns it off") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->probe_listen_address == "0.0.0.0:9091");
  auto options = Parse({"--config", "c", "--probe-listen", "127.0.0.1:0"});
  REQUIRE(options.ok());
  CHECK(options->probe_listen_address == "127.0.0.1:0");
  options = Parse({"--config", "c", "--probe-listen=[::]:8081"});
  REQUIRE(options.ok());
  CHECK(options->probe_listen_address == "[::]:8081");
  options = Parse({"--config", "c", "--probe-listen", "none"});
  REQUIRE(options.ok());
  CHECK(options->probe_listen_address.empty());
  CHECK(ErrorOf({"--config", "c", "--probe-listen", "9091"}) ==
        "--probe-listen: \"9091\" is not HOST:PORT or none (for example 0.0.0.0:9091)");
  // One port cannot be both (port 0 picks two different ports).
  CHECK(ErrorOf({"--config", "c", "--probe-listen", "0.0.0.0:9090"}) ==
        "--probe-listen and --metrics-listen are both 0.0.0.0:9090: the probe port needs a port "
        "of its own (or --probe-listen none)");
  CHECK(
      Parse({"--config", "c", "--probe-listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"}).ok());
}

TEST_CASE("--ingest-threads: the CPUs (1 to 8) by default, 1 to 64, errors name the range") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  const unsigned cpus = std::thread::hardware_concurrency();
  const std::size_t expected = cpus == 0 ? 1 : cpus > 8 ? 8 : cpus;
  CHECK(defaults->ingest_threads == expected);
  CHECK(DefaultIngestThreads() == expected);

  for (const char* value : {"1", "2", "64"}) {
    INFO(value);
    auto options = Parse({"--config", "c", std::string("--ingest-threads=") + value});
    REQUIRE(options.ok());
    CHECK(options->ingest_threads == std::stoul(value));
  }
  auto spaced = Parse({"--config", "c", "--ingest-threads", "3"});
  REQUIRE(spaced.ok());
  CHECK(spaced->ingest_threads == 3);

  for (const char* value : {"0", "65", "-1", "two"}) {
    INFO(value);
    CHECK(ErrorOf({"--config", "c", std::string("--ingest-threads=") + value}) ==
          std::string("--ingest-threads: \"") + value + "\" is not a whole number from 1 to 64");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--ingest-threads N") != std::string::npos);
}

TEST_CASE("the HTTP ports' limits: defaults, values and errors") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->metrics_max_connections == 64);
  CHECK(defaults->probe_max_connections == 16);
  CHECK(defaults->http_header_timeout == std::chrono::seconds(5));
  CHECK(defaults->http_idle_timeout == std::chrono::minutes(2));

  auto options = Parse({"--config", "c", "--metrics-max-connections=200", "--probe-max-connections",
                        "4", "--http-header-timeout=1500ms", "--http-idle-timeout", "30s"});
  REQUIRE(options.ok());
  CHECK(options->metrics_max_connections == 200);
  CHECK(options->probe_max_connections == 4);
  CHECK(options->http_header_timeout == std::chrono::milliseconds(1500));
  CHECK(options->http_idle_timeout == std::chrono::seconds(30));

  for (const char* flag : {"metrics-max-connections", "probe-max-connections"}) {
    INFO(flag);
    for (const char* value : {"0", "-1", "many"}) {
      INFO(value);
      CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=" + value}) ==
            std::string("--") + flag + ": \"" + value +
                "\" is not a whole number from 1 to 1000000000");
    }
  }
  for (const char* flag : {"http-header-timeout", "http-idle-timeout"}) {
    INFO(flag);
    CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=0s"}) ==
          std::string("--") + flag + ": \"0s\" must be more than 0s");
    CHECK(
        ErrorOf({"--config", "c", std::string("--") + flag + "=5"}) ==
        std::string("--") + flag +
            ": \"5\" is not a duration such as 30s, 5m or 1h30m (units h, m, s, ms), at most 24h");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  for (const char* flag :
       {"--probe-listen HOST:PORT", "--metrics-max-connections N", "--probe-max-connections N",
        "--http-header-timeout DURATION", "--http-idle-timeout DURATION"}) {
    INFO(flag);
    CHECK(help->help_text.find(flag) != std::string::npos);
  }
}

TEST_CASE("every flag is taken, in --flag=value and --flag value forms") {
  auto options = Parse({"--config=c.yaml", "--kubeconfig", "/k", "--context=dev",
                        "--listen=0.0.0.0:7000", "--log-level", "debug", "--log-format=json"});
  REQUIRE(options.ok());
  CHECK(options->kubeconfig_path == "/k");
  CHECK(options->context == "dev");
  CHECK(options->listen_address == "0.0.0.0:7000");
  CHECK(options->log_level == "debug");
  CHECK(options->log_format == LogFormat::kJson);
}

TEST_CASE("--help and --version need no config") {
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->action == Options::Action::kPrintHelp);
  CHECK(help->help_text.find("--listen HOST:PORT") != std::string::npos);
  CHECK(help->help_text.find("--metrics-listen HOST:PORT") != std::string::npos);
  auto version = Parse({"--version"});
  REQUIRE(version.ok());
  CHECK(version->action == Options::Action::kPrintVersion);
}

TEST_CASE("bad flags give one-line errors naming the flag") {
  CHECK(ErrorOf({}) ==
        "--config is required: a YAML file listing the resources to inform on (example: "
        "deploy/config/informerd.yaml)");
  CHECK(ErrorOf({"--config", "c", "--bogus"}) ==
        "unrecognised option '--bogus' (see informerd --help)");
  CHECK(ErrorOf({"--config"}) ==
        "the required argument for option '--config' is missing (see informerd --help)");
  CHECK(ErrorOf({"--config", "c", "--log-level", "loud"}) ==
        "--log-level: \"loud\" is not one of trace, debug, info, warn, error");
  CHECK(ErrorOf({"--config", "c", "--log-format", "xml"}) ==
        "--log-format: \"xml\" is not one of text, json");
  CHECK(ErrorOf({"--config", "c", "--listen", "50051"}) ==
        "--listen: \"50051\" is not HOST:PORT or unix:PATH (for example 127.0.0.1:50051 or "
        "unix:///run/informerd/grpc.sock)");
  CHECK(ErrorOf({"--config", "c", "--listen", "h:99999"}) ==
        "--listen: \"h:99999\" is not HOST:PORT or unix:PATH (for example 127.0.0.1:50051 or "
        "unix:///run/informerd/grpc.sock)");
  CHECK(ErrorOf({"--config", "c", "--listen", "h:"}) ==
        "--listen: \"h:\" is not HOST:PORT or unix:PATH (for example 127.0.0.1:50051 or "
        "unix:///run/informerd/grpc.sock)");
  CHECK(ErrorOf({"--config", "c", "stray"}) ==
        "too many positional options have been specified on the command line (see informerd "
        "--help)");
}

TEST_CASE("security flags: defaults on the loopback default address") {
  auto options = Parse({"--config", "c"});
  REQUIRE(options.ok());
  CHECK(options->tls_cert_file.empty());
  CHECK(options->tls_private_key_file.empty());
  CHECK(options->client_ca_file.empty());
  CHECK(options->tls_reload_interval == std::chrono::seconds(60));
  CHECK(options->listen_socket_mode == 0660);
  CHECK_FALSE(options->insecure_allow_plaintext);
  CHECK(options->authentication_token_webhook);
  CHECK(options->authentication_token_webhook_cache_ttl == std::chrono::minutes(2));
  CHECK(options->authentication_token_audiences.empty());
  // Loopback: AlwaysAllow, and with it anonymous calls.
  CHECK(options->authorization_mode == AuthorizationMode::kAlwaysAllow);
  CHECK(options->anonymous_auth);
  CHECK(options->authorization_webhook_cache_authorized_ttl == std::chrono::minutes(5));
  CHECK(options->authorization_webhook_cache_unauthorized_ttl == std::chrono::seconds(30));
  CHECK(options->audit_log);
}

TEST_CASE("--authorization-mode defaults to Webhook unless --listen is loopback or a unix socket") {
  struct Case {
    std::string listen;
    AuthorizationMode mode;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1:1", AuthorizationMode::kAlwaysAllow},
      {"127.8.9.10:1", AuthorizationMode::kAlwaysAllow},
      {"[::1]:1", AuthorizationMode::kAlwaysAllow},
      {"[::ffff:127.0.0.1]:1", AuthorizationMode::kAlwaysAllow},
      {"localhost:1", AuthorizationMode::kAlwaysAllow},
      {"LocalHost:1", AuthorizationMode::kAlwaysAllow},
      {"unix:///run/informerd.sock", AuthorizationMode::kAlwaysAllow},
      {"unix:relative.sock", AuthorizationMode::kAlwaysAllow},
      {"0.0.0.0:1", AuthorizationMode::kWebhook},
      {"[::]:1", AuthorizationMode::kWebhook},
      {"10.0.0.1:1", AuthorizationMode::kWebhook},
      {"128.0.0.1:1", AuthorizationMode::kWebhook},
      {"[::2]:1", AuthorizationMode::kWebhook},
      {"[::ffff:10.0.0.1]:1", AuthorizationMode::kWebhook},
      {"informerd.example:1", AuthorizationMode::kWebhook},
      {"localhost.example:1", AuthorizationMode::kWebhook},
  };
  for (const Case& c : cases) {
    INFO(c.listen);
    auto options = Parse({"--config", "c", "--listen", c.listen});
    REQUIRE(options.ok());
    CHECK(options->authorization_mode == c.mode);
    // --anonymous-auth follows the mode unless given.
    CHECK(options->anonymous_auth == (c.mode == AuthorizationMode::kAlwaysAllow));
  }
  auto options =
      Parse({"--config", "c", "--listen", "0.0.0.0:1", "--authorization-mode", "AlwaysAllow"});
  REQUIRE(options.ok());
  CHECK(options->authorization_mode == AuthorizationMode::kAlwaysAllow);
  CHECK(options->anonymous_auth);
  options = Parse({"--config", "c", "--authorization-mode=Webhook"});
  REQUIRE(options.ok());
  CHECK(options->authorization_mode == AuthorizationMode::kWebhook);
  CHECK_FALSE(options->anonymous_auth);
  options = Parse({"--config", "c", "--authorization-mode=Webhook", "--anonymous-auth"});
  REQUIRE(options.ok());
  CHECK(options->anonymous_auth);
  options = Parse({"--config", "c", "--anonymous-auth=false"});
  REQUIRE(options.ok());
  CHECK(options->authorization_mode == AuthorizationMode::kAlwaysAllow);
  CHECK_FALSE(options->anonymous_auth);
}

TEST_CASE("--listen takes unix sockets: unix:PATH and unix:///ABSOLUTE/PATH") {
  auto options = Parse(
      {"--config", "c", "--listen", "unix:///run/i/grpc.sock", "--listen-socket-mode", "0600"});
  REQUIRE(options.ok());
  CHECK(options->listen_address == "unix:///run/i/grpc.sock");
  CHECK(options->listen_socket_mode == 0600);
  options = Parse({"--config", "c", "--listen=unix:grpc.sock", "--listen-socket-mode=666"});
  REQUIRE(options.ok());
  CHECK(options->listen_socket_mode == 0666);
  CHECK(ErrorOf({"--config", "c", "--listen", "unix:"}) ==
        "--listen: \"unix:\" has no socket path");
  CHECK(ErrorOf({"--config", "c", "--listen", "unix://run/x.sock"}) ==
        "--listen: \"unix://run/x.sock\": the unix:// form needs an absolute path "
        "(unix:///run/x.sock), or write unix:run/x.sock");
  CHECK(ErrorOf({"--config", "c", "--listen", "unix-abstract:informerd"}) ==
        "--listen: \"unix-abstract:informerd\": abstract unix sockets are not supported (they "
        "have no file permissions, so any process could connect); use unix:PATH");
  const std::string long_path = "unix:/" + std::string(107, 'a');
  CHECK(ErrorOf({"--config", "c", "--listen", long_path}) ==
        "--listen: \"" + long_path +
            "\": the socket path is 108 bytes, longer than the 107 a unix socket path may have");
  CHECK(Parse({"--config", "c", "--listen", "unix:/" + std::string(106, 'a')}).ok());
  CHECK(ErrorOf({"--config", "c", "--listen-socket-mode", "0600"}) ==
        "--listen-socket-mode applies to a unix socket (--listen unix:PATH), not to "
        "\"127.0.0.1:50051\"");
  for (const char* bad : {"0669", "1777", "rw", "", "07777", "0o660"}) {
    INFO(bad);
    CHECK(ErrorOf({"--config", "c", "--listen", "unix:/s", "--listen-socket-mode", bad}) ==
          std::string("--listen-socket-mode: \"") + bad +
              "\" is not an octal file mode such as 0660");
  }
}

TEST_CASE("TLS flags: certificate and key together; a client CA only with them") {
  auto options = Parse({"--config", "c", "--listen", "0.0.0.0:1", "--tls-cert-file", "/t/c.pem",
                        "--tls-private-key-file=/t/k.pem", "--client-ca-file", "/t/ca.pem",
                        "--tls-reload-interval", "1m30s"});
  REQUIRE(options.ok());
  CHECK(options->tls_cert_file == "/t/c.pem");
  CHECK(options->tls_private_key_file == "/t/k.pem");
  CHECK(options->client_ca_file == "/t/ca.pem");
  CHECK(options->tls_reload_interval == std::chrono::seconds(90));
  CHECK(ErrorOf({"--config", "c", "--tls-cert-file", "/c"}) ==
        "--tls-cert-file needs --tls-private-key-file (the certificate's private key)");
  CHECK(ErrorOf({"--config", "c", "--tls-private-key-file", "/k"}) ==
        "--tls-private-key-file needs --tls-cert-file (the certificate it is the key of)");
  CHECK(ErrorOf({"--config", "c", "--client-ca-file", "/ca"}) ==
        "--client-ca-file needs --tls-cert-file and --tls-private-key-file: client certificates "
        "are only sent over TLS");
  CHECK(ErrorOf({"--config", "c", "--tls-cert-file", "/c", "--tls-private-key-file", "/k",
                 "--insecure-allow-plaintext"}) ==
        "--insecure-allow-plaintext contradicts --tls-cert-file: the gRPC port serves TLS");
  for (const char* bad : {"500ms", "1500ms", "0s"}) {
    INFO(bad);
    CHECK(ErrorOf({"--config", "c", "--tls-reload-interval", bad}) ==
          std::string("--tls-reload-interval: \"") + bad +
              "\" must be a whole number of seconds, at least 1s");
  }
  CHECK(ErrorOf({"--config", "c", "--tls-reload-interval", "60"}) ==
        "--tls-reload-interval: \"60\" is not a duration such as 30s, 5m or 1h30m (units h, m, "
        "s, ms), at most 24h");
  CHECK(ErrorOf({"--config", "c", "--tls-reload-interval", "25h"}) ==
        "--tls-reload-interval: \"25h\" is not a duration such as 30s, 5m or 1h30m (units h, m, "
        "s, ms), at most 24h");
}

TEST_CASE("boolean flags: bare means true; =true and =false; anything else is an error") {
  auto options = Parse({"--config", "c", "--insecure-allow-plaintext", "--audit-log=false",
                        "--authentication-token-webhook=false", "--anonymous-auth=true"});
  REQUIRE(options.ok());
  CHECK(options->insecure_allow_plaintext);
  CHECK_FALSE(options->audit_log);
  CHECK_FALSE(options->authentication_token_webhook);
  CHECK(options->anonymous_auth);
  options = Parse({"--config", "c", "--insecure-allow-plaintext=false", "--audit-log",
                   "--authentication-token-webhook"});
  REQUIRE(options.ok());
  CHECK_FALSE(options->insecure_allow_plaintext);
  CHECK(options->audit_log);
  CHECK(options->authentication_token_webhook);
  // A bare boolean flag does not swallow the next argument.
  options = Parse({"--config", "c", "--insecure-allow-plaintext", "--listen", "0.0.0.0:1"});
  REQUIRE(options.ok());
  CHECK(options->insecure_allow_plaintext);
  CHECK(options->listen_address == "0.0.0.0:1");
  for (const char* flag : {"insecure-allow-plaintext", "audit-log", "authentication-token-webhook",
                           "anonymous-auth"}) {
    INFO(flag);
    CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=yes"}) ==
          std::string("--") + flag + ": \"yes\" is not true or false");
  }
}

TEST_CASE("List's response bounds: defaults, values and errors") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->max_list_response_bytes == 4128768);  // 4 MiB less 64 KiB
  CHECK(defaults->max_list_response_objects == 10000);
  auto options = Parse(
      {"--config", "c", "--max-list-response-bytes=16777216", "--max-list-response-objects", "1"});
  REQUIRE(options.ok());
  CHECK(options->max_list_response_bytes == 16777216);
  CHECK(options->max_list_response_objects == 1);
  for (const char* flag : {"max-list-response-bytes", "max-list-response-objects"}) {
    for (const char* bad : {"0", "-1", "4MiB", "1000000001"}) {
      INFO(flag << "=" << bad);
      CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=" + bad}) ==
            std::string("--") + flag + ": \"" + bad +
                "\" is not a whole number from 1 to 1000000000");
    }
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--max-list-response-bytes N") != std::string::npos);
  CHECK(help->help_text.find("--max-list-response-objects N") != std::string::npos);
}

TEST_CASE("authentication and authorization flags: values and errors") {
  auto options =
      Parse({"--config", "c", "--authentication-token-webhook-cache-ttl", "30s",
             "--authentication-token-audiences", "informerd,https://kubernetes",
             "--authorization-mode", "Webhook", "--authorization-webhook-cache-authorized-ttl=1m",
             "--authorization-webhook-cache-unauthorized-ttl=0s", "--audit-log=false"});
  REQUIRE(options.ok());
  CHECK(options->authentication_token_webhook_cache_ttl == std::chrono::seconds(30));
  CHECK(options->authentication_token_audiences ==
        std::vector<std::string>{"informerd", "https://kubernetes"});
  CHECK(options->authorization_mode == AuthorizationMode::kWebhook);
  CHECK(options->authorization_webhook_cache_authorized_ttl == std::chrono::minutes(1));
  CHECK(options->authorization_webhook_cache_unauthorized_ttl == std::chrono::seconds(0));
  CHECK_FALSE(options->audit_log);

  CHECK(ErrorOf({"--config", "c", "--authorization-mode", "webhook"}) ==
        "--authorization-mode: \"webhook\" is not one of AlwaysAllow, Webhook");
  CHECK(ErrorOf({"--config", "c", "--authentication-token-audiences", "a,,b"}) ==
        "--authentication-token-audiences: \"a,,b\" has an empty audience");
  for (const char* flag :
       {"authentication-token-webhook-cache-ttl", "authorization-webhook-cache-authorized-ttl",
        "authorization-webhook-cache-unauthorized-ttl"}) {
    INFO(flag);
    CHECK(
        ErrorOf({"--config", "c", std::string("--") + flag + "=5"}) ==
        std::string("--") + flag +
            ": \"5\" is not a duration such as 30s, 5m or 1h30m (units h, m, s, ms), at most 24h");
  }
  // Webhook with no way to authenticate anyone refuses every call: a configuration error.
  CHECK(ErrorOf({"--config", "c", "--authorization-mode=Webhook",
                 "--authentication-token-webhook=false"}) ==
        "--authorization-mode=Webhook with --authentication-token-webhook=false, no "
        "--client-ca-file and no --anonymous-auth would refuse every call: enable one of them");
  CHECK(Parse({"--config", "c", "--authorization-mode=Webhook",
               "--authentication-token-webhook=false", "--tls-cert-file=/c",
               "--tls-private-key-file=/k", "--client-ca-file=/ca"})
            .ok());
}

TEST_CASE("Subscribe's bounded waits: defaults, values and errors") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->subscribe_sync_wait == std::chrono::seconds(30));
  CHECK(defaults->subscribe_future_version_wait == std::chrono::seconds(3));

  auto options = Parse(
      {"--config", "c", "--subscribe-sync-wait=1m30s", "--subscribe-future-version-wait", "0s"});
  REQUIRE(options.ok());
  CHECK(options->subscribe_sync_wait == std::chrono::seconds(90));
  CHECK(options->subscribe_future_version_wait == std::chrono::milliseconds::zero());

  for (const char* flag : {"subscribe-sync-wait", "subscribe-future-version-wait"}) {
    INFO(flag);
    CHECK(
        ErrorOf({"--config", "c", std::string("--") + flag + "=3"}) ==
        std::string("--") + flag +
            ": \"3\" is not a duration such as 30s, 5m or 1h30m (units h, m, s, ms), at most 24h");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--subscribe-sync-wait DURATION") != std::string::npos);
  CHECK(help->help_text.find("--subscribe-future-version-wait DURATION") != std::string::npos);
}

TEST_CASE("client limits: defaults, values and errors") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->max_subscriptions == 10000);
  CHECK(defaults->max_subscriptions_per_user == 5000);
  CHECK(defaults->max_selector_bytes == 4096);
  CHECK(defaults->max_selector_requirements == 64);

  auto options = Parse({"--config", "c", "--max-subscriptions=0", "--max-subscriptions-per-user",
                        "100", "--max-selector-bytes=65536", "--max-selector-requirements=1"});
  REQUIRE(options.ok());
  CHECK(options->max_subscriptions == 0);
  CHECK(options->max_subscriptions_per_user == 100);
  CHECK(options->max_selector_bytes == 65536);
  CHECK(options->max_selector_requirements == 1);

  for (const char* flag : {"max-subscriptions", "max-subscriptions-per-user"}) {
    INFO(flag);
    for (const char* value : {"-1", "1e3", "+5", "1000000001", "99999999999999999999"}) {
      INFO(value);
      CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=" + value}) ==
            std::string("--") + flag + ": \"" + value +
                "\" is not a whole number from 0 to 1000000000");
    }
  }
  // A selector limit of 0 would refuse every selector.
  for (const char* flag : {"max-selector-bytes", "max-selector-requirements"}) {
    INFO(flag);
    CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=0"}) ==
          std::string("--") + flag + ": \"0\" is not a whole number from 1 to 1000000000");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  for (const char* flag : {"--max-subscriptions N", "--max-subscriptions-per-user N",
                           "--max-selector-bytes N", "--max-selector-requirements N"}) {
    INFO(flag);
    CHECK(help->help_text.find(flag) != std::string::npos);
  }
}

TEST_CASE("the gRPC transport limits: defaults, values and errors") {
  auto defaults = Parse({"--config", "c"});
  REQUIRE(defaults.ok());
  CHECK(defaults->grpc_max_connections == 1000);
  CHECK(defaults->grpc_max_calls_per_connection == 200);
  CHECK(defaults->grpc_max_concurrent_streams == 100);
  CHECK(defaults->grpc_max_connection_age == std::chrono::minutes(30));
  CHECK(defaults->grpc_max_connection_age_grace == std::chrono::minutes(5));
  CHECK(defaults->grpc_keepalive_min_time == std::chrono::seconds(10));
  CHECK(defaults->grpc_handshake_timeout == std::chrono::seconds(20));

  auto options = Parse({"--config", "c", "--grpc-max-connections=5",
                        "--grpc-max-concurrent-streams", "10", "--grpc-max-calls-per-connection=0",
                        "--grpc-max-connection-age=0s", "--grpc-max-connection-age-grace", "1m",
                        "--grpc-keepalive-min-time=30s", "--grpc-handshake-timeout=1500ms"});
  REQUIRE(options.ok());
  CHECK(options->grpc_max_connections == 5);
  CHECK(options->grpc_max_concurrent_streams == 10);
  CHECK(options->grpc_max_calls_per_connection == 0);                            // not checked
  CHECK(options->grpc_max_connection_age == std::chrono::milliseconds::zero());  // no limit
  CHECK(options->grpc_max_connection_age_grace == std::chrono::minutes(1));
  CHECK(options->grpc_keepalive_min_time == std::chrono::seconds(30));
  CHECK(options->grpc_handshake_timeout == std::chrono::milliseconds(1500));
  // Calls in flight may equal the streams allowed.
  auto equal = Parse({"--config", "c", "--grpc-max-concurrent-streams=50",
                      "--grpc-max-calls-per-connection=50", "--grpc-max-connection-age-grace=0s"});
  REQUIRE(equal.ok());
  CHECK(equal->grpc_max_calls_per_connection == 50);
  CHECK(equal->grpc_max_connection_age_grace == std::chrono::milliseconds::zero());

  for (const char* flag : {"grpc-max-connections", "grpc-max-concurrent-streams"}) {
    INFO(flag);
    for (const char* value : {"0", "-1", "many", "1000000001"}) {
      INFO(value);
      CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=" + value}) ==
            std::string("--") + flag + ": \"" + value +
                "\" is not a whole number from 1 to 1000000000");
    }
  }
  for (const char* value : {"-1", "lots", "1e3"}) {
    INFO(value);
    CHECK(ErrorOf({"--config", "c", std::string("--grpc-max-calls-per-connection=") + value}) ==
          std::string("--grpc-max-calls-per-connection: \"") + value +
              "\" is not a whole number from 0 to 1000000000");
  }
  // Fewer calls in flight than the streams a client may open would disconnect honest clients:
  // below the default streams, or the default calls below raised streams.
  CHECK(ErrorOf({"--config", "c", "--grpc-max-calls-per-connection=99"}) ==
        "--grpc-max-calls-per-connection: 99 is below --grpc-max-concurrent-streams (100): a "
        "client using the streams it is allowed would be disconnected (0 turns the check off)");
  CHECK(ErrorOf({"--config", "c", "--grpc-max-concurrent-streams=300"}) ==
        "--grpc-max-calls-per-connection: 200 is below --grpc-max-concurrent-streams (300): a "
        "client using the streams it is allowed would be disconnected (0 turns the check off)");
  CHECK(Parse({"--config", "c", "--grpc-max-concurrent-streams=300",
               "--grpc-max-calls-per-connection=0"})
            .ok());
  for (const char* flag : {"grpc-max-connection-age", "grpc-max-connection-age-grace",
                           "grpc-keepalive-min-time", "grpc-handshake-timeout"}) {
    INFO(flag);
    for (const char* value : {"5", "soon", "25h"}) {
      INFO(value);
      CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=" + value}) ==
            std::string("--") + flag + ": \"" + value +
                "\" is not a duration such as 30s, 5m or 1h30m (units h, m, s, ms), at most 24h");
    }
  }
  // A connection age of 0 means no limit; a keepalive interval or handshake timeout of 0 means
  // nothing sensible.
  for (const char* flag : {"grpc-keepalive-min-time", "grpc-handshake-timeout"}) {
    INFO(flag);
    CHECK(ErrorOf({"--config", "c", std::string("--") + flag + "=0s"}) ==
          std::string("--") + flag + ": \"0s\" must be more than 0s");
  }

  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  for (const char* flag :
       {"--grpc-max-connections N", "--grpc-max-concurrent-streams N",
        "--grpc-max-calls-per-connection N", "--grpc-max-connection-age DURATION",
        "--grpc-max-connection-age-grace DURATION", "--grpc-keepalive-min-time DURATION",
        "--grpc-handshake-timeout DURATION"}) {
    INFO(flag);
    CHECK(help->help_text.find(flag) != std::string::npos);
  }
}

TEST_CASE("--help describes the security flags") {
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  for (const char* flag :
       {"--tls-cert-file FILE", "--tls-private-key-file FILE", "--client-ca-file FILE",
        "--tls-reload-interval DURATION", "--listen-socket-mode MODE", "--insecure-allow-plaintext",
        "--authentication-token-webhook", "--authentication-token-webhook-cache-ttl DURATION",
        "--authentication-token-audiences LIST", "--anonymous-auth", "--authorization-mode MODE",
        "--authorization-webhook-cache-authorized-ttl DURATION",
        "--authorization-webhook-cache-unauthorized-ttl DURATION", "--audit-log"}) {
    INFO(flag);
    CHECK(help->help_text.find(flag) != std::string::npos);
  }
}

TEST_CASE("--rpc-threads: the service's executor threads, 2 by default, 1 to 256") {
  auto options = Parse({"--config", "c"});
  REQUIRE(options.ok());
  CHECK(options->rpc_threads == 2);
  options = Parse({"--config", "c", "--rpc-threads", "1"});
  REQUIRE(options.ok());
  CHECK(options->rpc_threads == 1);
  options = Parse({"--config", "c", "--rpc-threads=256"});
  REQUIRE(options.ok());
  CHECK(options->rpc_threads == 256);
  for (const std::string given : {"0", "257", "-1", "two"}) {
    INFO(given);
    CHECK(ErrorOf({"--config", "c", "--rpc-threads=" + given}) ==
          "--rpc-threads: \"" + given + "\" is not a whole number from 1 to 256");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--rpc-threads N") != std::string::npos);
}

TEST_CASE("--rpc-nice: the client-serving threads' nice value, 10 by default, 0 to 19") {
  auto options = Parse({"--config", "c"});
  REQUIRE(options.ok());
  CHECK(options->rpc_nice == 10);
  options = Parse({"--config", "c", "--rpc-nice", "0"});
  REQUIRE(options.ok());
  CHECK(options->rpc_nice == 0);
  options = Parse({"--config", "c", "--rpc-nice=19"});
  REQUIRE(options.ok());
  CHECK(options->rpc_nice == 19);
  for (const std::string given : {"20", "-1", "ten"}) {
    INFO(given);
    CHECK(ErrorOf({"--config", "c", "--rpc-nice=" + given}) ==
          "--rpc-nice: \"" + given + "\" is not a whole number from 0 to 19");
  }
  auto help = Parse({"--help"});
  REQUIRE(help.ok());
  CHECK(help->help_text.find("--rpc-nice N") != std::string::npos);
}

}  // namespace
}  // namespace informerd::daemon
