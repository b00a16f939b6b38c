// The batcher: one per replica session on the primary. It gathers the entry
// blocks its tailer sends into batches and seals a batch at max_batch_bytes,
// at max_batch_entries, when the tailer has nothing more (linger 0) or when
// the linger timer fires; with max_partial_in_flight such early batches
// unacked, what comes next waits for an ack. A transaction is never split, unless it alone
// exceeds max_batch_bytes: then it travels as FIRST/MIDDLE/LAST fragments.
// Each sealed batch is compressed with the session's codec and stamped with
// its sequences, uncompressed size and CRC32C.
//
// The batcher owns the session's flow control: at most window_bytes of
// entries (open, in flight or demanded from the tailer) and window_batches
// sealed batches not yet acknowledged. Acks release the window and become
// demand for the tailer; a nack, or no ack progress for resend_timeout,
// rewinds the tailer to what the replica expects next.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "codec/codec.hpp"
#include "messages/interfaces.hpp"

namespace walrus {

struct batcher_config {
  std::string replica_id;
  codec::codec_config codec;
  size_t max_batch_bytes = 256 * 1024;
  size_t max_batch_entries = 16384;
  caf::timespan linger{0};
  size_t window_bytes = 8 * 1024 * 1024;
  size_t window_batches = 64;
  // Batches sealed before they were full (the tailer ran dry) that may be
  // unacked at once; later entries wait for an ack. 0: no limit.
  size_t max_partial_in_flight = 2;
  caf::timespan resend_timeout = std::chrono::seconds(2);
  // The first sequence of the session; the batcher resumes from the
  // replica's last known position when the primary knows a later one.
  uint64_t start_sequence = 1;
};

// `primary` gets every ack (for the ack tracker) and tells the resume point.
batcher_actor spawn_batcher(caf::actor_system& sys, batcher_config cfg, tailer_actor tailer,
                            batch_sink_actor sink, primary_actor primary);

}  // namespace walrus
