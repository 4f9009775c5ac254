#include "daemon/kube/auth/kubeconfig.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/status/status.h"
#include "daemon/kube/auth/file_contents.h"
#include "daemon/kube/auth/pem.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace informerd::daemon {
namespace {

namespace fs = std::filesystem;

// The reserved cluster extension whose value is passed to exec plugins as spec.cluster.config.
constexpr char kExecExtensionName[] = "client.authentication.k8s.io/exec";

// Parse-time errors: "file:line:col: field: message" (yaml-cpp marks are 0-based).
class ParseErrors {
 public:
  explicit ParseErrors(std::string file) : file_(std::move(file)) {}

  absl::Status At(const YAML::Node& node, std::string_view field, std::string_view message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line >= 0) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}:{}: {}: {}", file_, mark.line + 1, mark.column + 1, field, message));
    }
    return absl::InvalidArgumentError(fmt::format("{}: {}: {}", file_, field, message));
  }

 private:
  std::string file_;
};

// Resolution-time errors: "file: field: message".
absl::Status FieldError(const KubeconfigOrigin& origin, std::string_view key,
                        std::string_view message,
                        absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  const std::string field = key.empty() ? origin.field : fmt::format("{}.{}", origin.field, key);
  return absl::Status(code, fmt::format("{}: {}: {}", origin.file, field, message));
}

// "parent.key", or "key" at the top level.
std::string Child(const std::string& parent, const char* key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

// Any scalar reads as a string (kubectl would reject `token: 123`; quoting it is no improvement
// worth an error). Null or absent is "".
absl::StatusOr<std::string> ReadString(const YAML::Node& map, const char* key,
                                       const std::string& path, const ParseErrors& errors) {
  const YAML::Node node = map[key];
  if (!node || node.IsNull()) return std::string();
  if (!node.IsScalar()) return errors.At(node, Child(path, key), "must be a string");
  return node.Scalar();
}

absl::StatusOr<bool> ReadBool(const YAML::Node& map, const char* key, const std::string& path,
                              const ParseErrors& errors) {
  const YAML::Node node = map[key];
  if (!node || node.IsNull()) return false;
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    return errors.At(node, Child(path, key), "must be true or false");
  }
  return value;
}

absl::StatusOr<std::string> ReadBase64(const YAML::Node& map, const char* key,
                                       const std::string& path, const ParseErrors& errors) {
  absl::StatusOr<std::string> text = ReadString(map, key, path, errors);
  if (!text.ok() || text->empty()) return text;
  absl::StatusOr<std::string> bytes = DecodeBase64(*text);
  if (!bytes.ok()) {
    return errors.At(map[key], Child(path, key), std::string(bytes.status().message()));
  }
  return bytes;
}

// A path from `file`, made absolute against the file's directory (clientcmd.ResolveLocalPaths).
std::string ResolvePath(const std::string& value, const std::string& file) {
  if (value.empty() || value.front() == '/') return value;
  std::error_code error;
  fs::path base = fs::absolute(fs::path(file), error).parent_path();
  if (error) base = fs::path(file).parent_path();
  return (base / value).lexically_normal().string();
}

// YAML → JSON for a cluster's exec extension, with YAML 1.1 scalar typing (kubectl reads YAML
// through go-yaml v2, which also types unquoted `yes`, `1` and `1.5`).
void WriteJson(const YAML::Node& node, rapidjson::Writer<rapidjson::StringBuffer>& writer) {
  if (node.IsMap()) {
    writer.StartObject();
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      WriteJson(entry.second, writer);
    }
    writer.EndObject();
  } else if (node.IsSequence()) {
    writer.StartArray();
    for (const auto& item : node) WriteJson(item, writer);
    writer.EndArray();
  } else if (!node || node.IsNull()) {
    writer.Null();
  } else {
    const std::string& text = node.Scalar();
    const bool quoted = node.Tag() == "!";
    bool flag = false;
    if (!quoted && YAML::convert<bool>::decode(node, flag)) {
      writer.Bool(flag);
      return;
    }
    if (!quoted && !text.empty()) {
      char* end = nullptr;
      errno = 0;
      const long long integer = std::strtoll(text.c_str(), &end, 10);
      if (errno == 0 && end == text.c_str() + text.size()) {
        writer.Int64(integer);
        return;
      }
      const double real = std::strtod(text.c_str(), &end);
      if (end == text.c_str() + text.size() && std::isfinite(real)) {
        writer.Double(real);
        return;
      }
    }
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
}

