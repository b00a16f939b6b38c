// A write-ahead log on the in-memory file system, in folder /wal: the common
// ground of the wal/ test suites, which add their own helpers on top.
#pragma once

#include <cstdint>
#include <memory>

#include "caf/test/unit_test.hpp"
#include "wal/log.hpp"
#include "wal/memory_file_system.hpp"

namespace walrus::testing {

struct memory_wal_fixture {
  mutable wal::memory_file_system fs;
  wal::options opts;

  memory_wal_fixture(uint64_t seed, wal::sync_policy sync, uint64_t segment_bytes = 0) : fs(seed) {
    opts.dir = "/wal";
    opts.fs = &fs;
    opts.sync = sync;
    if (segment_bytes > 0) opts.segment_bytes = segment_bytes;
  }

  std::unique_ptr<wal::log> open() {
    auto opened = wal::log::open(opts);
    CAF_REQUIRE(opened.ok());
    return std::move(*opened);
  }
};

}  // namespace walrus::testing
