#include "recorder/codec.h"
#include "base/overloaded.h"

#include <string>
#include <type_traits>

namespace umbra::recorder {
namespace {

// Every C++ enum value v is proto value v + 1 (proto reserves 0 for UNSPECIFIED).
template <class ProtoEnum, class E>
ProtoEnum ToProto(E value) {
  return static_cast<ProtoEnum>(static_cast<int>(value) + 1);
}

template <class E>
Result<E> FromProto(int value, int count, const char* what) {
  if (value < 1 || value > count)
    return Fail(Errc::kParse, std::string("invalid ") + what + " " + std::to_string(value));
  return static_cast<E>(value - 1);
}

}  // namespace

void EncodeHeader(const TraceHeader& header, proto::TraceHeader* out) {
  out->set_magic(kTraceMagic);
  out->set_format_version(header.format_version);
  out->set_start_unix_ns(header.start_unix_ns);
  out->set_start_monotonic_ns(header.start_monotonic_ns);
  out->set_host_name(header.host_name);
  out->set_kernel(header.kernel);
  out->set_cpus(header.cpus);
  out->set_sampling_rate(header.sampling_rate);
  out->set_tool_version(header.tool_version);
}

Result<TraceHeader> DecodeHeader(const proto::TraceHeader& in) {
  if (in.magic() != kTraceMagic) return Fail(Errc::kParse, "not an umbra trace (bad magic)");
  if (in.format_version() != kTraceFormatVersion)
    return Fail(Errc::kParse, "unsupported trace format version " + std::to_string(in.format_version()) +
                                  " (this build reads " + std::to_string(kTraceFormatVersion) + ")");
  TraceHeader h;
  h.format_version = in.format_version();
  h.start_unix_ns = in.start_unix_ns();
  h.start_monotonic_ns = in.start_monotonic_ns();
  h.host_name = in.host_name();
  h.kernel = in.kernel();
  h.cpus = in.cpus();
  h.sampling_rate = in.sampling_rate() == 0 ? 1 : in.sampling_rate();
  h.tool_version = in.tool_version();
  return h;
}

void EncodeEvent(const Event& event, proto::TraceEvent* out) {
  out->set_time_ns(event.time_ns);
  out->set_device(event.device);
  std::visit(
      Overloaded{
          [&](const RequestSubmitted& e) {
            auto* m = out->mutable_request_submitted();
            m->set_op(ToProto<proto::RequestOp>(e.op));
            m->set_size(e.size);
          },
          [&](const RequestCompleted& e) {
            auto* m = out->mutable_request_completed();
            m->set_op(ToProto<proto::RequestOp>(e.op));
            m->set_outcome(ToProto<proto::RequestOutcome>(e.outcome));
            m->set_size(e.size);
            m->set_latency_ns(e.latency_ns);
          },
          [&](const DriverSpawned& e) { out->mutable_driver_spawned()->set_pid(e.pid); },
          [&](const DriverReady&) { out->mutable_driver_ready(); },
          [&](const DriverExited& e) {
            auto* m = out->mutable_driver_exited();
            m->set_kind(ToProto<proto::ExitKind>(e.kind));
            m->set_value(e.value);
          },
          [&](const FaultInjected& e) {
            auto* m = out->mutable_fault_injected();
            m->set_site(e.site);
            m->set_action(e.action);
            m->set_seed(e.seed);
          },
          [&](const Detected& e) {
            auto* m = out->mutable_detected();
            m->set_reason(ToProto<proto::DetectionReason>(e.reason));
            m->set_detail(e.detail);
          },
          [&](const PhaseBegin& e) { out->mutable_phase_begin()->set_phase(ToProto<proto::RecoveryPhase>(e.phase)); },
          [&](const PhaseEnd& e) {
            auto* m = out->mutable_phase_end();
            m->set_phase(ToProto<proto::RecoveryPhase>(e.phase));
            m->set_outcome(ToProto<proto::PhaseOutcome>(e.outcome));
          },
          [&](const DeviceFailed&) { out->mutable_device_failed(); },
          [&](const RequestsDisposed& e) {
            auto* m = out->mutable_requests_disposed();
            m->set_disposition(ToProto<proto::Disposition>(e.disposition));
            m->set_count(e.count);
          },
          [&](const LinkChanged& e) {
            auto* m = out->mutable_link_changed();
            m->set_event(ToProto<proto::LinkEvent>(e.event));
            m->set_supplier(e.supplier);
          },
          [&](const WorkloadVerified& e) {
            auto* m = out->mutable_workload_verified();
            m->set_workload(e.workload);
            m->set_outcome(ToProto<proto::VerifyOutcome>(e.outcome));
            m->set_detail(e.detail);
          },
          [&](const RunMarker& e) {
            auto* m = out->mutable_run_marker();
            m->set_kind(ToProto<proto::RunMarkerKind>(e.kind));
            m->set_run_id(e.run_id);
            m->set_seed(e.seed);
          },
      },
      event.body);
}

namespace {

Result<EventBody> DecodeBody(const proto::TraceEvent& in) {
  using P = proto::TraceEvent;
  switch (in.body_case()) {
    case P::kRequestSubmitted: {
      const auto& m = in.request_submitted();
      return RequestSubmitted{UMBRA_TRY(FromProto<RequestOp>(m.op(), 10, "request op")), m.size()};
    }
    case P::kRequestCompleted: {
      const auto& m = in.request_completed();
      return RequestCompleted{UMBRA_TRY(FromProto<RequestOp>(m.op(), 10, "request op")),
                              UMBRA_TRY(FromProto<RequestOutcome>(m.outcome(), 3, "outcome")), m.size(),
                              m.latency_ns()};
    }
    case P::kDriverSpawned: return DriverSpawned{in.driver_spawned().pid()};
    case P::kDriverReady: return DriverReady{};
    case P::kDriverExited: {
      const auto& m = in.driver_exited();
      return DriverExited{UMBRA_TRY(FromProto<ExitKind>(m.kind(), 2, "exit kind")), m.value()};
    }
    case P::kFaultInjected: {
      const auto& m = in.fault_injected();
      return FaultInjected{m.site(), m.action(), m.seed()};
    }
    case P::kDetected: {
      const auto& m = in.detected();
      return Detected{UMBRA_TRY(FromProto<DetectionReason>(m.reason(), 10, "detection reason")), m.detail()};
    }
    case P::kPhaseBegin:
      return PhaseBegin{UMBRA_TRY(FromProto<RecoveryPhase>(in.phase_begin().phase(), kPhaseCount, "phase"))};
    case P::kPhaseEnd: {
      const auto& m = in.phase_end();
      return PhaseEnd{UMBRA_TRY(FromProto<RecoveryPhase>(m.phase(), kPhaseCount, "phase")),
                      UMBRA_TRY(FromProto<PhaseOutcome>(m.outcome(), 2, "phase outcome"))};
    }
    case P::kDeviceFailed: return DeviceFailed{};
    case P::kRequestsDisposed: {
      const auto& m = in.requests_disposed();
      return RequestsDisposed{UMBRA_TRY(FromProto<Disposition>(m.disposition(), kDispositionCount, "disposition")),
                              m.count()};
    }
    case P::kLinkChanged: {
      const auto& m = in.link_changed();
      return LinkChanged{UMBRA_TRY(FromProto<LinkEvent>(m.event(), 3, "link event")), m.supplier()};
    }
    case P::kWorkloadVerified: {
      const auto& m = in.workload_verified();
      return WorkloadVerified{m.workload(), UMBRA_TRY(FromProto<VerifyOutcome>(m.outcome(), 2, "verify outcome")),
                              m.detail()};
    }
    case P::kRunMarker: {
      const auto& m = in.run_marker();
      return RunMarker{UMBRA_TRY(FromProto<RunMarkerKind>(m.kind(), 2, "run marker kind")), m.run_id(), m.seed()};
    }
    case P::BODY_NOT_SET: break;
  }
  return Fail(Errc::kParse, "event has no known body");
}

}  // namespace

Result<Event> DecodeEvent(const proto::TraceEvent& in) {
  EventBody body = UMBRA_TRY(DecodeBody(in));
  return Event{in.time_ns(), in.device(), std::move(body)};
}

}  // namespace umbra::recorder