// A list of {name, <body_key>: map} entries (clusters, users, contexts). Calls `parse` with each
// entry's body and its field path; rejects a name defined twice in the same file, as kubectl's
// conversion does.
template <typename Entry, typename Parse>
absl::Status ParseNamedList(const YAML::Node& root, const char* list_key, const char* body_key,
                            const ParseErrors& errors, std::map<std::string, Entry>& out,
                            Parse parse) {
  const YAML::Node list = root[list_key];
  if (!list || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) return errors.At(list, list_key, "must be a list");
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string item_path = fmt::format("{}[{}]", list_key, i);
    if (!item.IsMap()) {
      return errors.At(item, item_path, fmt::format("must be a map with name and {}", body_key));
    }
    absl::StatusOr<std::string> name = ReadString(item, "name", item_path, errors);
    if (!name.ok()) return name.status();
    if (auto [it, inserted] = seen.emplace(*name, i); !inserted) {
      return errors.At(
          item["name"] ? item["name"] : item, fmt::format("{}.name", item_path),
          fmt::format("duplicate name \"{}\" (also {}[{}])", *name, list_key, it->second));
    }
    const YAML::Node body = item[body_key];
    const std::string body_path = fmt::format("{}.{}", item_path, body_key);
    if (body && !body.IsNull() && !body.IsMap()) return errors.At(body, body_path, "must be a map");
    absl::StatusOr<Entry> entry =
        parse(body && body.IsMap() ? body : YAML::Node(YAML::NodeType::Map), body_path);
    if (!entry.ok()) return entry.status();
    out.emplace(*name, *std::move(entry));
  }
  return absl::OkStatus();
}

absl::StatusOr<KubeconfigCluster> ParseCluster(const YAML::Node& body, const std::string& path,
                                               const std::string& file, const ParseErrors& errors) {
  KubeconfigCluster cluster;
  cluster.origin = {file, path};
  struct StringField {
    const char* key;
    std::string* target;
  };
  for (StringField field : {StringField{"server", &cluster.server},
                            StringField{"certificate-authority", &cluster.certificate_authority},
                            StringField{"tls-server-name", &cluster.tls_server_name},
                            StringField{"proxy-url", &cluster.proxy_url}}) {
    absl::StatusOr<std::string> value = ReadString(body, field.key, path, errors);
    if (!value.ok()) return value.status();
    *field.target = *std::move(value);
  }
  cluster.certificate_authority = ResolvePath(cluster.certificate_authority, file);
  absl::StatusOr<std::string> ca_data =
      ReadBase64(body, "certificate-authority-data", path, errors);
  if (!ca_data.ok()) return ca_data.status();
  cluster.certificate_authority_data = *std::move(ca_data);
  absl::StatusOr<bool> insecure = ReadBool(body, "insecure-skip-tls-verify", path, errors);
  if (!insecure.ok()) return insecure.status();
  cluster.insecure_skip_tls_verify = *insecure;
  if (absl::StatusOr<bool> ignored = ReadBool(body, "disable-compression", path, errors);
      !ignored.ok()) {
    return ignored.status();
  }

  const YAML::Node extensions = body["extensions"];
  if (extensions && !extensions.IsNull()) {
    const std::string extensions_path = fmt::format("{}.extensions", path);
    if (!extensions.IsSequence()) return errors.At(extensions, extensions_path, "must be a list");
    for (std::size_t i = 0; i < extensions.size(); ++i) {
      const std::string item_path = fmt::format("{}[{}]", extensions_path, i);
      if (!extensions[i].IsMap()) {
        return errors.At(extensions[i], item_path, "must be a map with name and extension");
      }
      absl::StatusOr<std::string> name = ReadString(extensions[i], "name", item_path, errors);
      if (!name.ok()) return name.status();
      if (*name != kExecExtensionName) continue;
      const YAML::Node value = extensions[i]["extension"];
      if (!value || value.IsNull()) continue;
      if (!value.IsMap()) {
        return errors.At(value, fmt::format("{}.extension", item_path), "must be a map");
      }
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      WriteJson(value, writer);
      cluster.exec_extension_json.assign(buffer.GetString(), buffer.GetSize());
    }
  }
  return cluster;
}

