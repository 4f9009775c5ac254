#include "daemon/service/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace informerd::daemon {
namespace {

// On Linux, PRIO_PROCESS with a thread id addresses that thread alone.
id_t ThisThreadId() { return static_cast<id_t>(syscall(SYS_gettid)); }

}  // namespace

int ThisThreadsNice() {
  errno = 0;
  return getpriority(PRIO_PROCESS, ThisThreadId());
}

void LowerThisThreadsPriority(int nice) {
  // The niceness this thread was last set to by this function: a thread handles many calls.
  thread_local int applied = 0;
  if (nice <= 0 || applied >= nice) return;
  applied = nice;
  const int target = std::min(nice, 19);
  if (ThisThreadsNice() >= target) return;
  (void)setpriority(PRIO_PROCESS, ThisThreadId(), target);
}

}  // namespace informerd::daemon
