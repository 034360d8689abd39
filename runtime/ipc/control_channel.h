// ControlChannel: one end of a SOCK_SEQPACKET socketpair carrying one protobuf
// message per datagram, with file descriptors passed as SCM_RIGHTS.
//
// Datagrams are bounded by kMaxMessageBytes; a larger, truncated or unparsable
// datagram, or one carrying more descriptors than allowed, is a protocol
// violation reported as Errc::kProtocol (received descriptors are closed).
// End of file (the peer died or closed) is Errc::kNoDevice.
//
//   auto [host, driver] = UMBRA_TRY(ControlChannel::CreatePair());
//   UMBRA_TRY(host.Send(msg, {region_fd}));
//   Received r = UMBRA_TRY(driver.Receive(msg, Blocking::kWait));
//
// Thread safety: one sender and one receiver thread at a time; the object is
// not shared otherwise. No Asio here: the host watches fd() with its own loop.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace google::protobuf {
class MessageLite;
}

namespace umbra::ipc {

inline constexpr size_t kMaxMessageBytes = 64 * 1024;
inline constexpr size_t kMaxFdsPerMessage = 8;

enum class Blocking { kWait, kDontWait };

class ControlChannel {
 public:
  static Result<std::pair<ControlChannel, ControlChannel>> CreatePair();
  explicit ControlChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  ControlChannel() = default;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  UniqueFd ReleaseFd() { return std::move(fd_); }

  // Sends one message; kUnavailable when the peer's buffer is full and
  // `blocking` is kDontWait.
  Result<void> Send(const google::protobuf::MessageLite& msg, std::span<const int> fds = {},
                    Blocking blocking = Blocking::kWait);

  // Receives one message into `msg`, with the descriptors that came with it.
  // kUnavailable: nothing pending (kDontWait). kNoDevice: the peer is gone.
  // kProtocol: the datagram was oversized, truncated, unparsable or had too
  // many descriptors.
  Result<std::vector<UniqueFd>> Receive(google::protobuf::MessageLite& msg, Blocking blocking = Blocking::kWait);

 private:
  UniqueFd fd_;
  std::vector<std::byte> buffer_;  // reused receive and send buffer
};

}  // namespace umbra::ipc