absl::StatusOr<ExecConfig> ParseExec(const YAML::Node& exec, const std::string& path,
                                     const std::string& file, const ParseErrors& errors) {
  ExecConfig config;
  struct StringField {
    const char* key;
    std::string* target;
  };
  for (StringField field :
       {StringField{"command", &config.command}, StringField{"apiVersion", &config.api_version},
        StringField{"installHint", &config.install_hint},
        StringField{"interactiveMode", &config.interactive_mode}}) {
    absl::StatusOr<std::string> value = ReadString(exec, field.key, path, errors);
    if (!value.ok()) return value.status();
    *field.target = *std::move(value);
  }
  // Only a command with a slash is a path; a bare name is looked up in $PATH at run time.
  if (config.command.find('/') != std::string::npos) {
    config.command = ResolvePath(config.command, file);
  }
  absl::StatusOr<bool> provide = ReadBool(exec, "provideClusterInfo", path, errors);
  if (!provide.ok()) return provide.status();
  config.provide_cluster_info = *provide;
  // clientcmd/api/v1 defaults: v1beta1 (and v1alpha1) plugins were interactive when possible
  // before the field existed; v1 must say.
  if (config.interactive_mode.empty() && config.api_version == kExecCredentialV1beta1) {
    config.interactive_mode = "IfAvailable";
  }

  const YAML::Node args = exec["args"];
  if (args && !args.IsNull()) {
    const std::string args_path = fmt::format("{}.args", path);
    if (!args.IsSequence()) return errors.At(args, args_path, "must be a list of strings");
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (!args[i].IsScalar()) {
        return errors.At(args[i], fmt::format("{}[{}]", args_path, i), "must be a string");
      }
      config.args.push_back(args[i].Scalar());
    }
  }
  const YAML::Node env = exec["env"];
  if (env && !env.IsNull()) {
    const std::string env_path = fmt::format("{}.env", path);
    if (!env.IsSequence()) return errors.At(env, env_path, "must be a list of {name, value}");
    for (std::size_t i = 0; i < env.size(); ++i) {
      const std::string item_path = fmt::format("{}[{}]", env_path, i);
      if (!env[i].IsMap()) return errors.At(env[i], item_path, "must be a map with name and value");
      absl::StatusOr<std::string> name = ReadString(env[i], "name", item_path, errors);
      if (!name.ok()) return name.status();
      absl::StatusOr<std::string> value = ReadString(env[i], "value", item_path, errors);
      if (!value.ok()) return value.status();
      config.env.emplace_back(*std::move(name), *std::move(value));
    }
  }
  return config;
}

