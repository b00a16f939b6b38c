// Allocator settings for processes that stream walrus batches.
//
// A batch buffer (256 KiB by default) is allocated by one actor and freed by
// another, thousands of times per second. With glibc's defaults such buffers
// are either mmap()ed or returned to the kernel when freed, so every batch
// starts by page-faulting fresh memory: a sixth of the CPU of a 16 KiB-entry
// stream (docs/benchmarks.md). tune_allocator() keeps them in the heap.
// Hosts call it once at start, before spawning threads; walrus-kv and
// walrus-bench do.
#pragma once

namespace walrus {

// Serves blocks below 4 MiB from the heap and keeps up to 32 MiB of freed
// memory per arena instead of returning it at once. A no-op without glibc.
void tune_allocator() noexcept;

}  // namespace walrus
