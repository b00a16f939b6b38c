#include "actors/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cassert>
#include <limits>

namespace walrus::auth {

namespace {

// OpenSSL's reason for the most recent failure on this thread, or a fallback.
std::string openssl_reason() {
  auto code = ERR_get_error();
  if (code == 0) return "no OpenSSL error queued";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

std::string concat(std::initializer_list<std::string_view> parts) {
  size_t total = 0;
  for (auto part : parts) total += part.size();
  std::string out;
  out.reserve(total);
  for (auto part : parts) out.append(part);
  return out;
}

}  // namespace

result<std::string> make_nonce() {
  std::string nonce(nonce_bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size())) !=
      1)
    return status{errc::io_error, "RAND_bytes could not produce a " + std::to_string(nonce_bytes) +
                                      "-byte nonce: " + openssl_reason()};
  return nonce;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  if (key.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return {};
  // HMAC() reads a null key as "no key" and fails on some OpenSSL 3 releases:
  // pass a valid pointer for the empty key, which HMAC defines as all zeros.
  static const unsigned char empty = 0;
  const void* key_data = key.empty() ? &empty : static_cast<const void*>(key.data());
  const auto* data =
      message.empty() ? &empty : reinterpret_cast<const unsigned char*>(message.data());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_bytes = 0;
  if (HMAC(EVP_sha256(), key_data, static_cast<int>(key.size()), data, message.size(), digest,
           &digest_bytes) == nullptr) {
    ERR_clear_error();
    return {};
  }
  assert(digest_bytes == proof_bytes);
  return std::string(reinterpret_cast<const char*>(digest), digest_bytes);
}

std::string replica_proof(std::string_view secret, std::string_view server_nonce,
                          std::string_view client_nonce, std::string_view replica_id) {
  return hmac_sha256(secret, concat({replica_proof_label, server_nonce, client_nonce, replica_id}));
}

std::string primary_proof(std::string_view secret, std::string_view client_nonce,
                          std::string_view server_nonce) {
  return hmac_sha256(secret, concat({primary_proof_label, client_nonce, server_nonce}));
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;  // proof lengths are public
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool proof_matches(std::string_view expected, std::string_view received) noexcept {
  return expected.size() == proof_bytes && constant_time_equal(expected, received);
}

}  // namespace walrus::auth
