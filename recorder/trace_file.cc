#include "recorder/trace_file.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>

#include "recorder/codec.h"
#include "recorder/trace_sink.h"
#include "base/unique_fd.h"

namespace umbra::recorder {
namespace {

// No record the writer produces comes near this; a larger length prefix is garbage.
constexpr uint64_t kMaxRecordBytes = 1 << 20;
// Device indices are dense from 0; a larger one is damage, not a real table.
constexpr uint32_t kMaxDevices = 1 << 16;

Result<std::string> ReadWholeFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Fail(Errc::kNotFound, "no trace file " + path);
    return FailErrno("open trace " + path);
  }
  std::string bytes;
  char chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read trace " + path);
    if (n == 0) return bytes;
    bytes.append(chunk, static_cast<size_t>(n));
  }
}

enum class FrameStatus { kOk, kEnd, kDamaged };

// One length-delimited frame of `bytes` starting at `offset`.
struct Frame {
  FrameStatus status = FrameStatus::kEnd;
  std::string_view payload;
  size_t next = 0;
  std::string error;
};

Frame NextFrame(std::string_view bytes, size_t offset, std::string_view what) {
  Frame f;
  if (offset == bytes.size()) return f;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data() + offset),
                                            static_cast<int>(std::min<size_t>(bytes.size() - offset, 16)));
  uint64_t size = 0;
  f.status = FrameStatus::kDamaged;
  std::string at = std::string(what) + ": record at byte " + std::to_string(offset);
  if (!in.ReadVarint64(&size)) {
    f.error = bytes.size() - offset < 10 ? "truncated trace " + at + ": length prefix cut short"
                                         : "corrupt trace " + at + ": bad length prefix";
    return f;
  }
  size_t header = static_cast<size_t>(in.CurrentPosition());
  size_t remain = bytes.size() - offset - header;
  if (size > kMaxRecordBytes) {
    f.error = "corrupt trace " + at + ": implausible length " + std::to_string(size);
    return f;
  }
  if (size > remain) {
    f.error = "truncated trace " + at + ": declares " + std::to_string(size) + " bytes, " + std::to_string(remain) +
              " remain";
    return f;
  }
  f.status = FrameStatus::kOk;
  f.payload = bytes.substr(offset + header, size);
  f.next = offset + header + size;
  return f;
}

// Applies one record to `trace`. Returns an error message for a record that
// parses as protobuf but makes no sense.
Result<void> Apply(const proto::TraceRecord& record, Trace& trace, bool& ended) {
  switch (record.record_case()) {
    case proto::TraceRecord::kDevice: {
      const auto& d = record.device();
      if (d.device() >= kMaxDevices) return Fail(Errc::kParse, "implausible device index");
      if (trace.devices.size() <= d.device()) trace.devices.resize(d.device() + 1);
      trace.devices[d.device()] = DeviceInfo{d.name(), d.device_class()};
      return {};
    }
    case proto::TraceRecord::kEvent: trace.events.push_back(UMBRA_TRY(DecodeEvent(record.event()))); return {};
    case proto::TraceRecord::kLost: trace.lost_events += record.lost().count(); return {};
    case proto::TraceRecord::kEnd:
      trace.lost_events = std::max(trace.lost_events, record.end().lost());
      ended = true;
      return {};
    case proto::TraceRecord::RECORD_NOT_SET: break;
  }
  return Fail(Errc::kParse, "record of unknown type");
}

}  // namespace

