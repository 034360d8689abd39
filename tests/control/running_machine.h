// RunningMachine: `umbra run FILE --jsonl --run-dir DIR` as a child process,
// for tests that drive it from outside (umbra status / inject, frontends).
// The child is stopped (SIGTERM, then SIGKILL) and reaped by the destructor,
// so a failing test leaves nothing running.
//
//   RunningMachine m(dir);
//   ASSERT_TRUE(m.Start(machine_file)) << m.output();
//   ASSERT_TRUE(m.WaitFor("\"kind\":\"recovered\"", 10s)) << m.output();
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstdint>
#include <string>
#include <string>
#include <vector>

#include "tests/shell.h"

namespace umbra::testing {

// The start of a test machine file: its name, settings that let a driver be
// crashed many times in a row, and the platform bus. Devices and drivers follow.
inline std::string MachineHead(const std::string& name) {
  return "name: \"" + name +
         "\"\n"
         "settings {\n"
         "  heartbeat_period_ms: 50\n"
         "  restart_budget { max_restarts: 10000 window_ms: 60000 backoff_ms: 5 }\n"
         "}\n"
         "buses { name: \"platform\" }\n";
}

// Counts the occurrences of `text` in `s`.
inline size_t Count(const std::string& s, const std::string& text) {
  size_t n = 0;
  for (size_t at = s.find(text); at != std::string::npos; at = s.find(text, at + 1)) ++n;
  return n;
}

class RunningMachine {
 public:
  explicit RunningMachine(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  ~RunningMachine() { Stop(); }

  const std::string& run_dir() const { return run_dir_; }
  const std::string& output() const { return out_; }

  // Starts the machine and waits until its control socket listens.
  bool Start(const std::string& machine_file, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      execl(UMBRA_BIN, UMBRA_BIN, "run", machine_file.c_str(), "--jsonl", "--run-dir", run_dir_.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    return WaitFor("listening on", timeout);
  }

  // Reads the child's output until `text` appears in it (after `from`) or the
  // timeout passes (or the child exits).
  bool WaitFor(const std::string& text, std::chrono::milliseconds timeout, size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_.find(text, from) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) {
        close(fd_);
        fd_ = -1;
        return out_.find(text, from) != std::string::npos;
      }
      out_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  // Counts the occurrences of `text` in what was read so far.
  size_t Count(const std::string& text) const { return umbra::testing::Count(out_, text); }

  // Reads until `text` was printed at least `n` times, or the timeout.
  bool WaitForCount(const std::string& text, size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Count(text) < n) {
      if (std::chrono::steady_clock::now() >= deadline || fd_ < 0) return false;
      (void)WaitFor("\n\x01never", std::chrono::milliseconds(50), out_.size());
    }
    return true;
  }

  // SIGKILL now, as a crash of umbra itself would end it; reaps it.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // SIGTERM, then SIGKILL after 20 s; returns the exit status (-1 if killed).
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      if (fd_ >= 0)
        (void)WaitFor("\n\x01never", std::chrono::milliseconds(10), out_.size());
      else
        usleep(10'000);
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = 0;
    }
    for (int i = 0; i < 50 && fd_ >= 0; ++i) (void)WaitFor("\n\x01never", std::chrono::milliseconds(100), out_.size());
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

 private:
  std::string run_dir_;
  pid_t pid_ = 0;
  int fd_ = -1;
  std::string out_;
  int exit_code_ = -1;
};

// Crashes a device's driver through `umbra inject`, in the background until
// stopped, cycling through the fault types it is given.
class Crasher {
 public:
  // `faults`: used in turn, one every `every` (as `umbra inject` reads it).
  // At most `max_faults` (then it only waits to be stopped).
  Crasher(const std::string& run_dir, const std::string& device, std::vector<std::string> faults,
          std::chrono::milliseconds every, size_t max_faults = SIZE_MAX)
      : thread_([=, this] {
          for (size_t i = 0; !stop_ && i < max_faults; ++i) {
            auto r = Shell(std::string(UMBRA_BIN) + " inject " + device + " " + faults[i % faults.size()] +
                           " --run-dir " + run_dir);
            if (r.code == 0) ++injected_;
            if (r.code != 0) {
              std::lock_guard lock(mu_);
              failures_ += r.out;
            }
            std::this_thread::sleep_for(every);
          }
        }) {}
  ~Crasher() { Stop(); }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return injected_;
  }

  // What the injections that failed said.
  std::string failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  std::mutex mu_;
  std::string failures_;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::atomic<int> injected_{0};
  std::thread thread_;
};

}  // namespace umbra::testing
