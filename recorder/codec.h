// Conversion between the C++ event model and the protobuf trace records.
// Private to the recorder library: keeps protobuf out of the public headers.
#pragma once

#include "recorder/event.h"
#include "base/result.h"
#include "umbra/trace.pb.h"

namespace umbra::recorder {

inline constexpr char kTraceMagic[] = "umbra-trace";
inline constexpr uint32_t kTraceFormatVersion = 1;

void EncodeHeader(const TraceHeader& header, proto::TraceHeader* out);
Result<TraceHeader> DecodeHeader(const proto::TraceHeader& in);

void EncodeEvent(const Event& event, proto::TraceEvent* out);
// Fails when the record has no known body or an enum is out of range.
Result<Event> DecodeEvent(const proto::TraceEvent& in);

}  // namespace umbra::recorder
