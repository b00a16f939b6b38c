#include "messages/error.hpp"

#include "caf/deep_to_string.hpp"
#include "caf/message.hpp"

namespace walrus {
namespace {

std::string context_text(const caf::message& ctx) {
  if (ctx.empty()) return {};
  if (ctx.match_elements<std::string>()) return ctx.get_as<std::string>(0);
  return caf::deep_to_string(ctx);
}

}  // namespace

caf::error to_error(const status& st) {
  if (st.ok()) return caf::error{};
  return make_error(st.code(), st.message());
}

status to_status(const caf::error& err) {
  if (!err) return status{};
  if (err.category() == error_category) {
    auto code = static_cast<errc>(err.code());
    if (code == errc::none) return status{};
    return status{code, context_text(err.context())};
  }
  return status{errc::component_failed, caf::to_string(err)};
}

std::string render(const caf::error& err) {
  if (!err) return "none";
  if (err.category() != error_category) return caf::to_string(err);
  std::string out = "walrus::";
  out += to_string(static_cast<errc>(err.code()));
  auto ctx = context_text(err.context());
  if (!ctx.empty()) {
    out += ": ";
    out += ctx;
  }
  return out;
}

}  // namespace walrus
