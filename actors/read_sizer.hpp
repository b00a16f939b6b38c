// How many bytes a CAF 0.17 stream should read next.
//
// CAF hands a broker each read in the stream's buffer and then resizes that
// buffer back to the configured maximum (receive_policy::at_most), which
// zero-fills every byte the read did not use: a 64 KiB maximum costs a
// 62 KiB memset for each 2 KiB of pipelined requests. A read_sizer keeps the
// maximum near what the peer actually sends: it doubles (up to `max`) when
// a read fills it and halves (down to `min`) after a run of reads that used
// less than a quarter of it.
//
//   walrus::read_sizer sizer{4096, 256 * 1024};
//   self->configure_read(hdl, caf::io::receive_policy::at_most(sizer.size()));
//   ... on new_data_msg:
//   if (sizer.observe(msg.buf.size()))
//     self->configure_read(hdl, caf::io::receive_policy::at_most(sizer.size()));
#pragma once

#include <cstddef>
#include <cstdint>

namespace walrus {

class read_sizer {
 public:
  // Reads below a quarter of the size this many times in a row shrink it.
  static constexpr uint32_t shrink_after = 16;

  read_sizer(size_t min, size_t max) noexcept : min_(min), max_(max), size_(min) {}

  size_t size() const noexcept { return size_; }

  // Records a read of `bytes`; true when size() changed.
  bool observe(size_t bytes) noexcept {
    if (bytes >= size_ && size_ < max_) {
      size_ = size_ * 2 < max_ ? size_ * 2 : max_;
      small_reads_ = 0;
      return true;
    }
    if (bytes >= size_ / 4 || size_ <= min_) {
      small_reads_ = 0;
      return false;
    }
    if (++small_reads_ < shrink_after) return false;
    small_reads_ = 0;
    size_ = size_ / 2 > min_ ? size_ / 2 : min_;
    return true;
  }

 private:
  size_t min_;
  size_t max_;
  size_t size_;
  uint32_t small_reads_ = 0;
};

}  // namespace walrus
