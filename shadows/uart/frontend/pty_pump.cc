#include "shadows/uart/frontend/pty_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace umbra::shadows::uart {
namespace {

constexpr int kPollMs = 100;

// Waits until `fd` is ready for `events`, or the poll period passes.
bool Ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, kPollMs) > 0 && (p.revents & events);
}

}  // namespace

Result<std::unique_ptr<PtyPump>> PtyPump::Create(PtyPumpOptions options, WriteFn write, ReadFn read) {
  if (options.link.empty()) return Fail(Errc::kInvalidArgument, "the pty has no link path");
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
  if (!master) return FailErrno("posix_openpt");
  if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) return FailErrno("unlockpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return FailErrno("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return FailErrno(std::string("opening ") + name);
  termios t{};
  if (::tcgetattr(slave.get(), &t) != 0) return FailErrno("tcgetattr");
  ::cfmakeraw(&t);
  if (::tcsetattr(slave.get(), TCSANOW, &t) != 0) return FailErrno("tcsetattr");
  ::unlink(options.link.c_str());
  if (::symlink(name, options.link.c_str()) != 0) return FailErrno("linking " + options.link);
  std::unique_ptr<PtyPump> pump(
      new PtyPump(std::move(options), std::move(master), std::move(slave), name, std::move(write), std::move(read)));
  pump->in_ = std::thread([p = pump.get()] { p->IntoStream(); });
  pump->out_ = std::thread([p = pump.get()] { p->OutOfStream(); });
  return pump;
}

PtyPump::~PtyPump() {
  stop_ = true;
  if (in_.joinable()) in_.join();
  if (out_.joinable()) out_.join();
  ::unlink(options_.link.c_str());
}

void PtyPump::IntoStream() {
  std::byte buf[4096];
  while (!stop_) {
    if (!Ready(master_.get(), POLLIN)) continue;
    const ssize_t n = ::read(master_.get(), buf, sizeof buf);
    if (n <= 0) continue;  // EAGAIN, or EIO while no program holds the pty
    std::span<const std::byte> rest(buf, static_cast<size_t>(n));
    while (!rest.empty() && !stop_) {
      auto taken = write_(rest);
      if (taken) rest = rest.subspan(std::min(*taken, rest.size()));
    }
  }
}

void PtyPump::OutOfStream() {
  std::byte buf[4096];
  while (!stop_) {
    auto got = read_(buf);
    if (!got || *got == 0) continue;
    std::span<const std::byte> rest(buf, std::min(*got, sizeof buf));
    while (!rest.empty() && !stop_) {
      if (!Ready(master_.get(), POLLOUT)) continue;
      const ssize_t n = ::write(master_.get(), rest.data(), rest.size());
      if (n > 0) rest = rest.subspan(static_cast<size_t>(n));
    }
  }
}

}  // namespace umbra::shadows::uart
