#include "core/user_info.h"

#include <algorithm>
#include <cstdio>

namespace informerd::core {
namespace {

// Go's %q for the strings a denial names (user, namespace, object name), as the apiserver's
// Forbidden message quotes them: a name taken from a client certificate or a token review may
// hold quotes or control characters, and must not be able to forge the rest of the message or
// a log line. Bytes of 0x80 and above are kept (UTF-8 names stay readable).
std::string Quote(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[5];
          std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned char>(c));
          out += escaped;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

UserInfo AnonymousUser() {
  UserInfo user;
  user.name = kAnonymousUser;
  user.groups = {kUnauthenticatedGroup};
  return user;
}

void AddAuthenticatedGroup(UserInfo& user) {
  if (user.name == kAnonymousUser) return;
  const bool has_either = std::any_of(user.groups.begin(), user.groups.end(), [](const auto& g) {
    return g == kAuthenticatedGroup || g == kUnauthenticatedGroup;
  });
  if (!has_either) user.groups.push_back(kAuthenticatedGroup);
}

std::string QualifiedResource(const ResourceAttributes& attributes) {
  if (attributes.group.empty()) return attributes.resource;
  return attributes.resource + "." + attributes.group;
}

std::string DescribeDenial(const UserInfo& user, const ResourceAttributes& attributes) {
  std::string out = "user " + Quote(user.name) + " cannot " + attributes.verb + " " +
                    QualifiedResource(attributes);
  if (!attributes.name.empty()) out += " " + Quote(attributes.name);
  if (attributes.namespace_name.empty()) {
    out += " at the cluster scope";
  } else {
    out += " in namespace " + Quote(attributes.namespace_name);
  }
  return out;
}

}  // namespace informerd::core
