// FUSE's own cost, for bench/frontends/frontends_bench.sh: serves a plain
// image file through the same FuseFile the block frontend uses, with a
// block::Disk that is pread/pwrite on the file (no shadow, no driver). fio on
// this file against fio on the image itself is what FUSE and FuseFile cost;
// fio on the shadowed disk's FUSE file against this is what the shadow adds.
//
//   bench_fuse_floor IMAGE MOUNT-FILE     (until SIGINT or SIGTERM)
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "shadows/block/frontend/fuse_file.h"

namespace {

using umbra::Errc;
using umbra::Fail;
using umbra::Result;
using namespace umbra::shadows::block;

// A Disk over a file descriptor: each request is done at Submit (the calling
// thread does the I/O, as many threads at once as call it).
class FileDisk final : public Disk {
 public:
  FileDisk(int fd, uint64_t blocks) : fd_(fd), blocks_(blocks) {}
  umbra::block::Geometry geometry() const override {
    return {.capacity_blocks = blocks_, .block_size = kBlock, .max_io_bytes = 1 << 20, .max_queue_depth = 256};
  }
  uint32_t max_io_blocks() const override { return (1 << 20) / kBlock; }
  Result<void> Submit(const Io& io, int64_t) override {
    const int32_t status = Do(io) ? 0 : static_cast<int32_t>(Errc::kIo);
    std::lock_guard lock(mu_);
    done_.push_back({io.user_data, status});
    cv_.notify_all();
    return {};
  }
  Result<size_t> Reap(std::span<IoDone> out, size_t min, int64_t timeout_ns) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return done_.size() >= min; })) {
      return Fail(Errc::kTimeout, "no completion");
    }
    size_t n = 0;
    for (; n < out.size() && !done_.empty(); ++n, done_.pop_front()) out[n] = done_.front();
    return n;
  }
  Result<void> Run(std::span<const Io> ios, int64_t) override {
    for (const Io& io : ios) {
      if (!Do(io)) return Fail(Errc::kIo, "I/O on the image failed");
    }
    return {};
  }
  Result<void> SetWriteCache(bool) override { return {}; }

 private:
  static constexpr uint32_t kBlock = 4096;
  // The image is opened O_DIRECT, like fio's baseline; libfuse's buffers are
  // not page-aligned, so the data goes through an aligned one.
  bool Do(const Io& io) {
    const size_t bytes = size_t{io.blocks} * kBlock;
    const off_t at = static_cast<off_t>(io.lba * kBlock);
    alignas(4096) static thread_local std::byte bounce[1 << 20];
    switch (io.op) {
      case umbra::block::kRead:
        if (::pread(fd_, bounce, bytes, at) != static_cast<ssize_t>(bytes)) return false;
        std::memcpy(io.data, bounce, bytes);
        return true;
      case umbra::block::kWrite:
      case umbra::block::kWriteFua:
        std::memcpy(bounce, io.data, bytes);
        return ::pwrite(fd_, bounce, bytes, at) == static_cast<ssize_t>(bytes);
      case umbra::block::kFlush: return ::fdatasync(fd_) == 0;
      case umbra::block::kDiscard: return true;
    }
    return false;
  }
  int fd_;
  uint64_t blocks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<IoDone> done_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IMAGE MOUNT-FILE\n", argv[0]);
    return 2;
  }
  const int fd = ::open(argv[1], O_RDWR | O_DIRECT | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  FileDisk disk(fd, static_cast<uint64_t>(st.st_size) / 4096);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  // A background job of a script starts with SIGINT ignored, which would
  // discard it even for sigwait.
  ::signal(SIGINT, SIG_DFL);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before FuseFile's threads start
  auto file = FuseFile::Create(disk, {.path = argv[2]});
  if (!file) {
    std::fprintf(stderr, "%s\n", file.error().message.c_str());
    return 1;
  }
  std::printf("serving %s\n", argv[2]);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  return 0;
}
