// Result types for the plain libraries (wal/, codec/): a `status` is an error
// code plus a precise message (file, offset, sequence, expected vs found);
// `result<T>` is a value or a non-ok status. Both are [[nodiscard]] so an
// ignored error does not compile quietly. No exceptions cross module edges.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "base/errc.hpp"

namespace walrus {

class [[nodiscard]] status {
 public:
  status() = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {
    assert(code != errc::none);
  }

  bool ok() const noexcept { return code_ == errc::none; }
  explicit operator bool() const noexcept { return ok(); }
  errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "corruption: segment 00000000000000000001.wal offset 4096: crc mismatch"
  std::string to_string() const;

 private:
  errc code_ = errc::none;
  std::string message_;
};

inline status ok_status() {
  return status{};
}

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : value_(std::move(value)) {}
  result(status error) : value_(std::move(error)) { assert(!std::get<status>(value_).ok()); }

  bool ok() const noexcept { return value_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(value_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(value_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(value_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const status& error() const& {
    assert(!ok());
    return std::get<1>(value_);
  }
  status error() && {
    assert(!ok());
    return std::get<1>(std::move(value_));
  }

 private:
  std::variant<T, status> value_;
};

}  // namespace walrus
