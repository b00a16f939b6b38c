// shared_bytes: a view of bytes that keeps the buffer holding them alive.
//
// The replication path hands the same bytes from the WAL's tail cache to the
// batcher, the transport and (in process) the applier without copying them:
// each holder keeps a reference to the buffer, and the buffer goes away with
// the last one. The bytes never change while any view of them exists; who
// fills a buffer does so before handing out the first view.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace walrus {

struct shared_bytes {
  std::shared_ptr<const void> owner;  // keeps `bytes` valid; null for an empty view
  std::string_view bytes;

  // A view of all of `data`, which it takes over.
  static shared_bytes adopt(std::string data) {
    auto held = std::make_shared<const std::string>(std::move(data));
    std::string_view view{*held};
    return shared_bytes{std::move(held), view};
  }

  // The part [offset, offset + count) of this view, sharing its owner.
  shared_bytes slice(size_t offset, size_t count) const {
    return shared_bytes{owner, bytes.substr(offset, count)};
  }

  size_t size() const noexcept { return bytes.size(); }
  bool empty() const noexcept { return bytes.empty(); }
};

}  // namespace walrus
