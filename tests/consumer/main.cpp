// SPDX-License-Identifier: MIT
#include <fcntl.h>
#include <unistd.h>

#include <splice/splice.hpp>

// Copies one pipe into another through the installed library and checks the bytes.
int main() {
  int a[2], b[2];
  if (::pipe(a) != 0 || ::pipe(b) != 0) return 1;
  if (::write(a[1], "ok", 2) != 2) return 1;
  ::close(a[1]);
  const auto r = splice::copy(b[1], a[0]);
  char buf[3] = {};
  return r.error || r.bytes != 2 || ::read(b[0], buf, 2) != 2 || buf[0] != 'o' ? 1 : 0;
}
