// Buffers for frame bodies that a broker reads in place and hands on
// without copying: a body is read straight into a buffer of its size, the
// batch it holds takes the buffer to the applier as its records' owner, and
// the buffer comes back here once the last holder lets go. In the steady
// state a connection then allocates nothing per frame and never zero-fills
// (std::vector::resize does, but only the part a buffer grows by).
//
// Bound: at most max_kept buffers of at most max_kept_bytes each wait here;
// the others are freed. Threads: take() on the broker's, the return on
// whichever thread drops the last reference.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace walrus {

class frame_buffers : public std::enable_shared_from_this<frame_buffers> {
 public:
  static constexpr size_t max_kept = 32;
  static constexpr size_t max_kept_bytes = size_t{1} << 20;

  // A buffer of exactly `size` bytes, contents unspecified.
  std::vector<char> take(size_t size) {
    std::vector<char> out;
    {
      std::lock_guard<std::mutex> guard{mu_};
      if (!kept_.empty()) {
        out = std::move(kept_.back());
        kept_.pop_back();
      }
    }
    out.resize(size);
    return out;
  }

  // An owner for shared_bytes views of `buffer`'s bytes (which do not move
  // with it); the buffer comes back here with the last reference.
  std::shared_ptr<const void> share(std::vector<char>&& buffer) {
    return std::shared_ptr<std::vector<char>>(new std::vector<char>(std::move(buffer)),
                                              [pool = shared_from_this()](std::vector<char>* held) {
                                                pool->give_back(std::move(*held));
                                                delete held;
                                              });
  }

  void give_back(std::vector<char>&& buffer) {
    if (buffer.capacity() > max_kept_bytes) return;
    std::lock_guard<std::mutex> guard{mu_};
    if (kept_.size() < max_kept) kept_.push_back(std::move(buffer));
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<char>> kept_;  // guarded by mu_
};

}  // namespace walrus
