// The identity codec: the block travels as it is.
#include "codec/implementations.hpp"

namespace walrus::codec::detail {
namespace {

class none_codec final : public block_codec {
 public:
  codec_id id() const noexcept override { return codec_id::none; }
  size_t compress_bound(size_t input_bytes) const noexcept override { return input_bytes; }

 private:
  void do_compress(std::string_view input, std::string& output) override { output.assign(input); }

  status do_decompress(std::string_view input, const output_limit& limit,
                       std::string& output) override {
    if (input.size() > limit.bytes)
      return too_large("input of " + std::to_string(input.size()) + " bytes", limit);
    output.assign(input);
    return ok_status();
  }
};

}  // namespace

std::unique_ptr<block_codec> make_none_codec() {
  return std::make_unique<none_codec>();
}

}  // namespace walrus::codec::detail