Result<Trace> ParseTrace(std::string_view bytes, std::string_view what) {
  Frame first = NextFrame(bytes, 0, what);
  if (first.status == FrameStatus::kEnd) return Fail(Errc::kParse, std::string(what) + ": empty file, not a trace");
  if (first.status == FrameStatus::kDamaged) return Fail(Errc::kParse, first.error);
  proto::TraceHeader header;
  if (!header.ParseFromArray(first.payload.data(), static_cast<int>(first.payload.size())))
    return Fail(Errc::kParse, std::string(what) + ": not an umbra trace (header does not parse)");
  Trace trace;
  auto decoded = DecodeHeader(header);
  if (!decoded) return Fail(Errc::kParse, std::string(what) + ": " + decoded.error().message);
  trace.header = std::move(*decoded);

  proto::TraceRecord record;
  size_t offset = first.next;
  bool ended = false;
  while (!ended) {
    Frame f = NextFrame(bytes, offset, what);
    if (f.status == FrameStatus::kEnd) break;
    if (f.status == FrameStatus::kDamaged) {
      trace.damage = TraceDamage{offset, f.error};
      return trace;
    }
    std::string at = std::string(what) + ": record at byte " + std::to_string(offset);
    if (!record.ParseFromArray(f.payload.data(), static_cast<int>(f.payload.size()))) {
      trace.damage = TraceDamage{offset, "corrupt trace " + at + " (" + std::to_string(f.payload.size()) +
                                             " bytes) does not parse"};
      return trace;
    }
    if (auto applied = Apply(record, trace, ended); !applied) {
      trace.damage = TraceDamage{offset, "corrupt trace " + at + ": " + applied.error().message};
      return trace;
    }
    offset = f.next;
  }
  trace.complete = ended;
  if (!ended) {
    trace.damage = TraceDamage{offset,
                               "incomplete trace " + std::string(what) + ": ends at byte " + std::to_string(offset) +
                                   " without the end record (writer did not close)",
                               DamageKind::kIncomplete};
  } else if (offset != bytes.size() && NextFrame(bytes, offset, what).status != FrameStatus::kEnd) {
    trace.damage = TraceDamage{offset,
                               "trace " + std::string(what) + ": " + std::to_string(bytes.size() - offset) +
                                   " unexpected bytes after the end record at byte " + std::to_string(offset),
                               DamageKind::kTrailing};
  }
  return trace;
}

Result<Trace> ReadTrace(const std::string& path) {
  std::string bytes = UMBRA_TRY(ReadWholeFile(path));
  return ParseTrace(bytes, path);
}

Result<void> WriteTrace(const Trace& trace, const std::string& path) {
  auto sink = UMBRA_TRY(TraceSink::Create(path, trace.header));
  for (DeviceId id = 0; id < trace.devices.size(); ++id) UMBRA_TRY(sink->WriteDevice(id, trace.devices[id]));
  for (const Event& e : trace.events) UMBRA_TRY(sink->WriteEvent(e));
  if (trace.lost_events > 0) UMBRA_TRY(sink->WriteLost(trace.lost_events));
  return sink->Close(trace.events.size(), trace.lost_events);
}

Trace MergeTraces(std::span<const Trace> parts) {
  Trace out;
  if (parts.empty()) return out;
  out.header = parts[0].header;
  std::map<std::pair<std::string, std::string>, DeviceId> ids;
  for (const Trace& part : parts) {
    out.header.sampling_rate = std::max(out.header.sampling_rate, part.header.sampling_rate);
    out.header.start_monotonic_ns = std::min(out.header.start_monotonic_ns, part.header.start_monotonic_ns);
    std::vector<DeviceId> remap(part.devices.size());
    for (DeviceId d = 0; d < part.devices.size(); ++d) {
      const DeviceInfo& info = part.devices[d];
      auto [it, added] = ids.try_emplace({info.name, info.device_class}, static_cast<DeviceId>(out.devices.size()));
      if (added) out.devices.push_back(info);
      remap[d] = it->second;
    }
    for (Event e : part.events) {
      if (e.device != kNoDevice) e.device = e.device < remap.size() ? remap[e.device] : kNoDevice;
      if (auto* link = std::get_if<LinkChanged>(&e.body); link != nullptr && link->supplier < remap.size())
        link->supplier = remap[link->supplier];
      out.events.push_back(std::move(e));
    }
    out.lost_events += part.lost_events;
  }
  std::stable_sort(out.events.begin(), out.events.end(),
                   [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
  out.complete = true;
  return out;
}

}  // namespace umbra::recorder
