#include "recorder/recorder.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bit>

#include "recorder/trace_sink.h"

namespace umbra::recorder {
namespace detail {

Event ToEvent(const Record& r) {
  Event e{r.time_ns, r.device, DriverReady{}};
  switch (r.kind) {
    case RecordKind::kRequestSubmitted:
      e.body = umbra::recorder::RequestSubmitted{static_cast<RequestOp>(r.code), r.a};
      break;
    case RecordKind::kRequestCompleted:
      e.body = umbra::recorder::RequestCompleted{static_cast<RequestOp>(r.code), static_cast<RequestOutcome>(r.code2),
                                                 r.a, r.b};
      break;
    case RecordKind::kDriverSpawned: e.body = umbra::recorder::DriverSpawned{static_cast<int64_t>(r.a)}; break;
    case RecordKind::kDriverReady: break;
    case RecordKind::kDriverExited:
      e.body =
          umbra::recorder::DriverExited{static_cast<ExitKind>(r.code), static_cast<int32_t>(static_cast<int64_t>(r.a))};
      break;
    case RecordKind::kDetected:
      e.body = umbra::recorder::Detected{static_cast<DetectionReason>(r.code), static_cast<int64_t>(r.a)};
      break;
    case RecordKind::kPhaseBegin: e.body = umbra::recorder::PhaseBegin{static_cast<RecoveryPhase>(r.code)}; break;
    case RecordKind::kPhaseEnd:
      e.body = umbra::recorder::PhaseEnd{static_cast<RecoveryPhase>(r.code), static_cast<PhaseOutcome>(r.code2)};
      break;
    case RecordKind::kDeviceFailed: e.body = umbra::recorder::DeviceFailed{}; break;
    case RecordKind::kRequestsDisposed:
      e.body = umbra::recorder::RequestsDisposed{static_cast<Disposition>(r.code), r.a};
      break;
    case RecordKind::kLinkChanged:
      e.body = umbra::recorder::LinkChanged{static_cast<LinkEvent>(r.code), static_cast<DeviceId>(r.a)};
      break;
  }
  return e;
}

}  // namespace detail

namespace {

std::atomic<uint64_t> next_recorder_id{1};

TraceHeader MakeHeader(uint32_t sampling_rate) {
  TraceHeader h;
  timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  h.start_unix_ns = int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec;
  h.start_monotonic_ns = int64_t{mono.tv_sec} * 1'000'000'000 + mono.tv_nsec;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) h.host_name = host;
  utsname u;
  if (uname(&u) == 0) h.kernel = std::string(u.sysname) + " " + u.release;
  h.cpus = std::thread::hardware_concurrency();
  h.sampling_rate = sampling_rate;
  h.tool_version = "umbra 0.1.0";
  return h;
}

}  // namespace

Recorder::Recorder(RecorderOptions options, std::unique_ptr<TraceSink> sink, uint64_t id)
    : options_(std::move(options)), id_(id), on_(sink != nullptr), sink_(std::move(sink)) {}

Result<std::unique_ptr<Recorder>> Recorder::Create(const RecorderOptions& options) {
  if (options.sampling_rate == 0) return Fail(Errc::kInvalidArgument, "recorder sampling rate must be at least 1");
  if (options.buffer_records == 0 || options.buffer_records > (1u << 26))
    return Fail(Errc::kInvalidArgument, "recorder buffer must hold 1 to 2^26 records");
  RecorderOptions opts = options;
  opts.buffer_records = std::bit_ceil(std::max(options.buffer_records, 2u));
  auto sink = UMBRA_TRY(TraceSink::Create(opts.path, MakeHeader(opts.sampling_rate)));
  std::unique_ptr<Recorder> rec(new Recorder(std::move(opts), std::move(sink), next_recorder_id.fetch_add(1)));
  rec->writer_ = std::thread([r = rec.get()] { r->WriterLoop(); });
  return rec;
}

Recorder& Recorder::Off() {
  static Recorder off(RecorderOptions{}, nullptr, 0);
  return off;
}

Recorder::~Recorder() { (void)Close(); }

DeviceId Recorder::RegisterDevice(std::string_view name, std::string_view device_class) {
  std::lock_guard lock(mu_);
  for (DeviceId id = 0; id < devices_.size(); ++id)
    if (devices_[id].name == name) return id;
  devices_.push_back(DeviceInfo{std::string(name), std::string(device_class)});
  return static_cast<DeviceId>(devices_.size() - 1);
}

detail::ThreadBuffer* Recorder::AttachThisThread() {
  std::lock_guard lock(mu_);
  auto& slot = buffer_of_thread_[std::this_thread::get_id()];
  if (slot == nullptr) {
    buffers_.push_back(std::make_unique<detail::ThreadBuffer>(options_.buffer_records));
    slot = buffers_.back().get();
  }
  detail::tls_slot = {id_, slot};
  return slot;
}

void Recorder::PushSlow(Event event) {
  if (!on()) return;
  if (event.time_ns == 0) event.time_ns = MonotonicNanos();
  std::lock_guard lock(mu_);
  slow_queue_.push_back(std::move(event));
}

void Recorder::FaultInjected(DeviceId device, std::string_view site, std::string_view action, uint64_t seed,
                             int64_t at_ns) {
  PushSlow({at_ns, device, umbra::recorder::FaultInjected{std::string(site), std::string(action), seed}});
}

void Recorder::WorkloadVerified(DeviceId device, std::string_view workload, VerifyOutcome outcome,
                                std::string_view detail) {
  PushSlow({0, device, umbra::recorder::WorkloadVerified{std::string(workload), outcome, std::string(detail)}});
}

void Recorder::RunMarker(RunMarkerKind kind, std::string_view run_id, uint64_t seed) {
  PushSlow({0, kNoDevice, umbra::recorder::RunMarker{kind, std::string(run_id), seed}});
}

uint64_t Recorder::lost_events() const {
  std::lock_guard lock(mu_);
  uint64_t lost = 0;
  for (const auto& b : buffers_) lost += b->lost();
  return lost;
}

void Recorder::NoteWriteError(Result<void> r) {
  if (r) return;
  std::lock_guard lock(mu_);
  if (!write_error_) write_error_ = std::move(r.error());
}

void Recorder::DrainOnce() {
  std::vector<DeviceInfo> devices;
  size_t first_device = 0;
  std::vector<Event> slow;
  std::vector<detail::ThreadBuffer*> buffers;
  {
    std::lock_guard lock(mu_);
    first_device = devices_written_;
    devices.assign(devices_.begin() + devices_written_, devices_.end());
    devices_written_ = devices_.size();
    slow.swap(slow_queue_);
    for (const auto& b : buffers_) buffers.push_back(b.get());
  }
  for (size_t i = 0; i < devices.size(); ++i)
    NoteWriteError(sink_->WriteDevice(static_cast<DeviceId>(first_device + i), devices[i]));
  uint64_t written = 0;
  for (const Event& e : slow) {
    NoteWriteError(sink_->WriteEvent(e));
    ++written;
  }
  uint64_t lost = 0;
  for (detail::ThreadBuffer* b : buffers) {
    written += b->Drain([&](const detail::Record& r) { NoteWriteError(sink_->WriteEvent(detail::ToEvent(r))); });
    lost += b->lost();
  }
  recorded_.fetch_add(written, std::memory_order_relaxed);
  if (lost > lost_written_) {
    NoteWriteError(sink_->WriteLost(lost - lost_written_));
    lost_written_ = lost;
  }
  NoteWriteError(sink_->Flush());
}

void Recorder::WriterLoop() {
  for (;;) {
    uint64_t generation = 0;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, options_.flush_period, [&] { return stop_ || flush_requested_ > flush_done_; });
      generation = flush_requested_;
      stop = stop_;
    }
    DrainOnce();
    {
      std::lock_guard lock(mu_);
      flush_done_ = generation;
    }
    drained_.notify_all();
    if (stop) return;
  }
}

Result<void> Recorder::Flush() {
  std::unique_lock lock(mu_);
  if (!closed_ && sink_ != nullptr) {
    uint64_t generation = ++flush_requested_;
    wake_.notify_one();
    drained_.wait(lock, [&] { return flush_done_ >= generation; });
  }
  if (write_error_) return std::unexpected(*write_error_);
  return {};
}

Result<void> Recorder::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_ || sink_ == nullptr) return {};
    closed_ = true;
    stop_ = true;
    on_.store(false, std::memory_order_relaxed);
  }
  wake_.notify_one();
  writer_.join();
  NoteWriteError(sink_->Close(recorded_.load(), lost_events()));
  std::lock_guard lock(mu_);
  if (write_error_) return std::unexpected(*write_error_);
  return {};
}

}  // namespace umbra::recorder
