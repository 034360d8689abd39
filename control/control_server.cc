#include "control/control_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/clock.h"

namespace umbra::control {
namespace {

struct Connection {
  UniqueFd fd;
  std::string in;  // bytes received, not yet a whole line
};

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Fail(Errc::kInvalidArgument, "socket path too long (" + std::to_string(path.size()) + " bytes, at most " +
                                            std::to_string(sizeof addr.sun_path - 1) + "): choose a shorter --run-dir");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Result<UniqueFd> Connect(const std::string& path) {
  const sockaddr_un addr = UMBRA_TRY(Address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return Fail(Errc::kNotFound, "no machine listens on " + path);
    }
    return FailErrno("connecting to " + path);
  }
  return fd;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Same uid as the server, or root.
bool PeerAllowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == ::geteuid() || cred.uid == 0;
}

// Reads what is there and answers every whole line. False: close it.
bool Serve(Connection& c, const ControlServer::Handler& handler, const std::string& too_long) {
  char buf[4096];
  const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  c.in.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = c.in.find('\n')) != std::string::npos) {
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (!WriteAll(c.fd.get(), handler(line) + "\n")) return false;
  }
  if (c.in.size() > kMaxLine) {
    (void)WriteAll(c.fd.get(), too_long + "\n");
    return false;
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Create(std::string socket_path, Handler handler,
                                                             std::string too_long_reply) {
  const sockaddr_un addr = UMBRA_TRY(Address(socket_path));
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Fail(Errc::kAlreadyExists, socket_path + " exists and is not a socket");
    if (Connect(socket_path)) return Fail(Errc::kAlreadyExists, "a machine already listens on " + socket_path);
    ::unlink(socket_path.c_str());  // stale: its machine is gone
  }
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener) return FailErrno("socket");
  // Made 0600 from birth: the umask covers the window before chmod.
  const mode_t old_mask = ::umask(077);
  const int bound = ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (bound != 0) return FailErrno("binding " + socket_path);
  if (::chmod(socket_path.c_str(), 0600) != 0 || ::listen(listener.get(), 16) != 0) {
    ::unlink(socket_path.c_str());
    return FailErrno("listening on " + socket_path);
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return FailErrno("eventfd");
  std::unique_ptr<ControlServer> server(new ControlServer(std::move(socket_path), std::move(listener), std::move(wake),
                                                          std::move(handler), std::move(too_long_reply)));
  server->thread_ = std::thread([s = server.get()] { s->ThreadMain(); });
  return server;
}

ControlServer::~ControlServer() {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

void ControlServer::ThreadMain() {
  constexpr size_t kMaxConnections = 32;
  std::vector<Connection> conns;
  for (;;) {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const auto& c : conns) fds.push_back({c.fd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    for (size_t i = conns.size(); i-- > 0;) {
      if (fds[i + 2].revents && !Serve(conns[i], handler_, too_long_)) conns.erase(conns.begin() + i);
    }
    if (fds[1].revents & POLLIN) {
      UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (fd && PeerAllowed(fd.get()) && conns.size() < kMaxConnections) conns.push_back({std::move(fd), {}});
    }
  }
}

bool Answers(const std::string& socket_path) { return Connect(socket_path).has_value(); }

Result<std::string> CallControl(const std::string& socket_path, std::string_view line, int64_t timeout_ns) {
  UniqueFd fd = UMBRA_TRY(Connect(socket_path));
  if (!WriteAll(fd.get(), std::string(line) + "\n")) return FailErrno("sending to " + socket_path);
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  std::string in;
  for (;;) {
    if (const size_t nl = in.find('\n'); nl != std::string::npos) return in.substr(0, nl);
    const int64_t left_ms = (deadline - MonotonicNanos()) / 1'000'000;
    if (left_ms <= 0) return Fail(Errc::kTimeout, "the machine did not answer in time");
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left_ms)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(Errc::kIo, "the machine closed the connection without answering");
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > 16 * kMaxLine) return Fail(Errc::kProtocol, "the machine's reply is too long");
  }
}

}  // namespace umbra::control
