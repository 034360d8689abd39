#include "base/result.h"

#include <cerrno>
#include <cstring>

namespace umbra {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument: return "invalid-argument";
    case Errc::kParse: return "parse";
    case Errc::kNotFound: return "not-found";
    case Errc::kAlreadyExists: return "already-exists";
    case Errc::kNoDevice: return "no-device";
    case Errc::kBusy: return "busy";
    case Errc::kTimeout: return "timeout";
    case Errc::kInterrupted: return "interrupted";
    case Errc::kProtocol: return "protocol";
    case Errc::kDeviceFailed: return "device-failed";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kIo: return "io";
    case Errc::kInternal: return "internal";
  }
  return "unknown";
}

std::string Error::ToString() const { return std::string(ErrcName(code)) + ": " + message; }

std::unexpected<Error> FailErrno(std::string_view what) { return FailErrno(what, errno); }

std::unexpected<Error> FailErrno(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Fail(Errc::kIo, std::move(msg));
}

}  // namespace umbra
