#define CAF_SUITE retention_slots
#include "caf/test/unit_test.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "actors/retention_slots.hpp"
#include "wal/memory_file_system.hpp"

using namespace walrus;

namespace {

const std::string dir = "/wal";

struct fixture {
  wal::memory_file_system fs;
  std::string path = retention_slots_path(dir);
  fixture() { CAF_REQUIRE(fs.create_directories(dir).ok()); }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(retention_slots_tests, fixture)

CAF_TEST(no file means no slots) {
  auto loaded = load_retention_slots(fs, path);
  CAF_REQUIRE(loaded.ok());
  CAF_CHECK(loaded->empty());
}

CAF_TEST(slots round trip with ids holding spaces colons and newlines) {
  retention_slots slots{{"replica-1", 42}, {"with space: and\nnewline", UINT64_MAX}, {"", 0}};
  CAF_REQUIRE(save_retention_slots(fs, path, slots).ok());
  auto loaded = load_retention_slots(fs, path);
  CAF_REQUIRE(loaded.ok());
  CAF_CHECK(*loaded == slots);
  // Replaced whole, not appended to.
  retention_slots fewer{{"replica-2", 7}};
  CAF_REQUIRE(save_retention_slots(fs, path, fewer).ok());
  CAF_CHECK(*load_retention_slots(fs, path) == fewer);
}

CAF_TEST(a damaged file is refused naming the file never misread) {
  retention_slots slots{{"replica-1", 123456}, {"replica-2", 99}};
  CAF_REQUIRE(save_retention_slots(fs, path, slots).ok());
  auto size = *(*fs.open(path, wal::open_mode::read_only))->size();
  for (uint64_t offset = 0; offset < size; ++offset) {
    fs.flip_byte(path, offset, 0x01);
    auto loaded = load_retention_slots(fs, path);
    if (loaded.ok()) {
      CAF_FAIL("a flipped bit at offset " << offset << " was accepted");
    } else {
      CAF_CHECK(loaded.error().code() == errc::corruption);
      CAF_CHECK(loaded.error().message().find(path) != std::string::npos);
    }
    fs.flip_byte(path, offset, 0x01);
  }
  CAF_CHECK(*load_retention_slots(fs, path) == slots);
}

CAF_TEST(an unreadable file is an error never an empty set of slots) {
  // A disk that fails every open and listing: forgetting the replicas there
  // would let retention drop what they need.
  struct failing_fs : wal::file_system {
    result<std::unique_ptr<wal::file>> open(const std::string& path, wal::open_mode) override {
      return status{errc::io_error, "open " + path + ": Input/output error"};
    }
    result<std::vector<std::string>> list(const std::string& dir) override {
      return status{errc::io_error, "opendir " + dir + ": Input/output error"};
    }
    status remove(const std::string&) override { return status{errc::io_error, "remove"}; }
    status rename(const std::string&, const std::string&) override {
      return status{errc::io_error, "rename"};
    }
    status create_directories(const std::string&) override {
      return status{errc::io_error, "mkdir"};
    }
    status sync_dir(const std::string&) override { return status{errc::io_error, "fsync"}; }
    result<std::chrono::system_clock::time_point> modified_time(const std::string&) override {
      return status{errc::io_error, "stat"};
    }
  };
  failing_fs broken;
  auto loaded = load_retention_slots(broken, path);
  CAF_REQUIRE(!loaded.ok());
  CAF_CHECK(loaded.error().code() == errc::io_error);
}

CAF_TEST_FIXTURE_SCOPE_END()
