// What a replica's host supplies: the state that replicated transactions are
// applied to. The applier calls it from one actor at a time, in sequence
// order, with whole transactions only; a host that also reads the state from
// other threads (a server answering GETs) synchronises inside.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace walrus {

struct transaction {
  uint64_t first_sequence = 0;
  std::vector<std::string_view> entries;  // valid during apply() only

  uint64_t last_sequence() const { return first_sequence + entries.size() - 1; }
};

class state_machine {
 public:
  virtual ~state_machine() = default;

  // Applies one whole transaction; first_sequence is applied_sequence() + 1.
  // An error stops the applier (it quits with the error).
  [[nodiscard]] virtual status apply(const transaction& tx) = 0;

  // The last sequence whose effects the state holds; 0 when empty.
  virtual uint64_t applied_sequence() const = 0;

  // A hint: `entry` is applied soon (the applier passes the entry a few
  // ahead of the one it applies), so a state that can start loading what
  // the entry touches (a hash table slot) may do so. Must not change the
  // state. Default: nothing.
  virtual void prefetch(std::string_view entry) const noexcept { (void)entry; }
};

}  // namespace walrus
