#include "shadows/sound/frontend/fifo_player.h"

#include "shadows/sound/frontend/fifo_recorder.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace umbra::sound {
namespace {

constexpr int kPollMs = 50;

uint32_t Le32(std::span<const std::byte> b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24;
}
uint16_t Le16(std::span<const std::byte> b, size_t at) { return uint16_t(uint32_t(b[at]) | uint32_t(b[at + 1]) << 8); }
bool Tag(std::span<const std::byte> b, size_t at, const char* tag) { return std::memcmp(&b[at], tag, 4) == 0; }

}  // namespace

Result<std::pair<PcmParams, size_t>> ParseWavHeader(std::span<const std::byte> head, PcmParams params) {
  if (head.size() < 12 || !Tag(head, 0, "RIFF") || !Tag(head, 8, "WAVE")) {
    return Fail(Errc::kNotFound, "not a WAV file");
  }
  // Chunks after "WAVE": "fmt " sets the format, "data" starts the samples.
  for (size_t at = 12; at + 8 <= head.size();) {
    const uint32_t size = Le32(head, at + 4);
    if (Tag(head, at, "data")) return std::pair{params, at + 8};
    if (at + 8 + size > head.size()) break;
    if (Tag(head, at, "fmt ") && size >= 16) {
      const uint16_t format = Le16(head, at + 8), bits = Le16(head, at + 22);
      params.channels = Le16(head, at + 10);
      params.rate = Le32(head, at + 12);
      if ((format != 1 && format != 0xFFFE) || bits != 16) {
        return Fail(Errc::kParse, "only 16-bit PCM WAV is played (sox: -b 16 -e signed)");
      }
      params.format = hw::sound::SoundFormat::kS16Le;
    }
    at += 8 + size + (size & 1);
  }
  if (head.size() > 4096) return Fail(Errc::kParse, "no data chunk in the WAV header's first 4 KiB");
  return Fail(Errc::kUnavailable, "WAV header incomplete");
}

Result<std::unique_ptr<FifoPlayer>> FifoPlayer::Create(Pcm& pcm, FifoPlayerOptions options) {
  UMBRA_TRY(MakeFifo(options.path));
  UniqueFd fifo(::open(options.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fifo) return FailErrno("opening " + options.path);
  std::unique_ptr<FifoPlayer> player(new FifoPlayer(pcm, std::move(options), std::move(fifo)));
  player->thread_ = std::thread([p = player.get()] { p->Loop(); });
  return player;
}

FifoPlayer::~FifoPlayer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::unlink(options_.path.c_str());
}

size_t FifoPlayer::ReadSome(std::vector<std::byte>& into) {
  pollfd p{fifo_.get(), POLLIN, 0};
  if (::poll(&p, 1, kPollMs) <= 0) return 0;
  std::byte buf[16384];
  const ssize_t n = ::read(fifo_.get(), buf, sizeof buf);
  if (n <= 0) return 0;
  into.insert(into.end(), buf, buf + n);
  return static_cast<size_t>(n);
}

Result<void> FifoPlayer::BeginStream(std::vector<std::byte>& pending) {
  PcmParams params = options_.raw;
  auto wav = ParseWavHeader(pending, params);
  if (wav) {
    params = wav->first;
    pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(wav->second));
  } else if (wav.error().code != Errc::kNotFound) {
    return std::unexpected(wav.error());
  }
  UMBRA_TRY(pcm_.OpenPlayback(params));
  frame_bytes_ = params.frame_bytes();
  playing_ = true;
  ++streams_;
  return {};
}

Result<void> FifoPlayer::PlayWhole(std::vector<std::byte>& pending) {
  const size_t whole = pending.size() / frame_bytes_ * frame_bytes_;
  size_t done = 0;
  // Write takes all the frames it is given and says how many (not bytes).
  while (done < whole && !stop_) done += UMBRA_TRY(pcm_.Write({pending.data() + done, whole - done})) * frame_bytes_;
  pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(done));
  return {};
}

void FifoPlayer::EndStream() {
  (void)pcm_.Drain();
  (void)pcm_.Close(Direction::kPlayback);
  playing_ = false;
}

void FifoPlayer::Loop() {
  std::vector<std::byte> pending;
  auto last_data = std::chrono::steady_clock::now();
  while (!stop_) {
    if (ReadSome(pending) > 0) last_data = std::chrono::steady_clock::now();
    const bool idle = std::chrono::steady_clock::now() - last_data > std::chrono::milliseconds(options_.idle_ms);
    if (!playing_ && !pending.empty()) {
      auto begun = BeginStream(pending);
      // A WAV header still arriving waits; a bad one is dropped with the stream.
      if (!begun && begun.error().code == Errc::kUnavailable && !idle) continue;
      if (!begun) pending.clear();
    }
    if (playing_ && !PlayWhole(pending)) pending.clear();
    if (playing_ && idle) {
      pending.clear();  // a partial frame at the end
      EndStream();
    }
  }
  if (playing_) EndStream();
}

}  // namespace umbra::sound
