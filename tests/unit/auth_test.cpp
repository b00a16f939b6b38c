#define CAF_SUITE auth
#include "caf/test/unit_test.hpp"

#include <set>
#include <string>

#include "actors/auth.hpp"

using namespace walrus;
using namespace walrus::auth;

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    out += digits[byte >> 4];
    out += digits[byte & 0xF];
  }
  return out;
}

std::string repeated(char byte, size_t count) {
  return std::string(count, byte);
}

const std::string secret = "correct horse battery staple";
const std::string server_nonce = "0123456789abcdef";
const std::string client_nonce = "fedcba9876543210";

}  // namespace

CAF_TEST(hmac sha256 matches the RFC 4231 test vectors) {
  // Case 1: a 20-byte key.
  CAF_CHECK_EQUAL(hex(hmac_sha256(repeated('\x0b', 20), "Hi There")),
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Case 2: a key shorter than the output.
  CAF_CHECK_EQUAL(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Case 3: 50 bytes of 0xdd.
  CAF_CHECK_EQUAL(hex(hmac_sha256(repeated('\xaa', 20), repeated('\xdd', 50))),
                  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  // Case 4: key 0x01..0x19.
  std::string key4;
  for (int i = 1; i <= 25; ++i) key4.push_back(static_cast<char>(i));
  CAF_CHECK_EQUAL(hex(hmac_sha256(key4, repeated('\xcd', 50))),
                  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  // Case 6: a key larger than the block size is hashed first.
  CAF_CHECK_EQUAL(hex(hmac_sha256(repeated('\xaa', 131),
                                  "Test Using Larger Than Block-Size Key - Hash Key First")),
                  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Case 7: key and data both larger than the block size.
  CAF_CHECK_EQUAL(hex(hmac_sha256(repeated('\xaa', 131),
                                  "This is a test using a larger than block-size key and a larger "
                                  "than block-size data. The key needs to be hashed before being "
                                  "used by the HMAC algorithm.")),
                  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

CAF_TEST(hmac sha256 accepts an empty key and an empty message) {
  CAF_CHECK_EQUAL(hex(hmac_sha256("", "")),
                  "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

CAF_TEST(nonces are 16 random bytes and differ) {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    auto nonce = make_nonce();
    CAF_REQUIRE(nonce.ok());
    CAF_CHECK_EQUAL(nonce->size(), nonce_bytes);
    seen.insert(*nonce);
  }
  CAF_CHECK_EQUAL(seen.size(), 64u);
}

CAF_TEST(the replica proof is the hmac of label and inputs in protocol order) {
  auto proof = replica_proof(secret, server_nonce, client_nonce, "replica-1");
  CAF_CHECK_EQUAL(proof.size(), proof_bytes);
  CAF_CHECK_EQUAL(proof, hmac_sha256(secret, "walrus-auth-v1/replica" + server_nonce +
                                                 client_nonce + "replica-1"));
  CAF_CHECK_EQUAL(primary_proof(secret, client_nonce, server_nonce),
                  hmac_sha256(secret, "walrus-auth-v1/primary" + client_nonce + server_nonce));
}

CAF_TEST(replica proofs differ when any input differs) {
  auto base = replica_proof(secret, server_nonce, client_nonce, "replica-1");
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret + "x", server_nonce, client_nonce, "replica-1"));
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, "1123456789abcdef", client_nonce, "replica-1"));
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, server_nonce, "eedcba9876543210", "replica-1"));
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, server_nonce, client_nonce, "replica-2"));
  // The nonces are not interchangeable.
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, client_nonce, server_nonce, "replica-1"));
}

CAF_TEST(primary proofs differ when any input differs and never equal a replica proof) {
  auto base = primary_proof(secret, client_nonce, server_nonce);
  CAF_CHECK_EQUAL(base.size(), proof_bytes);
  CAF_CHECK_NOT_EQUAL(base, primary_proof(secret + "x", client_nonce, server_nonce));
  CAF_CHECK_NOT_EQUAL(base, primary_proof(secret, "eedcba9876543210", server_nonce));
  CAF_CHECK_NOT_EQUAL(base, primary_proof(secret, client_nonce, "1123456789abcdef"));
  CAF_CHECK_NOT_EQUAL(base, primary_proof(secret, server_nonce, client_nonce));
  // Domain separation: a replica's proof (even with an empty id) cannot be
  // replayed as the primary's, whatever the nonce order.
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, client_nonce, server_nonce, ""));
  CAF_CHECK_NOT_EQUAL(base, replica_proof(secret, server_nonce, client_nonce, ""));
}

CAF_TEST(constant time comparison compares whole strings) {
  CAF_CHECK(constant_time_equal("", ""));
  CAF_CHECK(constant_time_equal("abc", "abc"));
  CAF_CHECK(!constant_time_equal("abc", "abd"));
  CAF_CHECK(!constant_time_equal("abc", "ab"));
  CAF_CHECK(!constant_time_equal("", "a"));
  std::string a(32, '\x01');
  std::string b = a;
  b[31] = '\x02';
  CAF_CHECK(!constant_time_equal(a, b));
}

CAF_TEST(a proof matches only a full - length equal proof) {
  auto proof = replica_proof(secret, server_nonce, client_nonce, "replica-1");
  CAF_CHECK(proof_matches(proof, proof));
  CAF_CHECK(!proof_matches(proof, ""));
  CAF_CHECK(!proof_matches(proof, proof.substr(0, 16)));
  auto flipped = proof;
  flipped[0] = static_cast<char>(flipped[0] ^ 1);
  CAF_CHECK(!proof_matches(proof, flipped));
  // A failed HMAC (empty) never verifies, not even against itself.
  CAF_CHECK(!proof_matches("", ""));
}
