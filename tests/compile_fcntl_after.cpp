// SPDX-License-Identifier: MIT
// Compiles only if splice::copy and glibc's ::splice coexist with <fcntl.h> included last.
#include <splice/splice.hpp>

#include <fcntl.h>

long compile_fcntl_after(int d, int s) {
  return long(splice::copy(d, s).bytes) + long(::splice(s, nullptr, d, nullptr, 0, SPLICE_F_NONBLOCK));
}
