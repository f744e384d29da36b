// SPDX-License-Identifier: MIT
// Compiles only if splice::copy and glibc's ::splice coexist with <fcntl.h> included first.
#include <fcntl.h>

#include <splice/splice.hpp>

long compile_fcntl_before(int d, int s) {
  return long(splice::copy(d, s, 1).bytes) + long(::splice(s, nullptr, d, nullptr, 0, 0));
}
