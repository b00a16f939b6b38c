// The walrus error enum as a CAF error category. `walrus::errc` (base/errc.hpp)
// is the single list of error codes; this header makes it a `caf::error` so it
// crosses actor boundaries (an actor that cannot continue quits with it, a
// request is answered with it) and converts the plain libraries' `status`.
#pragma once

#include <string>

#include "base/status.hpp"
#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/make_message.hpp"

namespace walrus {

// The error category of every walrus error ("walrus").
constexpr caf::atom_value error_category = caf::atom("walrus");

// Found by ADL: `caf::error e = errc::timeout;`, `err == errc::timeout` and
// `return errc::x;` from a `caf::result<T>` handler all work.
inline caf::error make_error(errc code) {
  return caf::error{static_cast<uint8_t>(code), error_category};
}

inline caf::error make_error(errc code, std::string context) {
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(context))};
}

// A failed `status` as a CAF error with its message as context; an ok status
// as the empty error.
caf::error to_error(const status& st);

// The reverse, for code that sits between actors and plain libraries: the
// code of a walrus error and its context text. Errors of other categories
// become errc::component_failed with CAF's rendering as the message.
status to_status(const caf::error& err);

// Renders a walrus error: "walrus::timeout: 1 of 2 replicas reached 42".
std::string render(const caf::error& err);

}  // namespace walrus
