// Compression codecs for replication batches: none, snappy and zstd behind one
// interface. A `block_codec` compresses and decompresses one whole block (a
// batch's entries blob) at a time; there is no streaming API because a batch
// is bounded (docs/protocol.md §4: at most 64 MiB uncompressed).
//
// Decompression is the attack surface: the compressed bytes come from the
// network. Every decompression is bounded by the caller's limit, checked
// against the size the input declares *before* any output is allocated, and
// enforced while decoding input that declares no size. Corrupt input is an
// error status, never a crash. docs/codec.md describes ids, limits and errors.
//
// Codec objects keep their compression/decompression contexts between calls
// and reuse the caller's output buffers, so a steady stream of batches does
// not allocate. They are NOT thread-safe: use one object per thread (per
// session, in practice).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace walrus::codec {

// Wire values (proto `Codec`, messages::batch::codec): never renumber.
enum class codec_id : uint8_t { none = 0, snappy = 1, zstd = 2 };

// "none", "snappy", "zstd"; "unknown" for a value outside the enum.
const char* to_string(codec_id id) noexcept;

// Maps a wire value to a codec id; an unknown value is errc::unsupported_codec.
[[nodiscard]] result<codec_id> codec_id_from_wire(uint32_t wire_value);

// zstd levels accepted: negative "fast" levels, then 1..19. Level 0 (zstd's
// alias for its default) and the "ultra" levels 20..22, whose windows exceed
// the decoder's window limit below, are refused.
constexpr int min_zstd_level = -7;
constexpr int max_zstd_level = 19;
// Level 1 measured fastest of the positive levels with a ratio close to level
// 3 on WAL-like batches (docs/codec.md, bench/codec_bench.cpp): replication
// latency matters more than the last few percent of bandwidth.
constexpr int default_zstd_level = 1;

// A codec and its level: what configuration and command lines name.
struct codec_config {
  codec_id id = codec_id::none;
  int level = 0;  // zstd only; 0 for none and snappy
};

// "none", "snappy", "zstd", "zstd:<level>" (default level when omitted).
// An unknown name is errc::unsupported_codec, a bad level errc::invalid_argument.
[[nodiscard]] result<codec_config> parse_codec_config(std::string_view text);

// "none", "snappy", "zstd:1": the form parse_codec_config reads back.
std::string to_string(const codec_config& config);

// Compresses and decompresses whole blocks. Not thread-safe (see above).
class block_codec {
 public:
  // `expected_size` for a block whose uncompressed size is not known.
  static constexpr size_t unknown_size = std::numeric_limits<size_t>::max();
  // The largest input compress() accepts: the wire states sizes as u32.
  static constexpr size_t max_input_bytes = std::numeric_limits<uint32_t>::max();

  virtual ~block_codec() = default;

  virtual codec_id id() const noexcept = 0;
  virtual int level() const noexcept { return 0; }
  codec_config config() const noexcept { return {id(), level()}; }

  // Upper bound of compress()'s output for `input_bytes` of input.
  virtual size_t compress_bound(size_t input_bytes) const noexcept = 0;

  // Replaces `output` with the compressed form of `input` (which must not
  // point into `output`), reusing its capacity. Fails (errc::invalid_argument) only for input above
  // max_input_bytes; `output` is then empty.
  [[nodiscard]] status compress(std::string_view input, std::string& output);

  // Replaces `output` with the decompressed form of `input` (which must not
  // point into `output`), reusing its capacity. When `expected_size` is known the output must be
  // exactly that long; it may never exceed `max_output`. Errors (output is then empty):
  // * errc::size_limit_exceeded: expected_size > max_output, or the input
  //   declares or produces more than min(expected_size, max_output). Checked
  //   before allocating; nothing above the limit is ever allocated.
  // * errc::decompression_failed: corrupt or truncated input, or output of a
  //   size other than expected_size. The message names the codec and cause.
  [[nodiscard]] status decompress(std::string_view input, size_t expected_size, size_t max_output,
                                  std::string& output);

 protected:
  // The limit an implementation must enforce, and how to describe it.
  struct output_limit {
    size_t bytes;        // never produce more than this
    bool from_expected;  // the limit is the expected size (else max_output)
    std::string describe() const;
  };
  // Shared error builders, so every codec reports in the same words:
  // "<codec>: <what>, more than <limit>" and "<codec>: <cause>".
  status too_large(std::string_view what, const output_limit& limit) const;
  status corrupt(std::string_view cause) const;

 private:
  virtual void do_compress(std::string_view input, std::string& output) = 0;
  // Decompresses into `output` (replacing it) producing at most limit.bytes,
  // or returns an error. The caller checks the exact expected size.
  virtual status do_decompress(std::string_view input, const output_limit& limit,
                               std::string& output) = 0;
};

// A codec object for `id` (level: zstd only; ignored otherwise). Unknown ids
// are errc::unsupported_codec, a zstd level out of range errc::invalid_argument.
[[nodiscard]] result<std::unique_ptr<block_codec>> make_codec(codec_id id,
                                                              int level = default_zstd_level);
[[nodiscard]] result<std::unique_ptr<block_codec>> make_codec(const codec_config& config);

// Handshake negotiation (docs/protocol.md §3): the first codec of the
// primary's preference list that the replica supports; codec_id::none when
// they share none (none is always possible; an empty replica list means
// none only). Callers drop unknown wire values with codec_id_from_wire.
codec_id negotiate_codec(const std::vector<codec_id>& primary_preference,
                         const std::vector<codec_id>& replica_supported) noexcept;

}  // namespace walrus::codec
