#include "infra/thread_priority.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace wachat::infra {

void lower_this_thread_priority() {
  // PRIO_PROCESS with a thread id names that one thread on Linux.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
}

}  // namespace wachat::infra
