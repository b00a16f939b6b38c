// Internal to codec/: constructors of the three block_codec implementations,
// called only by make_codec (which validates ids and levels first).
#pragma once

#include <memory>

#include "codec/codec.hpp"

namespace walrus::codec::detail {

std::unique_ptr<block_codec> make_none_codec();
std::unique_ptr<block_codec> make_snappy_codec();
// Precondition: min_zstd_level <= level <= max_zstd_level, level != 0.
std::unique_ptr<block_codec> make_zstd_codec(int level);

}  // namespace walrus::codec::detail
