#include "base/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace walrus::crc32c {
namespace {

constexpr uint32_t polynomial = 0x82F63B78u;  // reflected Castagnoli

struct tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (polynomial & (0u - (crc & 1u)));
      t[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
  }
};

constexpr tables table{};

// Combining CRCs: the CRC register update is linear over GF(2), so the CRC of
// A|B equals the register after A multiplied by x^(8·|B|) mod P, xor the
// register after B started from zero. Polynomials are reflected: x^0 is
// bit 31.
constexpr uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ polynomial : b >> 1;
  }
  return product;
}

// x^(8·bytes) mod P.
constexpr uint32_t x_pow_8n(size_t bytes) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t square = 1u << 30;  // x^1, then x^2, x^4, ...
  for (size_t bits = bytes * 8; bits != 0; bits >>= 1) {
    if (bits & 1) result = multiply_mod_p(square, result);
    square = multiply_mod_p(square, square);
  }
  return result;
}

// Three interleaved streams hide the 3-cycle latency of the crc32
// instruction; joining them shifts a CRC by one stripe, four table lookups.
// Stripes shrink for what is left (a 16 KiB record: 3 x 4 KiB, then 3 x
// 1 KiB, ...), so records of every size run at the instruction's throughput
// rather than its latency.
template <size_t Stripe>
struct stripe_shift {
  std::array<std::array<uint32_t, 256>, 4> t{};
  constexpr stripe_shift() {
    constexpr uint32_t k = x_pow_8n(Stripe);
    for (uint32_t i = 0; i < 4; ++i)
      for (uint32_t b = 0; b < 256; ++b) t[i][b] = multiply_mod_p(k, b << (8 * i));
  }
  uint32_t operator()(uint32_t crc) const {
    return t[0][crc & 0xFF] ^ t[1][(crc >> 8) & 0xFF] ^ t[2][(crc >> 16) & 0xFF] ^ t[3][crc >> 24];
  }
};

template <size_t Stripe>
constexpr stripe_shift<Stripe> shift_table{};

#if defined(__x86_64__)
template <size_t Stripe>
__attribute__((target("sse4.2"))) inline void three_streams(uint64_t& c, const unsigned char*& p,
                                                            size_t& n) noexcept {
  while (n >= 3 * Stripe) {
    uint64_t c1 = 0;
    uint64_t c2 = 0;
    for (size_t i = 0; i < Stripe; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p + Stripe + i, 8);
      std::memcpy(&w2, p + 2 * Stripe + i, 8);
      c = _mm_crc32_u64(c, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c = shift_table<Stripe>(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
    c = shift_table<Stripe>(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c2);
    p += 3 * Stripe;
    n -= 3 * Stripe;
  }
}

__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const void* data,
                                                        size_t n) noexcept {
  auto p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  three_streams<4096>(c, p, n);
  three_streams<1024>(c, p, n);
  three_streams<256>(c, p, n);
  three_streams<64>(c, p, n);
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --n;
  }
  return ~c32;
}

bool detect_sse42() noexcept {
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

uint32_t extend_portable(uint32_t crc, const void* data, size_t n) noexcept {
  auto p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;  // little-endian hosts only; the build checks for x86_64/aarch64
    c = table.t[7][lo & 0xFF] ^ table.t[6][(lo >> 8) & 0xFF] ^ table.t[5][(lo >> 16) & 0xFF] ^
        table.t[4][lo >> 24] ^ table.t[3][hi & 0xFF] ^ table.t[2][(hi >> 8) & 0xFF] ^
        table.t[1][(hi >> 16) & 0xFF] ^ table.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = (c >> 8) ^ table.t[0][(c ^ *p++) & 0xFF];
    --n;
  }
  return ~c;
}

bool hardware_accelerated() noexcept {
#if defined(__x86_64__)
  static const bool has = detect_sse42();
  return has;
#else
  return false;
#endif
}

uint32_t extend(uint32_t crc, const void* data, size_t n) noexcept {
#if defined(__x86_64__)
  if (hardware_accelerated()) return extend_sse42(crc, data, n);
#endif
  return extend_portable(crc, data, n);
}

}  // namespace walrus::crc32c
