// SPDX-License-Identifier: MIT
// An LD_PRELOAD shim for the end-to-end tests: the EPOLL_CTL_ADD calls counted in
// FAIL_EPOLL_CTL_ADD (1-based, comma-separated, in the order the process makes them) fail with
// ENOMEM, as when the kernel is out of memory or the user is past fs.epoll.max_user_watches.
//   c++ -shared -fPIC -o fail_epoll_ctl.so fail_epoll_ctl.cpp -ldl
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dlfcn.h>
#include <sys/epoll.h>

extern "C" int epoll_ctl(int ep, int op, int fd, epoll_event* ev) {
  using real_type = int (*)(int, int, int, epoll_event*);
  static const real_type real = reinterpret_cast<real_type>(dlsym(RTLD_NEXT, "epoll_ctl"));
  static std::atomic<int> adds{0};
  if (op == EPOLL_CTL_ADD) {
    const std::string n = "," + std::to_string(++adds) + ",";
    const char* list = std::getenv("FAIL_EPOLL_CTL_ADD");
    if (list && (std::string(",") + list + ",").find(n) != std::string::npos) {
      errno = ENOMEM;
      return -1;
    }
  }
  return real(ep, op, fd, ev);
}
