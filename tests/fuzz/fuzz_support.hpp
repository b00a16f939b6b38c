// Helpers shared by the fuzz targets: reading parameters from the front of
// an input, and the property every error must have (a walrus status: a known
// code and a message naming the cause).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "base/status.hpp"
#include "tests/fuzz/fuzz_targets.hpp"

namespace walrus::fuzz {

// Takes parameters from the front of an input; past its end every read
// yields zeros, so any input is a valid one.
class byte_reader {
 public:
  byte_reader(const uint8_t* data, size_t size)
      : bytes_(reinterpret_cast<const char*>(data), size) {}

  uint8_t u8() {
    if (bytes_.empty()) return 0;
    auto value = static_cast<uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return value;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) | (static_cast<uint32_t>(u16()) << 16); }

  // What the parameters left: the payload.
  std::string_view rest() const { return bytes_; }

 private:
  std::string_view bytes_;
};

// A failure is a walrus status with a named code and a message; when
// `allowed` is not empty the code must be one of them.
inline void check_error(const status& error, std::initializer_list<errc> allowed = {}) {
  WALRUS_FUZZ_CHECK(!error.ok());
  WALRUS_FUZZ_CHECK(std::string_view{to_string(error.code())} != "unknown_error");
  WALRUS_FUZZ_CHECK(!error.message().empty());
  if (allowed.size() == 0) return;
  bool listed = false;
  for (auto code : allowed) listed = listed || code == error.code();
  if (!listed) std::fprintf(stderr, "unexpected error: %s\n", error.to_string().c_str());
  WALRUS_FUZZ_CHECK(listed);
}

}  // namespace walrus::fuzz
