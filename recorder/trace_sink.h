// TraceSink: appends length-delimited trace records to a file descriptor.
// Private to the recorder library; used by the Recorder's writer thread and by
// WriteTrace.
//
//   auto sink = UMBRA_TRY(TraceSink::Create(path, header));
//   sink->WriteDevice(0, {"nic0", "net"});
//   sink->WriteEvent(event);
//   UMBRA_TRY(sink->Close(recorded, lost));
//
// Thread safety: none; one writer.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <memory>
#include <string>

#include "recorder/event.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "umbra/trace.pb.h"

namespace umbra::recorder {

class TraceSink {
 public:
  // Creates (truncates) `path` and writes the header.
  static Result<std::unique_ptr<TraceSink>> Create(const std::string& path, const TraceHeader& header);

  Result<void> WriteDevice(DeviceId id, const DeviceInfo& info);
  Result<void> WriteEvent(const Event& event);
  Result<void> WriteLost(uint64_t count);
  // Pushes buffered bytes to the file.
  Result<void> Flush();
  // Writes the end record, flushes and closes the file.
  Result<void> Close(uint64_t recorded, uint64_t lost);

  TraceSink(UniqueFd fd, std::string path);
  ~TraceSink();

 private:
  Result<void> Write(const proto::TraceRecord& record);

  // The trace file; the sink owns it so that it is closed exactly once.
  UniqueFd fd_;
  std::string path_;
  // Buffers writes to fd_; destroyed (and flushed) before fd_ closes.
  std::unique_ptr<google::protobuf::io::FileOutputStream> stream_;
  // Encodes into stream_'s buffer across many records (one per flush, not
  // one per record); released before stream_ is flushed.
  std::unique_ptr<google::protobuf::io::CodedOutputStream> coded_;
  proto::TraceRecord scratch_;
};

}  // namespace umbra::recorder
