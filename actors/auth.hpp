// Shared-secret authentication of the replication handshake
// (docs/protocol.md §3). Both sides prove knowledge of the secret with an
// HMAC-SHA256 over fresh nonces from both ends, so neither the secret nor a
// reusable proof ever travels: a proof recorded on one connection is useless
// on the next, whose server nonce differs.
//
//   replica proof = HMAC-SHA256(secret, "walrus-auth-v1/replica" | server_nonce
//                                       | client_nonce | replica_id)
//   primary proof = HMAC-SHA256(secret, "walrus-auth-v1/primary" | client_nonce
//                                       | server_nonce)
//
// `|` is plain byte concatenation; the nonces have a fixed size (nonce_bytes),
// which keeps the concatenation unambiguous. Plain functions over OpenSSL's
// libcrypto: no CAF, no protobuf.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace walrus::auth {

// The size of every nonce and of every proof (SHA-256 output).
constexpr size_t nonce_bytes = 16;
constexpr size_t proof_bytes = 32;

// Domain separation of the two proofs: one can never stand in for the other.
constexpr std::string_view replica_proof_label = "walrus-auth-v1/replica";
constexpr std::string_view primary_proof_label = "walrus-auth-v1/primary";

// nonce_bytes bytes from the OpenSSL CSPRNG (RAND_bytes). A failing RNG is
// errc::io_error naming OpenSSL's reason; never a predictable nonce.
[[nodiscard]] result<std::string> make_nonce();

// HMAC-SHA256(key, message): proof_bytes raw bytes. Returns an empty string
// only if libcrypto itself fails (out of memory, a key above 2 GiB); an empty
// string never verifies (see proof_matches).
std::string hmac_sha256(std::string_view key, std::string_view message);

// The proofs of docs/protocol.md §3.
std::string replica_proof(std::string_view secret, std::string_view server_nonce,
                          std::string_view client_nonce, std::string_view replica_id);
std::string primary_proof(std::string_view secret, std::string_view client_nonce,
                          std::string_view server_nonce);

// Compares in time that depends only on the lengths (CRYPTO_memcmp): a
// timing probe learns nothing about how many leading bytes of a proof match.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// True when `received` is a well-formed proof equal to `expected`. An empty
// or short `expected` (libcrypto failed) never matches, not even itself.
bool proof_matches(std::string_view expected, std::string_view received) noexcept;

}  // namespace walrus::auth
