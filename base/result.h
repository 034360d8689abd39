// Result<T>: how Umbra returns expected failures.
//
// Expected failures (a driver that died, a file that does not parse, a device
// that is gone) are values, not exceptions: functions return Result<T>, a
// std::expected<T, Error>, and callers propagate with UMBRA_TRY. Bugs are
// assertions. Exceptions stay out of the runtime and the data path.
//
//   Result<int> ParsePort(std::string_view s);
//   Result<void> Open(std::string_view spec) {
//     int port = UMBRA_TRY(ParsePort(spec));
//     ...
//     return {};
//   }
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace umbra {

// The domains of failure a caller can act on. Messages carry the detail.
enum class Errc {
  kInvalidArgument = 1,  // the caller passed something malformed (0 means success on the wire)
  kParse,                // a file or spec does not parse
  kNotFound,             // a named object or file does not exist
  kAlreadyExists,        // a name is taken
  kNoDevice,             // the device was removed; its handles are dead
  kBusy,                 // the object is in use (bound, work in flight)
  kTimeout,              // a deadline passed
  kInterrupted,          // the driver died while the request was in flight
  kProtocol,             // the driver broke the protocol
  kDeviceFailed,         // the device was given up on (restart budget spent)
  kUnavailable,          // temporarily cannot serve (recovering, queue full)
  kIo,                   // a system call failed
  kInternal,             // a bug in Umbra
};

const char* ErrcName(Errc code);

struct Error {
  Errc code;
  std::string message;

  // "no-device: disk0 was removed"
  std::string ToString() const;
};

template <class T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// A failed system call: "<what>: <strerror(errno)>".
std::unexpected<Error> FailErrno(std::string_view what);
std::unexpected<Error> FailErrno(std::string_view what, int err);

namespace detail {
template <class T>
T Unwrap(std::expected<T, Error>&& r) {
  return std::move(*r);
}
inline void Unwrap(std::expected<void, Error>&&) {}
}  // namespace detail

}  // namespace umbra

// Evaluates `expr` (a Result); on failure returns its error from the enclosing
// function, otherwise yields the value. Uses a GNU statement expression.
#define UMBRA_TRY(expr)                                                                                               \
  ({                                                                                                                  \
    auto umbra_try_result_ = (expr);                                                                                  \
    if (!umbra_try_result_.has_value()) return std::unexpected<::umbra::Error>(std::move(umbra_try_result_).error()); \
    ::umbra::detail::Unwrap(std::move(umbra_try_result_));                                                            \
  })
