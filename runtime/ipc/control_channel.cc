#include "runtime/ipc/control_channel.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include <google/protobuf/message_lite.h>

namespace umbra::ipc {

Result<std::pair<ControlChannel, ControlChannel>> ControlChannel::CreatePair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return FailErrno("socketpair(SOCK_SEQPACKET)");
  }
  return std::pair<ControlChannel, ControlChannel>(ControlChannel(UniqueFd(fds[0])), ControlChannel(UniqueFd(fds[1])));
}

Result<void> ControlChannel::Send(const google::protobuf::MessageLite& msg, std::span<const int> fds,
                                  Blocking blocking) {
  const size_t size = msg.ByteSizeLong();
  if (size > kMaxMessageBytes) {
    return Fail(Errc::kInvalidArgument, "control message of " + std::to_string(size) + " bytes exceeds the limit");
  }
  if (fds.size() > kMaxFdsPerMessage) {
    return Fail(Errc::kInvalidArgument, "too many descriptors in one control message");
  }
  buffer_.resize(size);
  if (!msg.SerializeToArray(buffer_.data(), static_cast<int>(size))) {
    return Fail(Errc::kInternal, "cannot serialize control message");
  }
  // An empty message still needs one byte so that the datagram is not mistaken
  // for end of file by the receiver.
  std::byte pad{0};
  iovec iov{size ? buffer_.data() : &pad, size ? size : 1};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (!fds.empty()) {
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const int flags = MSG_NOSIGNAL | (blocking == Blocking::kDontWait ? MSG_DONTWAIT : 0);
  for (;;) {
    if (sendmsg(fd_.get(), &mh, flags) >= 0) return {};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Fail(Errc::kUnavailable, "control channel full");
    if (errno == EPIPE || errno == ECONNRESET) return Fail(Errc::kNoDevice, "peer closed");
    return FailErrno("sendmsg");
  }
}

Result<std::vector<UniqueFd>> ControlChannel::Receive(google::protobuf::MessageLite& msg, Blocking blocking) {
  buffer_.resize(kMaxMessageBytes + 1);
  iovec iov{buffer_.data(), buffer_.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  const int flags = MSG_CMSG_CLOEXEC | (blocking == Blocking::kDontWait ? MSG_DONTWAIT : 0);
  ssize_t n;
  for (;;) {
    n = recvmsg(fd_.get(), &mh, flags);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Fail(Errc::kUnavailable, "no control message pending");
    if (errno == ECONNRESET) return Fail(Errc::kNoDevice, "control channel closed by peer");
    return FailErrno("recvmsg");
  }
  // Take ownership of every descriptor first, so that none leaks on any path.
  std::vector<UniqueFd> received;
  bool bad_cmsg = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      bad_cmsg = true;
      continue;
    }
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      received.emplace_back(fd);
    }
  }
  if (n == 0 && received.empty()) return Fail(Errc::kNoDevice, "control channel closed by peer");
  if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<size_t>(n) > kMaxMessageBytes) {
    return Fail(Errc::kProtocol,
                "control message over " + std::to_string(kMaxMessageBytes) + " bytes or with too many descriptors");
  }
  if (bad_cmsg || received.size() > kMaxFdsPerMessage) {
    return Fail(Errc::kProtocol, "control message with unexpected ancillary data");
  }
  // A one-byte zero datagram is an empty message (see Send).
  const size_t len = (n == 1 && buffer_[0] == std::byte{0}) ? 0 : static_cast<size_t>(n);
  if (!msg.ParseFromArray(buffer_.data(), static_cast<int>(len))) {
    return Fail(Errc::kProtocol, "control message does not parse (" + std::to_string(n) + " bytes)");
  }
  return received;
}

}  // namespace umbra::ipc
