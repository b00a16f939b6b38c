// Snappy (raw format, no framing): a varint uncompressed length, then
// literals and copies. The declared length is checked against the limit
// before the output is sized; snappy's decoder then never writes past it and
// rejects input that does not produce exactly that many bytes.
#include <snappy.h>

#include <cassert>

#include "codec/implementations.hpp"

namespace walrus::codec::detail {
namespace {

class snappy_codec final : public block_codec {
 public:
  codec_id id() const noexcept override { return codec_id::snappy; }
  size_t compress_bound(size_t input_bytes) const noexcept override {
    return snappy::MaxCompressedLength(input_bytes);
  }

 private:
  void do_compress(std::string_view input, std::string& output) override {
    output.resize(snappy::MaxCompressedLength(input.size()));
    size_t written = 0;
    snappy::RawCompress(input.data(), input.size(), output.data(), &written);
    assert(written <= output.size());
    output.resize(written);
  }

  status do_decompress(std::string_view input, const output_limit& limit,
                       std::string& output) override {
    if (input.empty()) return corrupt("empty input has no length header");
    size_t declared = 0;
    if (!snappy::GetUncompressedLength(input.data(), input.size(), &declared))
      return corrupt("invalid uncompressed-length header");
    if (declared > limit.bytes)
      return too_large("input declares " + std::to_string(declared) + " bytes", limit);
    output.resize(declared);
    if (!snappy::RawUncompress(input.data(), input.size(), output.data()))
      return corrupt("corrupt or truncated input (declared " + std::to_string(declared) +
                     " bytes, " + std::to_string(input.size()) + " bytes of input)");
    return ok_status();
  }
};

}  // namespace

std::unique_ptr<block_codec> make_snappy_codec() {
  return std::make_unique<snappy_codec>();
}

}  // namespace walrus::codec::detail
