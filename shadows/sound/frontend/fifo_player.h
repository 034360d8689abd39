// FifoPlayer: a sound::Pcm's playback stream fed from a named pipe, so that
// sox, aplay-like tools or `cat file.wav >` play through the shadowed driver.
//
// The FIFO takes raw PCM (S16LE, 48 kHz, stereo: the defaults of PcmParams)
// or a WAV file, whose header sets rate, channels and format. Playback starts
// with the first bytes and ends (Drain, Close) once nothing more came for
// `idle_ms`; the next writer starts a new stream. Writers are paced by the
// card: the pipe fills while the card plays. A driver crash makes a gap in
// the sound, never a shift (the class's promise).
//
//   auto player = UMBRA_TRY(FifoPlayer::Create(*shadow, {.path = run_dir + "/snd0.play"}));
//   // sox song.flac -t wav - > /run/…/snd0.play
//
// Thread safety: Create and the destructor from one thread; the player's
// thread is the playback stream's one application thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "shadows/sound/pcm.h"

namespace umbra::sound {

struct FifoPlayerOptions {
  std::string path;   // the FIFO, made (mode 0600) if missing, removed at the end
  PcmParams raw;      // the stream's parameters for raw PCM
  int idle_ms = 500;  // silence on the pipe that ends a stream
};

class FifoPlayer {
 public:
  static Result<std::unique_ptr<FifoPlayer>> Create(Pcm& pcm, FifoPlayerOptions options);
  ~FifoPlayer();
  FifoPlayer(const FifoPlayer&) = delete;
  FifoPlayer& operator=(const FifoPlayer&) = delete;

  const std::string& path() const { return options_.path; }
  uint64_t streams() const { return streams_.load(); }

 private:
  FifoPlayer(Pcm& pcm, FifoPlayerOptions options, UniqueFd fifo)
      : pcm_(pcm), options_(std::move(options)), fifo_(std::move(fifo)) {}
  void Loop();
  // Reads what the pipe has (waits up to the poll period); 0 when nothing came.
  size_t ReadSome(std::vector<std::byte>& into);
  Result<void> BeginStream(std::vector<std::byte>& pending);
  void EndStream();
  // Plays the whole frames of `pending`, keeping the rest.
  Result<void> PlayWhole(std::vector<std::byte>& pending);

  Pcm& pcm_;  // not owned; outlives the player
  const FifoPlayerOptions options_;
  UniqueFd fifo_;  // opened read-write, so that writers coming and going never make EOF
  bool playing_ = false;
  uint32_t frame_bytes_ = 0;
  std::atomic<uint64_t> streams_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The stream parameters a WAV header gives, and the header's length.
// kNotFound when `head` (the first bytes) is not a WAV file, kParse when it
// is one this player cannot play, kUnavailable when more bytes are needed.
Result<std::pair<PcmParams, size_t>> ParseWavHeader(std::span<const std::byte> head, PcmParams defaults);

}  // namespace umbra::sound
