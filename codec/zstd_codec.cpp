// zstd with a compression and a decompression context kept per object.
//
// Input must be exactly one standard zstd frame (what compress() writes).
// Decompression then takes one of two paths:
// * the frame declares its content size (every frame this codec writes): the
//   size is checked against the limit, the output sized once, and decoded in
//   a single pass;
// * the frame declares no size (a streaming writer): a streaming decode into
//   output grown geometrically up to limit + 1 bytes; reaching limit + 1
//   proves the input would exceed the limit.
// The decoder's window is capped (decoder_window_log_max) so a frame cannot
// make the streaming path allocate a large window either.
#include <zstd.h>

#include <algorithm>
#include <cassert>

#include "codec/implementations.hpp"

namespace walrus::codec::detail {
namespace {

// 8 MiB: the largest window of levels <= 19 (level 19 uses 2^23).
constexpr int decoder_window_log_max = 23;
constexpr size_t initial_stream_output_bytes = 64 * 1024;

class zstd_codec final : public block_codec {
 public:
  explicit zstd_codec(int level)
      : level_(level), cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()) {
    assert(level != 0 && level >= min_zstd_level && level <= max_zstd_level);
    assert(cctx_ != nullptr && dctx_ != nullptr);  // allocation failure only
    [[maybe_unused]] auto set_level = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    assert(!ZSTD_isError(set_level));
    [[maybe_unused]] auto set_window =
        ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, decoder_window_log_max);
    assert(!ZSTD_isError(set_window));
  }
  ~zstd_codec() override {
    ZSTD_freeCCtx(cctx_);
    ZSTD_freeDCtx(dctx_);
  }
  zstd_codec(const zstd_codec&) = delete;
  zstd_codec& operator=(const zstd_codec&) = delete;

  codec_id id() const noexcept override { return codec_id::zstd; }
  int level() const noexcept override { return level_; }
  size_t compress_bound(size_t input_bytes) const noexcept override {
    return ZSTD_compressBound(input_bytes);
  }

 private:
  void do_compress(std::string_view input, std::string& output) override {
    output.resize(ZSTD_compressBound(input.size()));
    auto written = ZSTD_compress2(cctx_, output.data(), output.size(), input.data(), input.size());
    // With a bound-sized output, zstd fails only on allocation failure.
    assert(!ZSTD_isError(written));
    output.resize(written);
  }

  status do_decompress(std::string_view input, const output_limit& limit,
                       std::string& output) override {
    if (auto st = check_single_frame(input); !st.ok()) return st;
    auto declared = ZSTD_getFrameContentSize(input.data(), input.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR) return corrupt("invalid frame header");
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return decompress_stream(input, limit, output);
    if (declared > limit.bytes)
      return too_large("input declares " + std::to_string(declared) + " bytes", limit);
    return decompress_declared(input, static_cast<size_t>(declared), output);
  }

  // Exactly one standard frame, as compress() writes: no legacy formats, no
  // skippable or concatenated frames, so the declared size covers the input.
  status check_single_frame(std::string_view input) const {
    if (input.size() < 4)
      return corrupt("input of " + std::to_string(input.size()) +
                     " bytes is too short for a frame");
    uint32_t magic = static_cast<uint32_t>(static_cast<unsigned char>(input[0])) |
                     static_cast<uint32_t>(static_cast<unsigned char>(input[1])) << 8 |
                     static_cast<uint32_t>(static_cast<unsigned char>(input[2])) << 16 |
                     static_cast<uint32_t>(static_cast<unsigned char>(input[3])) << 24;
    if (magic != ZSTD_MAGICNUMBER) return corrupt("no zstd frame magic number");
    auto frame_bytes = ZSTD_findFrameCompressedSize(input.data(), input.size());
    if (ZSTD_isError(frame_bytes))
      return corrupt(std::string("corrupt or truncated frame: ") + ZSTD_getErrorName(frame_bytes));
    if (frame_bytes != input.size())
      return corrupt(std::to_string(input.size() - frame_bytes) +
                     " bytes follow the frame; exactly one frame expected");
    return ok_status();
  }

  status decompress_declared(std::string_view input, size_t declared, std::string& output) {
    output.resize(declared);
    auto produced =
        ZSTD_decompressDCtx(dctx_, output.data(), output.size(), input.data(), input.size());
    if (ZSTD_isError(produced)) return corrupt(ZSTD_getErrorName(produced));
    if (produced != declared)
      return corrupt("frame declares " + std::to_string(declared) + " bytes but holds " +
                     std::to_string(produced));
    return ok_status();
  }

  status decompress_stream(std::string_view input, const output_limit& limit, std::string& output) {
    ZSTD_DCtx_reset(dctx_, ZSTD_reset_session_only);
    const size_t capacity_cap = limit.bytes + 1;  // one byte more proves an overflow
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    size_t produced = 0;
    for (;;) {
      if (produced == output.size()) {
        if (output.size() == capacity_cap) return stream_too_large(limit);
        auto grown = std::max({initial_stream_output_bytes, 2 * produced, output.capacity()});
        output.resize(std::min(capacity_cap, grown));
      }
      ZSTD_outBuffer out{output.data(), output.size(), produced};
      size_t consumed_before = in.pos;
      auto hint = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(hint)) return corrupt(ZSTD_getErrorName(hint));
      bool progressed = in.pos > consumed_before || out.pos > produced;
      produced = out.pos;
      if (produced > limit.bytes) return stream_too_large(limit);
      bool input_done = in.pos == in.size;
      if (hint == 0) {  // the frame is complete and flushed
        if (!input_done) return corrupt("bytes follow the frame");
        break;
      }
      if (input_done && out.pos < out.size) return corrupt("truncated frame");
      if (!progressed && out.pos < out.size) return corrupt("decoder made no progress");
    }
    output.resize(produced);
    return ok_status();
  }

  status stream_too_large(const output_limit& limit) const {
    return too_large("input decodes to more than " + std::to_string(limit.bytes) + " bytes", limit);
  }

  int level_;
  ZSTD_CCtx* cctx_;
  ZSTD_DCtx* dctx_;
};

}  // namespace

std::unique_ptr<block_codec> make_zstd_codec(int level) {
  return std::make_unique<zstd_codec>(level);
}

}  // namespace walrus::codec::detail
