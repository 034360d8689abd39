// FifoRecorder: a sound::Pcm's capture stream written into a named pipe, so
// that sox, `cat` or any program that reads a file records from the shadowed
// card's microphone.
//
// Nothing is captured while nobody reads. When a reader opens the FIFO, the
// recorder opens the capture stream and writes a WAV header (16-bit PCM, the
// stream's rate and channels; the sizes say "unknown", as a streaming WAV
// does) or nothing (raw PCM), then the captured frames, at the card's pace.
// When the reader closes its end, the stream is closed; the next reader gets
// a new stream and a new header. A driver crash makes silent frames in the
// stream, never a shift (the class's promise): the frames the card could not
// capture are zeros at their own positions.
//
//   auto rec = UMBRA_TRY(FifoRecorder::Create(*shadow, {.path = run_dir + "/snd0.rec"}));
//   // sox -t wav /run/…/snd0.rec speech.wav trim 0 5
//
// A reader slower than the card makes the pipe full; the recorder then waits
// and the card's capture ring overruns (silence for what it overwrote), as a
// real card does for a slow application.
//
// Thread safety: Create and the destructor from one thread; the recorder's
// thread is the capture stream's one application thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "shadows/sound/pcm.h"

namespace umbra::sound {

enum class CaptureContainer { kWav, kRaw };

struct FifoRecorderOptions {
  std::string path;  // the FIFO, made (mode 0600) if missing, removed at the end
  PcmParams params;  // the capture stream's parameters (16-bit formats only)
  CaptureContainer container = CaptureContainer::kWav;
};

class FifoRecorder {
 public:
  static Result<std::unique_ptr<FifoRecorder>> Create(Pcm& pcm, FifoRecorderOptions options);
  ~FifoRecorder();
  FifoRecorder(const FifoRecorder&) = delete;
  FifoRecorder& operator=(const FifoRecorder&) = delete;

  const std::string& path() const { return options_.path; }
  // Readers served so far (one capture stream each).
  uint64_t streams() const { return streams_.load(); }

 private:
  FifoRecorder(Pcm& pcm, FifoRecorderOptions options) : pcm_(pcm), options_(std::move(options)) {}
  void Loop();
  // Captures into `fd` (a reader's pipe) until the reader leaves or Stop.
  void Record(int fd);
  // Writes all of `bytes`; false once the reader left (or on Stop).
  bool WriteAll(int fd, std::span<const std::byte> bytes);

  Pcm& pcm_;  // not owned; outlives the recorder
  const FifoRecorderOptions options_;
  std::atomic<uint64_t> streams_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A streaming WAV header (RIFF and data sizes 0xFFFFFFFF: "until the end")
// for 16-bit PCM frames of `params`.
std::vector<std::byte> StreamingWavHeader(const PcmParams& params);

// Makes the FIFO `path` (mode 0600) unless a FIFO is already there; kAlreadyExists
// when something else is.
Result<void> MakeFifo(const std::string& path);

}  // namespace umbra::sound
