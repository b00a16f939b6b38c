// The fuzz targets as plain functions, so that two drivers can run them:
// libFuzzer (clang, -DWALRUS_FUZZ=ON: each target's source adds a one-line
// LLVMFuzzerTestOneInput when WALRUS_LIBFUZZER is defined) and the gcc-built
// smoke driver of CI (smoke_main.cpp). A target returns 0 for every input and
// calls fuzz_check, which aborts, when a property does not hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

// The RESP request parser (apps/kv/resp.hpp).
int walrus_fuzz_resp(const uint8_t* data, size_t size);
// The frame decoder, the wire conversions and validators, and the codecs.
int walrus_fuzz_frame(const uint8_t* data, size_t size);
// WAL recovery, cursors and appends over arbitrary segment files.
int walrus_fuzz_wal(const uint8_t* data, size_t size);

namespace walrus::fuzz {

// Aborts (a crash both drivers report, with the input) when `condition` is
// false. Unlike assert it stays on under NDEBUG.
inline void check(bool condition, const char* what, const char* file, int line) {
  if (condition) return;
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", file, line, what);
  std::abort();
}

}  // namespace walrus::fuzz

#define WALRUS_FUZZ_CHECK(condition) \
  ::walrus::fuzz::check(static_cast<bool>(condition), #condition, __FILE__, __LINE__)