absl::StatusOr<KubeconfigUser> ParseUser(const YAML::Node& body, const std::string& path,
                                         const std::string& file, const ParseErrors& errors) {
  KubeconfigUser user;
  user.origin = {file, path};
  struct StringField {
    const char* key;
    std::string* target;
  };
  for (StringField field :
       {StringField{"token", &user.token}, StringField{"tokenFile", &user.token_file},
        StringField{"client-certificate", &user.client_certificate},
        StringField{"client-key", &user.client_key}}) {
    absl::StatusOr<std::string> value = ReadString(body, field.key, path, errors);
    if (!value.ok()) return value.status();
    *field.target = *std::move(value);
  }
  user.token_file = ResolvePath(user.token_file, file);
  user.client_certificate = ResolvePath(user.client_certificate, file);
  user.client_key = ResolvePath(user.client_key, file);
  for (StringField field : {StringField{"client-certificate-data", &user.client_certificate_data},
                            StringField{"client-key-data", &user.client_key_data}}) {
    absl::StatusOr<std::string> value = ReadBase64(body, field.key, path, errors);
    if (!value.ok()) return value.status();
    *field.target = *std::move(value);
  }
  const YAML::Node exec = body["exec"];
  if (exec && !exec.IsNull()) {
    const std::string exec_path = fmt::format("{}.exec", path);
    if (!exec.IsMap()) return errors.At(exec, exec_path, "must be a map");
    absl::StatusOr<ExecConfig> config = ParseExec(exec, exec_path, file, errors);
    if (!config.ok()) return config.status();
    user.exec = *std::move(config);
  }
  for (const char* key :
       {"auth-provider", "username", "password", "as", "as-uid", "as-groups", "as-user-extra"}) {
    const YAML::Node value = body[key];
    if (!value || value.IsNull()) continue;
    if (value.IsScalar() && value.Scalar().empty()) continue;
    if ((value.IsSequence() || value.IsMap()) && value.size() == 0) continue;
    user.unsupported_keys.push_back(key);
  }
  return user;
}

absl::StatusOr<KubeconfigContext> ParseContext(const YAML::Node& body, const std::string& path,
                                               const std::string& file, const ParseErrors& errors) {
  KubeconfigContext context;
  context.origin = {file, path};
  absl::StatusOr<std::string> cluster = ReadString(body, "cluster", path, errors);
  if (!cluster.ok()) return cluster.status();
  absl::StatusOr<std::string> user = ReadString(body, "user", path, errors);
  if (!user.ok()) return user.status();
  context.cluster = *std::move(cluster);
  context.user = *std::move(user);
  return context;
}

// "a, b, c" for messages listing what a kubeconfig defines.
template <typename Entry>
std::string Names(const std::map<std::string, Entry>& entries) {
  if (entries.empty()) return "none defined";
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.first);
  return fmt::format("{}", fmt::join(names, ", "));
}

// Reads a referenced file for `key` of `origin`: "file: field: file X: <strerror>".
absl::StatusOr<std::string> ReadReferencedFile(const KubeconfigOrigin& origin, const char* key,
                                               const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileContents(path);
  if (!contents.ok()) {
    return FieldError(origin, key, std::string(contents.status().message()),
                      contents.status().code());
  }
  return contents;
}

// TLS settings of a cluster: the CA bytes (checked) and the flags.
absl::StatusOr<TlsSettings> ClusterTls(const KubeconfigCluster& cluster) {
  TlsSettings tls;
  tls.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
  tls.server_name = cluster.tls_server_name;
  const bool has_file = !cluster.certificate_authority.empty();
  const bool has_data = !cluster.certificate_authority_data.empty();
  if (has_file && has_data) {
    return FieldError(cluster.origin, "",
                      "certificate-authority and certificate-authority-data are both set; "
                      "kubectl refuses that too: keep one");
  }
  if ((has_file || has_data) && cluster.insecure_skip_tls_verify) {
    return FieldError(cluster.origin, "insecure-skip-tls-verify",
                      "cannot be combined with a certificate authority (kubectl refuses that "
                      "too): remove one");
  }
  if (has_file) {
    absl::StatusOr<std::string> pem =
        ReadReferencedFile(cluster.origin, "certificate-authority", cluster.certificate_authority);
    if (!pem.ok()) return pem.status();
    if (absl::Status check = CheckCertificatesPem(*pem); !check.ok()) {
      return FieldError(
          cluster.origin, "certificate-authority",
          fmt::format("file {}: {}", cluster.certificate_authority, std::string(check.message())));
    }
    tls.ca_pem = *std::move(pem);
  } else if (has_data) {
    if (absl::Status check = CheckCertificatesPem(cluster.certificate_authority_data);
        !check.ok()) {
      return FieldError(cluster.origin, "certificate-authority-data", std::string(check.message()));
    }
    tls.ca_pem = cluster.certificate_authority_data;
  }
  return tls;
}

