// Environment: a snapshot of environment variables, passed by value to whatever reads them.
//
// Taken once by the daemon's main path (Environment::FromProcess()) and handed to the code that
// loads apiserver connection settings: $KUBECONFIG and $HOME for the kubeconfig search,
// KUBERNETES_SERVICE_HOST/PORT for in-cluster configuration, and the whole set as the base
// environment of exec credential plugins (client-go gives plugins the parent's environment).
// Nothing else calls getenv(), so tests build an Environment from a map instead of mutating the
// process's variables. Immutable after construction: safe to share between threads.
#pragma once

#include <map>
#include <string>

namespace informerd::daemon {

class Environment {
 public:
  Environment() = default;
  explicit Environment(std::map<std::string, std::string> variables)
      : variables_(std::move(variables)) {}

  // Reads the process's environment (environ) once.
  static Environment FromProcess();

  // The value, or "" when unset. Like client-go, callers treat an empty variable as unset.
  std::string Get(const std::string& name) const;

  const std::map<std::string, std::string>& variables() const { return variables_; }

 private:
  std::map<std::string, std::string> variables_;
};

}  // namespace informerd::daemon
