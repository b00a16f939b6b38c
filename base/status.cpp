#include "base/status.hpp"

namespace walrus {

const char* to_string(errc code) noexcept {
  switch (code) {
    case errc::none: return "none";
    case errc::io_error: return "io_error";
    case errc::disk_full: return "disk_full";
    case errc::corruption: return "corruption";
    case errc::not_retained: return "not_retained";
    case errc::invalid_argument: return "invalid_argument";
    case errc::closed: return "closed";
    case errc::malformed_frame: return "malformed_frame";
    case errc::frame_too_large: return "frame_too_large";
    case errc::unknown_frame: return "unknown_frame";
    case errc::checksum_mismatch: return "checksum_mismatch";
    case errc::decompression_failed: return "decompression_failed";
    case errc::size_limit_exceeded: return "size_limit_exceeded";
    case errc::unsupported_codec: return "unsupported_codec";
    case errc::version_mismatch: return "version_mismatch";
    case errc::cluster_mismatch: return "cluster_mismatch";
    case errc::auth_failed: return "auth_failed";
    case errc::protocol_violation: return "protocol_violation";
    case errc::sequence_gap: return "sequence_gap";
    case errc::replica_lost: return "replica_lost";
    case errc::peer_timeout: return "peer_timeout";
    case errc::timeout: return "timeout";
    case errc::restart_intensity_exceeded: return "restart_intensity_exceeded";
    case errc::invalid_transition: return "invalid_transition";
    case errc::stopped: return "stopped";
    case errc::component_failed: return "component_failed";
  }
  return "unknown_error";
}

std::string status::to_string() const {
  if (ok()) return "ok";
  std::string out = walrus::to_string(code_);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace walrus
