#include "shadows/sound/frontend/fifo_recorder.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace umbra::sound {
namespace {

constexpr int kPollMs = 50;
// Periods read from the card per Read: 20 ms at the default parameters.
constexpr uint32_t kPeriodsPerRead = 4;

void PutLe(std::vector<std::byte>& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(std::byte(v >> (8 * i)));
}
void PutTag(std::vector<std::byte>& out, const char* tag) {
  for (int i = 0; i < 4; ++i) out.push_back(std::byte(tag[i]));
}

// Takes the SIGPIPE a write into a pipe without reader raised (blocked in this
// thread, so pending on it), so that it does not stay pending.
void ConsumeSigpipe() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  const timespec none{};
  while (::sigtimedwait(&pipe, nullptr, &none) == SIGPIPE) {}
}

}  // namespace

std::vector<std::byte> StreamingWavHeader(const PcmParams& params) {
  const uint32_t frame = params.frame_bytes();
  std::vector<std::byte> h;
  PutTag(h, "RIFF");
  PutLe(h, 0xFFFFFFFFu, 4);
  PutTag(h, "WAVE");
  PutTag(h, "fmt ");
  PutLe(h, 16, 4);
  PutLe(h, 1, 2);  // PCM
  PutLe(h, params.channels, 2);
  PutLe(h, params.rate, 4);
  PutLe(h, params.rate * frame, 4);
  PutLe(h, frame, 2);
  PutLe(h, 16, 2);
  PutTag(h, "data");
  PutLe(h, 0xFFFFFFFFu, 4);
  return h;
}

Result<void> MakeFifo(const std::string& path) {
  if (path.empty()) return Fail(Errc::kInvalidArgument, "the FIFO has no path");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISFIFO(st.st_mode)) {
    return Fail(Errc::kAlreadyExists, path + " exists and is not a FIFO");
  }
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) return FailErrno("mkfifo " + path);
  return {};
}

Result<std::unique_ptr<FifoRecorder>> FifoRecorder::Create(Pcm& pcm, FifoRecorderOptions options) {
  if (options.params.format != hw::sound::SoundFormat::kS16Le) {
    return Fail(Errc::kInvalidArgument, "the capture FIFO records 16-bit PCM only");
  }
  UMBRA_TRY(MakeFifo(options.path));
  std::unique_ptr<FifoRecorder> recorder(new FifoRecorder(pcm, std::move(options)));
  recorder->thread_ = std::thread([r = recorder.get()] { r->Loop(); });
  return recorder;
}

FifoRecorder::~FifoRecorder() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::unlink(options_.path.c_str());
}

void FifoRecorder::Loop() {
  // A write into a pipe whose reader left raises SIGPIPE: here it only makes
  // the write fail (EPIPE), which ends the stream.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (!stop_) {
    // Opening the writing end without blocking succeeds only once a reader is there.
    const int fd = ::open(options_.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      continue;
    }
    Record(fd);
    ::close(fd);
    ConsumeSigpipe();
  }
}

void FifoRecorder::Record(int fd) {
  if (!pcm_.OpenCapture(options_.params)) {
    // Another client holds the capture stream: this reader gets nothing.
    return;
  }
  ++streams_;
  bool reading = options_.container == CaptureContainer::kRaw || WriteAll(fd, StreamingWavHeader(options_.params));
  std::vector<std::byte> chunk(size_t{options_.params.period_frames} * kPeriodsPerRead * options_.params.frame_bytes());
  while (reading && !stop_) {
    auto frames = pcm_.Read(chunk);
    if (!frames) break;  // the device is gone
    reading = WriteAll(fd, {chunk.data(), *frames * options_.params.frame_bytes()});
  }
  (void)pcm_.Stop(Direction::kCapture);
  (void)pcm_.Close(Direction::kCapture);
}

bool FifoRecorder::WriteAll(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty() && !stop_) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;  // EPIPE: the reader left
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, kPollMs) > 0 && (p.revents & (POLLERR | POLLHUP))) return false;
  }
  return bytes.empty();
}

}  // namespace umbra::sound
