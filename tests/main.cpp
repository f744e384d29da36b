// SPDX-License-Identifier: MIT
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "splice/pipe_pool.hpp"

int main(int argc, char** argv) {
  const int failed = Catch::Session().run(argc, argv);
  // Close the shared pool's idle pipes, so that any fd still open at exit is a leak
  // (valgrind --track-fds=yes in CI lists them).
  splice_lib::pipe_pool::shared().clear();
  return failed;
}
