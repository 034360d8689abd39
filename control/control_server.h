// ControlServer: a Unix stream socket that answers one line with one line.
//
// `umbra run` listens on <run dir>/control.sock (mode 0600). Each connection
// sends requests, one per line ('\n'-terminated, at most kMaxLine bytes), and
// gets one reply line per request, in order, from `handler`. A line that is
// too long gets the reply from `too_long` and the connection is closed (the
// rest of that line cannot be told from the next request). Only peers of the
// same uid (or root) are served; others are closed at once.
//
//   auto server = UMBRA_TRY(ControlServer::Create(dir.socket_path(),
//       [&](std::string_view line) { return control.Handle(line); }, too_long));
//   ...
//   server.reset();  // stops accepting, closes every connection, joins
//
// Thread safety: one thread of its own serves every connection (requests are
// rare and short); `handler` runs on it, one request at a time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::control {

inline constexpr size_t kMaxLine = 64 * 1024;

class ControlServer {
 public:
  using Handler = std::function<std::string(std::string_view line)>;

  // Binds `socket_path` (a stale socket file is replaced; one a live server
  // answers on is kAlreadyExists), makes it 0600, starts the thread.
  static Result<std::unique_ptr<ControlServer>> Create(std::string socket_path, Handler handler,
                                                       std::string too_long_reply);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  ControlServer(std::string path, UniqueFd listener, UniqueFd wake, Handler handler, std::string too_long)
      : path_(std::move(path)), listener_(std::move(listener)), wake_(std::move(wake)), handler_(std::move(handler)),
        too_long_(std::move(too_long)) {}
  void ThreadMain();

  const std::string path_;
  UniqueFd listener_;
  UniqueFd wake_;  // an eventfd: written by the destructor to stop the thread
  Handler handler_;
  const std::string too_long_;
  std::thread thread_;
};

// Whether a server answers on `socket_path` (a stale socket file does not).
bool Answers(const std::string& socket_path);

// Connects to the socket at `socket_path`, sends `line` (a '\n' is added)
// and returns the reply line without its '\n'. kNotFound when nothing
// listens there; kTimeout after `timeout_ns`.
Result<std::string> CallControl(const std::string& socket_path, std::string_view line, int64_t timeout_ns);

}  // namespace umbra::control
