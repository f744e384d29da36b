// SPDX-License-Identifier: MIT
// The one place that chooses between the Linux splice path and the portable user-space path.
// Defining SPLICE_NO_SPLICE compiles the portable path alone, as a non-Linux build gets it.
#ifndef SPLICE_DETAIL_PLATFORM_HPP_
#define SPLICE_DETAIL_PLATFORM_HPP_

#if defined(__linux__) && !defined(SPLICE_NO_SPLICE)
#include "splice_linux.hpp"
#else
#include "splice_portable.hpp"
#endif

#endif  // SPLICE_DETAIL_PLATFORM_HPP_
