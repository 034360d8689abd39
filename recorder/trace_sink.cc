#include "recorder/trace_sink.h"

#include <fcntl.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "recorder/codec.h"

namespace umbra::recorder {

TraceSink::TraceSink(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {
  stream_ = std::make_unique<google::protobuf::io::FileOutputStream>(fd_.get(), 1 << 16);
}

TraceSink::~TraceSink() {
  coded_.reset();
  if (stream_) stream_->Flush();
}

Result<std::unique_ptr<TraceSink>> TraceSink::Create(const std::string& path, const TraceHeader& header) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return FailErrno("open trace " + path);
  auto sink = std::make_unique<TraceSink>(std::move(fd), path);
  proto::TraceHeader h;
  EncodeHeader(header, &h);
  if (!google::protobuf::util::SerializeDelimitedToZeroCopyStream(h, sink->stream_.get()))
    return FailErrno("write trace header " + path, sink->stream_->GetErrno());
  UMBRA_TRY(sink->Flush());
  return sink;
}

Result<void> TraceSink::Write(const proto::TraceRecord& record) {
  if (!coded_) coded_ = std::make_unique<google::protobuf::io::CodedOutputStream>(stream_.get());
  if (!google::protobuf::util::SerializeDelimitedToCodedStream(record, coded_.get()) || coded_->HadError())
    return FailErrno("write trace " + path_, stream_->GetErrno());
  return {};
}

Result<void> TraceSink::WriteDevice(DeviceId id, const DeviceInfo& info) {
  scratch_.Clear();
  auto* d = scratch_.mutable_device();
  d->set_device(id);
  d->set_name(info.name);
  d->set_device_class(info.device_class);
  return Write(scratch_);
}

Result<void> TraceSink::WriteEvent(const Event& event) {
  scratch_.Clear();
  EncodeEvent(event, scratch_.mutable_event());
  return Write(scratch_);
}

Result<void> TraceSink::WriteLost(uint64_t count) {
  scratch_.Clear();
  scratch_.mutable_lost()->set_count(count);
  return Write(scratch_);
}

Result<void> TraceSink::Flush() {
  coded_.reset();  // hands the unused part of the buffer back to stream_
  if (!stream_->Flush()) return FailErrno("flush trace " + path_, stream_->GetErrno());
  return {};
}

Result<void> TraceSink::Close(uint64_t recorded, uint64_t lost) {
  scratch_.Clear();
  scratch_.mutable_end()->set_recorded(recorded);
  scratch_.mutable_end()->set_lost(lost);
  UMBRA_TRY(Write(scratch_));
  UMBRA_TRY(Flush());
  stream_.reset();
  if (::close(fd_.release()) != 0) return FailErrno("close trace " + path_);
  return {};
}

}  // namespace umbra::recorder