// The client certificate and key of a user, read and checked; both empty if it has none.
absl::Status UserClientCertificate(const KubeconfigUser& user, Credentials& out) {
  const bool cert_file = !user.client_certificate.empty();
  const bool cert_data = !user.client_certificate_data.empty();
  if (!cert_file && !cert_data) return absl::OkStatus();  // a lone key is ignored, as by kubectl
  const bool key_file = !user.client_key.empty();
  const bool key_data = !user.client_key_data.empty();
  if (cert_file && cert_data) {
    return FieldError(user.origin, "",
                      "client-certificate and client-certificate-data are both set; keep one");
  }
  if (key_file && key_data) {
    return FieldError(user.origin, "", "client-key and client-key-data are both set; keep one");
  }
  if (!key_file && !key_data) {
    return FieldError(user.origin, "",
                      "client-certificate is set but neither client-key nor client-key-data");
  }
  const char* cert_key = cert_file ? "client-certificate" : "client-certificate-data";
  const char* key_key = key_file ? "client-key" : "client-key-data";
  if (cert_file) {
    absl::StatusOr<std::string> pem =
        ReadReferencedFile(user.origin, "client-certificate", user.client_certificate);
    if (!pem.ok()) return pem.status();
    out.client_cert_pem = *std::move(pem);
  } else {
    out.client_cert_pem = user.client_certificate_data;
  }
  if (key_file) {
    absl::StatusOr<std::string> pem =
        ReadReferencedFile(user.origin, "client-key", user.client_key);
    if (!pem.ok()) return pem.status();
    out.client_key_pem = *std::move(pem);
  } else {
    out.client_key_pem = user.client_key_data;
  }
  const auto where = [](bool file, const std::string& path) {
    return file ? fmt::format("file {}: ", path) : std::string();
  };
  if (absl::Status certs = CheckCertificatesPem(out.client_cert_pem); !certs.ok()) {
    return FieldError(user.origin, cert_key,
                      where(cert_file, user.client_certificate) + std::string(certs.message()));
  }
  if (absl::Status pair = CheckClientKeyPair(out.client_cert_pem, out.client_key_pem); !pair.ok()) {
    return FieldError(user.origin, key_key,
                      where(key_file, user.client_key) + std::string(pair.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateExec(const KubeconfigUser& user, const ExecConfig& exec) {
  if (exec.command.empty()) return FieldError(user.origin, "exec.command", "is required");
  if (exec.api_version.empty()) {
    return FieldError(
        user.origin, "exec.apiVersion",
        fmt::format("is required ({} or {})", kExecCredentialV1, kExecCredentialV1beta1));
  }
  if (exec.api_version != kExecCredentialV1 && exec.api_version != kExecCredentialV1beta1) {
    return FieldError(user.origin, "exec.apiVersion",
                      fmt::format("\"{}\" is not supported ({} or {})", exec.api_version,
                                  kExecCredentialV1, kExecCredentialV1beta1));
  }
  if (exec.interactive_mode.empty()) {
    return FieldError(user.origin, "exec.interactiveMode",
                      fmt::format("is required with {} (Never or IfAvailable)", kExecCredentialV1));
  }
  if (exec.interactive_mode == "Always") {
    return FieldError(user.origin, "exec.interactiveMode",
                      "Always needs a terminal, and informerd runs without one");
  }
  if (exec.interactive_mode != "Never" && exec.interactive_mode != "IfAvailable") {
    return FieldError(
        user.origin, "exec.interactiveMode",
        fmt::format("\"{}\" is not Never, IfAvailable or Always", exec.interactive_mode));
  }
  for (std::size_t i = 0; i < exec.env.size(); ++i) {
    if (exec.env[i].first.empty()) {
      return FieldError(user.origin, fmt::format("exec.env[{}].name", i), "is required");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Kubeconfig> ParseKubeconfig(std::string_view yaml_text, const std::string& path) {
  const ParseErrors errors(path);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: not valid YAML: {}", path,
                                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  Kubeconfig config;
  config.files.push_back(path);
  // An empty file is an empty configuration, as for kubectl.
  if (!root || root.IsNull()) return config;
  if (!root.IsMap()) return errors.At(root, "(top level)", "must be a map (a kubeconfig)");

  absl::StatusOr<std::string> api_version = ReadString(root, "apiVersion", "", errors);
  if (!api_version.ok()) return api_version.status();
  if (!api_version->empty() && *api_version != "v1") {
    return errors.At(root["apiVersion"], "apiVersion",
                     fmt::format("\"{}\" is not v1 (not a kubeconfig?)", *api_version));
  }
  absl::StatusOr<std::string> kind = ReadString(root, "kind", "", errors);
  if (!kind.ok()) return kind.status();
  if (!kind->empty() && *kind != "Config") {
    return errors.At(root["kind"], "kind",
                     fmt::format("\"{}\" is not Config (not a kubeconfig?)", *kind));
  }
  absl::StatusOr<std::string> current = ReadString(root, "current-context", "", errors);
  if (!current.ok()) return current.status();
  config.current_context = *std::move(current);

  if (absl::Status status = ParseNamedList(root, "clusters", "cluster", errors, config.clusters,
                                           [&](const YAML::Node& body, const std::string& field) {
                                             return ParseCluster(body, field, path, errors);
                                           });
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ParseNamedList(root, "users", "user", errors, config.users,
                                           [&](const YAML::Node& body, const std::string& field) {
                                             return ParseUser(body, field, path, errors);
                                           });
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ParseNamedList(root, "contexts", "context", errors, config.contexts,
                                           [&](const YAML::Node& body, const std::string& field) {
                                             return ParseContext(body, field, path, errors);
                                           });
      !status.ok()) {
    return status;
  }
  return config;
}

absl::StatusOr<Kubeconfig> LoadKubeconfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileContents(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), fmt::format("kubeconfig given by --kubeconfig: {}",
                                                          std::string(text.status().message())));
  }
  return ParseKubeconfig(*text, path);
}

absl::StatusOr<Kubeconfig> LoadKubeconfigFiles(const std::vector<std::string>& precedence,
                                               std::vector<std::string>* missing) {
  Kubeconfig merged;
  std::set<std::string> seen;
  for (const std::string& path : precedence) {
    if (path.empty() || !seen.insert(path).second) continue;
    absl::StatusOr<std::string> text = ReadFileContents(path);
    if (absl::IsNotFound(text.status())) {
      if (missing != nullptr) missing->push_back(path);
      continue;
    }
    if (!text.ok()) {
      return absl::Status(text.status().code(), fmt::format("cannot read kubeconfig: {}",
                                                            std::string(text.status().message())));
    }
    absl::StatusOr<Kubeconfig> file = ParseKubeconfig(*text, path);
    if (!file.ok()) return file.status();
    merged.files.push_back(path);
    // The first file to define a name wins, with its whole entry; map::emplace keeps the first.
    for (auto& entry : file->clusters)
      merged.clusters.emplace(entry.first, std::move(entry.second));
    for (auto& entry : file->users) merged.users.emplace(entry.first, std::move(entry.second));
    for (auto& entry : file->contexts)
      merged.contexts.emplace(entry.first, std::move(entry.second));
    if (merged.current_context.empty()) merged.current_context = file->current_context;
  }
  return merged;
}

absl::StatusOr<RestConfig> RestConfigFromKubeconfig(const Kubeconfig& kubeconfig,
                                                    const KubeconfigRestOptions& options) {
  const std::string files = fmt::format("{}", fmt::join(kubeconfig.files, ", "));
  const std::string context_name =
      options.context.empty() ? kubeconfig.current_context : options.context;
  if (context_name.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "kubeconfig {}: no context chosen: current-context is not set and --context was not "
        "given (contexts: {})",
        files, Names(kubeconfig.contexts)));
  }
  auto context_it = kubeconfig.contexts.find(context_name);
  if (context_it == kubeconfig.contexts.end()) {
    return absl::NotFoundError(fmt::format("kubeconfig {}: context \"{}\" not found (contexts: {})",
                                           files, context_name, Names(kubeconfig.contexts)));
  }
  const KubeconfigContext& context = context_it->second;
  if (context.cluster.empty()) return FieldError(context.origin, "cluster", "is not set");
  if (context.user.empty()) return FieldError(context.origin, "user", "is not set");
  auto cluster_it = kubeconfig.clusters.find(context.cluster);
  if (cluster_it == kubeconfig.clusters.end()) {
    return FieldError(context.origin, "cluster",
                      fmt::format("cluster \"{}\" not found (clusters: {})", context.cluster,
                                  Names(kubeconfig.clusters)),
                      absl::StatusCode::kNotFound);
  }
  auto user_it = kubeconfig.users.find(context.user);
  if (user_it == kubeconfig.users.end()) {
    return FieldError(
        context.origin, "user",
        fmt::format("user \"{}\" not found (users: {})", context.user, Names(kubeconfig.users)),
        absl::StatusCode::kNotFound);
  }
  const KubeconfigCluster& cluster = cluster_it->second;
  const KubeconfigUser& user = user_it->second;

  RestConfig config;
  config.identity = fmt::format("user \"{}\" (context \"{}\" in {})", context.user, context_name,
                                context.origin.file);
  if (cluster.server.empty()) return FieldError(cluster.origin, "server", "is required");
  absl::StatusOr<ServerUrl> server = ParseServerUrl(cluster.server);
  if (!server.ok())
    return FieldError(cluster.origin, "server", std::string(server.status().message()));
  config.server = *std::move(server);
  if (!cluster.proxy_url.empty()) {
    return FieldError(cluster.origin, "proxy-url", "is not supported by informerd",
                      absl::StatusCode::kUnimplemented);
  }
  if (config.server.scheme == "http") {
    // client-go reads neither TLS nor user settings for a plain-http server (ClientConfig only
    // merges them "if we are secure"), so it sends no credentials: kubectl proxy's use.
    config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
    return config;
  }
  absl::StatusOr<TlsSettings> tls = ClusterTls(cluster);
  if (!tls.ok()) return tls.status();
  config.tls = *std::move(tls);

  if (!user.unsupported_keys.empty()) {
    return FieldError(user.origin, user.unsupported_keys.front(),
                      "is not supported by informerd (use a token, a client certificate or an "
                      "exec plugin)",
                      absl::StatusCode::kUnimplemented);
  }
  Credentials fixed;
  if (absl::Status status = UserClientCertificate(user, fixed); !status.ok()) return status;
  fixed.bearer_token = user.token;

  if (!user.token_file.empty()) {
    FileTokenSource::Options token_options;
    token_options.path = user.token_file;
    token_options.description =
        fmt::format("{}: {}.tokenFile", user.origin.file, user.origin.field);
    token_options.fallback_token = user.token;
    token_options.client_cert_pem = fixed.client_cert_pem;
    token_options.client_key_pem = fixed.client_key_pem;
    token_options.clock = options.clock;
    token_options.on_warning = options.on_warning;
    absl::StatusOr<std::shared_ptr<FileTokenSource>> source =
        FileTokenSource::Create(std::move(token_options));
    if (!source.ok()) return source.status();
    config.credentials = *std::move(source);
    return config;
  }
  // client-go's exec authenticator stands aside when the user also has a token or a client
  // certificate (exec.go, UpdateTransportConfig).
  if (!user.exec.has_value() || !fixed.empty()) {
    config.credentials = std::make_shared<StaticCredentialSource>(std::move(fixed));
    return config;
  }
  if (absl::Status status = ValidateExec(user, *user.exec); !status.ok()) return status;
  ExecCredentialSource::Options exec_options;
  exec_options.exec = *user.exec;
  exec_options.cluster.server = cluster.server;
  exec_options.cluster.tls_server_name = cluster.tls_server_name;
  exec_options.cluster.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
  exec_options.cluster.ca_pem = config.tls.ca_pem;
  exec_options.cluster.config_json = cluster.exec_extension_json;
  exec_options.environment = options.environment;
  exec_options.identity = config.identity;
  exec_options.clock = options.clock;
  exec_options.timeout = options.exec_timeout;
  config.credentials = std::make_shared<ExecCredentialSource>(std::move(exec_options));
  return config;
}

}  // namespace informerd::daemon
