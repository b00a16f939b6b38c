// Socket options of the replication connections (both brokers), and the
// socket behind a connection handle (also the RESP broker's direct writes).
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>

#include "caf/io/abstract_broker.hpp"
#include "caf/io/connection_handle.hpp"
#include "caf/io/network/default_multiplexer.hpp"
#include "caf/io/network/native_socket.hpp"

namespace walrus {

// What one read of a replication connection takes at most (a read_sizer
// moves between the two): acks and heartbeats are a few bytes, a stream of
// batches fills 256 KiB reads.
constexpr size_t min_read_bytes = 4 * 1024;
constexpr size_t max_read_bytes = 256 * 1024;

// The socket descriptor behind `hdl`, or -1: only the default
// multiplexer's handles are descriptors (CAF's test multiplexer, in the
// io_dsl tests, has no sockets at all).
inline int socket_of(caf::io::abstract_broker* self, caf::io::connection_handle hdl) {
  if (dynamic_cast<caf::io::network::default_multiplexer*>(&self->backend()) == nullptr) return -1;
  return static_cast<int>(hdl.id());
}

// Frames leave at once. With Nagle's algorithm an Ack, or the last partial
// segment of a Batch, waits for the peer's delayed ACK (up to 40 ms on
// Linux), which caps a connection at about one window per 40 ms.
inline void send_without_delay(caf::io::abstract_broker* self, caf::io::connection_handle hdl) {
  if (auto fd = socket_of(self, hdl); fd >= 0)
    (void)caf::io::network::tcp_nodelay(static_cast<caf::io::network::native_socket>(fd), true);
}

// How long ago the kernel last received data on `hdl` (TCP_INFO), or
// nothing without a socket. A broker that reads whole frames at once
// (receive_policy::exactly) hears of a frame only when all of it is in;
// this tells it whether bytes are still arriving meanwhile.
inline std::optional<std::chrono::milliseconds> since_data_received(
    caf::io::abstract_broker* self, caf::io::connection_handle hdl) {
  auto fd = socket_of(self, hdl);
  if (fd < 0) return std::nullopt;
  tcp_info info{};
  socklen_t size = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) return std::nullopt;
  return std::chrono::milliseconds(info.tcpi_last_data_recv);
}

}  // namespace walrus
