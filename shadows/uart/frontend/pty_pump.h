// PtyPump: a byte stream as a pseudo-terminal, so that screen, picocom or
// socat can talk to it. The uart class's frontend is a PtyPump over the
// device's uart::Port (the application's side of the shadowed driver);
// `umbra run` also puts one on the emulated UART's far end (the cable), so
// both ends of the serial line can be reached from outside.
//
// The pty is raw (no echo, no line editing, no CR/LF mapping) and has a
// stable path: a symbolic link to /dev/pts/N. Two threads move the bytes:
// whatever a program writes into the pty goes to `write` (retried until all
// of it is taken: the stream keeps order and loses nothing), and whatever
// `read` returns is written into the pty. The pump keeps the pty's other end
// open itself, so programs may come and go.
//
//   auto pump = UMBRA_TRY(PtyPump::Create({.link = run_dir + "/ttyS0"},
//       [&](std::span<const std::byte> b) { return port.Write(b, 100'000'000); },
//       [&](std::span<std::byte> b) { return port.Read(b, 100'000'000); }));
//   // screen /run/…/ttyS0
//
// Thread safety: Create and the destructor from one thread; `write` and
// `read` are called from the pump's two threads, each from one only.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"

namespace umbra::shadows::uart {

struct PtyPumpOptions {
  std::string link;  // the stable path: a symbolic link to the pty (replaced if it exists)
};

class PtyPump {
 public:
  // Takes some of the bytes (how many; 0 or kTimeout: none yet, try again).
  using WriteFn = std::function<Result<size_t>(std::span<const std::byte>)>;
  // Gives bytes (how many; 0 or kTimeout: none yet). Should return within
  // about 100 ms so that the pump can stop.
  using ReadFn = std::function<Result<size_t>(std::span<std::byte>)>;

  // Opens the pty, makes it raw, links it, starts the threads. Errors: no
  // ptys (kIo), the link cannot be made (kIo).
  static Result<std::unique_ptr<PtyPump>> Create(PtyPumpOptions options, WriteFn write, ReadFn read);
  ~PtyPump();
  PtyPump(const PtyPump&) = delete;
  PtyPump& operator=(const PtyPump&) = delete;

  const std::string& link() const { return options_.link; }
  const std::string& pty() const { return pty_; }

 private:
  PtyPump(PtyPumpOptions options, UniqueFd master, UniqueFd slave, std::string pty, WriteFn write, ReadFn read)
      : options_(std::move(options)), master_(std::move(master)), slave_(std::move(slave)), pty_(std::move(pty)),
        write_(std::move(write)), read_(std::move(read)) {}
  void IntoStream();   // pty → write_
  void OutOfStream();  // read_ → pty

  const PtyPumpOptions options_;
  UniqueFd master_;
  UniqueFd slave_;  // held open so the master never sees a hang-up
  const std::string pty_;
  WriteFn write_;
  ReadFn read_;
  std::atomic<bool> stop_{false};
  std::thread in_;
  std::thread out_;
};

}  // namespace umbra::shadows::uart
