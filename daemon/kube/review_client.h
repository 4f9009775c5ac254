// ReviewClient: the one write the daemon makes to the apiserver — POSTing a TokenReview or a
// SubjectAccessReview and reading the answer — kept apart from ListWatchClient because nothing
// on the informer side may write. ApiServerClient implements both, over the same connections and
// credentials; tests script it.
//
// Threads: Post() may be called from any thread; `done` runs on strand(), never inside Post().
#pragma once

#include <functional>
#include <string>

#include "daemon/kube/list_watch_client.h"

namespace informerd::daemon {

class ReviewClient {
 public:
  using Strand = ListWatchClient::Strand;
  using PostCallback = std::function<void(HttpResult)>;

  virtual ~ReviewClient() = default;

  // POST `json_body` (Content-Type application/json) to `path` ("/apis/authentication.k8s.io/
  // v1/tokenreviews"). `done` is called exactly once: a 2xx answer with its whole body and an OK
  // status, or the failure, with the codes HttpResult documents. Bounded by the client's request
  // timeout.
  virtual void Post(std::string path, std::string json_body, PostCallback done) = 0;

  virtual Strand strand() const = 0;
};

}  // namespace informerd::daemon
