#define CAF_SUITE kv_ops
#include "caf/test/unit_test.hpp"

#include <string>

#include "apps/kv/ops.hpp"
#include "kv.pb.h"

using namespace walrus;
using namespace walrus::kv;
using namespace std::string_literals;

CAF_TEST(hand encoded ops are the bytes protoc generates) {
  walrus::kv::Op set_op;
  set_op.mutable_set()->set_key("user:1");
  set_op.mutable_set()->set_value("v\0x"s);
  set_op.mutable_set()->set_expire_at_ms(1'700'000'123'456);
  std::string mine;
  encode_set(mine, "user:1", "v\0x"s, 1'700'000'123'456);
  CAF_CHECK_EQUAL(mine, set_op.SerializeAsString());

  walrus::kv::Op plain;  // proto3 omits empty and zero fields
  plain.mutable_set()->set_key("k");
  mine.clear();
  encode_set(mine, "k", "", 0);
  CAF_CHECK_EQUAL(mine, plain.SerializeAsString());

  walrus::kv::Op del_op;
  del_op.mutable_del()->set_key(std::string(300, 'k'));  // a two-byte length
  mine.clear();
  encode_del(mine, std::string(300, 'k'));
  CAF_CHECK_EQUAL(mine, del_op.SerializeAsString());

  walrus::kv::Op flush_op;
  flush_op.mutable_flush_all();
  mine.clear();
  encode_flush_all(mine);
  CAF_CHECK_EQUAL(mine, flush_op.SerializeAsString());
}

CAF_TEST(protoc encoded ops decode to the same op) {
  walrus::kv::Op set_op;
  set_op.mutable_set()->set_key("k");
  set_op.mutable_set()->set_value(std::string(200, 'v'));
  set_op.mutable_set()->set_expire_at_ms(42);
  auto bytes = set_op.SerializeAsString();
  op decoded;
  CAF_REQUIRE(decode_op(bytes, decoded).ok());
  CAF_CHECK(decoded.kind == op_kind::set);
  CAF_CHECK_EQUAL(decoded.key, "k");
  CAF_CHECK_EQUAL(decoded.value, std::string(200, 'v'));
  CAF_CHECK_EQUAL(decoded.expire_at_ms, 42);

  walrus::kv::Op parsed;
  std::string mine;
  encode_set(mine, "key", "value", 7);
  CAF_REQUIRE(parsed.ParseFromString(mine));
  CAF_CHECK_EQUAL(parsed.set().key(), "key");
  CAF_CHECK_EQUAL(parsed.set().value(), "value");
  CAF_CHECK_EQUAL(parsed.set().expire_at_ms(), 7u);
}

CAF_TEST(unknown fields are skipped and an unknown op kind is refused) {
  // Set{key="k", field 9 = varint 5, field 10 = bytes "zz"} inside Op field 1,
  // then an unknown Op field 7.
  std::string body = "\x0a\x01k\x48\x05\x52\x02zz"s;
  std::string payload = "\x0a"s + static_cast<char>(body.size()) + body + "\x38\x01"s;
  op decoded;
  CAF_REQUIRE(decode_op(payload, decoded).ok());
  CAF_CHECK(decoded.kind == op_kind::set);
  CAF_CHECK_EQUAL(decoded.key, "k");
  auto unknown = decode_op("\x22\x00"s, decoded);  // Op field 4: a newer kind
  CAF_CHECK(unknown.code() == errc::unknown_frame);
  auto empty = decode_op("", decoded);
  CAF_CHECK(empty.code() == errc::unknown_frame);
}

CAF_TEST(every truncation and byte flip of an op is an error or a valid op never a crash) {
  std::string whole;
  encode_set(whole, "some-key", std::string(150, 'x'), 123456789);
  op decoded;
  for (size_t n = 0; n < whole.size(); ++n)
    CAF_CHECK(!decode_op(std::string_view{whole}.substr(0, n), decoded).ok());
  for (size_t i = 0; i < whole.size(); ++i) {
    auto damaged = whole;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x80);
    if (decode_op(damaged, decoded).ok()) {
      // Then the views must lie inside the payload.
      CAF_CHECK(decoded.key.data() >= damaged.data());
      CAF_CHECK(decoded.value.data() + decoded.value.size() <= damaged.data() + damaged.size());
    }
  }
  auto wrong_type = decode_op("\x08\x01"s, decoded);  // Op field 1 as a varint
  CAF_CHECK(wrong_type.code() == errc::malformed_frame);
}

CAF_TEST(a batch holds one transaction of entries back to back) {
  op_batch batch;
  batch.add_set("a", "1", 0);
  batch.add_del("b");
  batch.add_flush_all();
  CAF_REQUIRE_EQUAL(batch.size(), 3u);
  transaction tx;
  batch.to_transaction(10, tx);
  CAF_CHECK_EQUAL(tx.first_sequence, 10u);
  CAF_CHECK_EQUAL(tx.last_sequence(), 12u);
  op decoded;
  CAF_REQUIRE(decode_op(tx.entries[1], decoded).ok());
  CAF_CHECK(decoded.kind == op_kind::del);
  CAF_CHECK_EQUAL(decoded.key, "b");
  CAF_CHECK(batch.entries() == tx.entries);
  batch.clear();
  CAF_CHECK(batch.empty());
  CAF_CHECK_EQUAL(batch.bytes(), 0u);
}
