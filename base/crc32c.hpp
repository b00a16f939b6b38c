// CRC32C (Castagnoli), as used by iSCSI, ext4 and LevelDB. The WAL frames
// every record with it and every replication batch carries one. Uses the
// SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table
// otherwise; both give identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace walrus::crc32c {

// Extends `crc` (the value returned for the preceding bytes, 0 to start)
// with `n` bytes at `data`.
uint32_t extend(uint32_t crc, const void* data, size_t n) noexcept;

inline uint32_t value(const void* data, size_t n) noexcept {
  return extend(0, data, n);
}
inline uint32_t value(std::string_view bytes) noexcept {
  return extend(0, bytes.data(), bytes.size());
}

// True when the hardware path is in use (reported by benchmarks).
bool hardware_accelerated() noexcept;

// The portable path, exposed so tests can check both paths agree.
uint32_t extend_portable(uint32_t crc, const void* data, size_t n) noexcept;

}  // namespace walrus::crc32c
