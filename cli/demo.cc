// `umbra demo`: the default machine under fault injection, end to end.
//
// Builds the default machine (machine/default_machine.cc: a NIC, a
// disk, a serial port and a sound card, with a managed and an optional link),
// shows the refused cycle, runs one application per device — file transfers
// over the NIC, the verifying random read/write/flush workload on the disk,
// byte streams on the serial port, audio playback — while it kills each
// device's driver in the ways drivers die (SIGSEGV, abort, SIGKILL, a hang),
// then shows the links at work: the disk's driver dies under the busy NIC (the
// NIC holds, then resumes), and the NIC crashes until it fails for good (the
// serial port runs degraded). Every injection is recorded in the trace; once
// the trace is closed, its analysis (as `umbra report` makes it) gives the
// per-fault table, the JSON summary and the HTML report. Prints the device
// tree, each application's verification and one row per fault, and says where
// the trace, the HTML report and the JSON summary are.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/demo_apps.h"
#include "recorder/analysis.h"
#include "recorder/export.h"
#include "recorder/recorder.h"
#include "recorder/trace_file.h"
#include "base/clock.h"
#include "runtime/hw/nic/wire.h"
#include "runtime/hw/uart/uart_device.h"
#include "machine/default_machine.h"
#include "shadows/net/class.h"
#include "machine/machine.h"
#include "shadows/block/block_shadow.h"
#include "shadows/block/workloads/verify_workload.h"
#include "runtime/hw/sound/wav.h"
#include "runtime/hw/sound/wav_compare.h"
#include "shadows/net/net_shadow.h"
#include "shadows/sound/sound_shadow.h"
#include "shadows/sound/workloads/sound_apps.h"
#include "shadows/net/workloads/file_transfer.h"
#include "shadows/uart/uart_shadow.h"
#include "umbra/machine.pb.h"

namespace umbra::cli {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kPeerMac = 0x020000000099ull;

// A fault the demo injects. Its figures (detection, recovery, gap) are not
// kept here: they come from the trace's analysis, like `umbra report`'s.
struct Fault {
  std::string device;
  std::string fault;
  std::string site;        // "demo", "demo: supplier of nic0", "demo: crash loop"
  bool recovered = false;  // the shadow's own record says so
};

struct AppResult {
  std::string device;
  std::string application;
  bool ok = false;
  std::string detail;
};

const char* FaultName(int sig) {
  switch (sig) {
    case SIGSEGV: return "segfault";
    case SIGABRT: return "abort";
    case SIGKILL: return "sigkill";
    case SIGSTOP: return "hang";
    default: return "signal";
  }
}

// Records the injection in the trace (so that analysis knows when the fault
// happened: detection latency and the gap start there), then sends `sig` to
// `device`'s driver.
void Inject(machine::Machine& m, const Fault& f, int sig, uint64_t index) {
  runtime::DriverHost* host = m.host(f.device);
  if (host == nullptr) return;
  host->recorder().FaultInjected(host->recorder_device(), f.site, f.fault, index);
  host->Kill(sig);
}

// Kills `device`'s driver and waits until its shadow noticed and recovered
// (or gave up).
Fault InjectAndWait(machine::Machine& m, const std::string& device, int sig, const std::string& site, uint64_t index) {
  Fault f{.device = device, .fault = FaultName(sig), .site = site};
  shadows::Shadow* shadow = m.shadow(device);
  if (shadow == nullptr || m.host(device) == nullptr) return f;
  const size_t before = shadow->recoveries().size();
  Inject(m, f, sig, index);
  const int64_t deadline = MonotonicNanos() + 10 * kSec;
  while (MonotonicNanos() < deadline) {
    auto records = shadow->recoveries();
    if (records.size() > before && (records.back().succeeded || !records.back().failure.empty())) break;
    usleep(500);
  }
  auto records = shadow->recoveries();
  f.recovered = records.size() > before && records.back().succeeded;
  return f;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out;
}

class Demo {
 public:
  Demo(bool json, std::string out_dir) : json_(json), out_dir_(std::move(out_dir)) {}

  int Run() {
    spdlog::set_level(spdlog::level::warn);
    std::filesystem::create_directories(out_dir_);
    // The disk verifier starts from a blank disk: an image left by an earlier
    // run holds blocks this run never wrote.
    std::error_code ignored;
    std::filesystem::remove(out_dir_ + "/disk0.img", ignored);
    trace_path_ = out_dir_ + "/umbra-demo.trace";
    html_path_ = out_dir_ + "/umbra-demo.html";
    json_path_ = out_dir_ + "/umbra-demo.json";
    auto rec = recorder::Recorder::Create({.path = trace_path_});
    if (!rec) return Error("cannot open the trace: " + rec.error().ToString(), kExitSoftware);
    recorder_ = std::move(*rec);

    auto description = machine::LoadDefaultMachine();
    if (!description) return Error(description.error().ToString(), kExitSoftware);
    machine::MachineOptions options;
    options.recorder = recorder_.get();
    options.state_dir = out_dir_;  // the disk image and the speaker's WAV land here
    options.on_notice = [this](const machine::Notice& n) {
      std::lock_guard lock(mu_);
      log_.push_back(std::string(machine::NoticeKindName(n.kind)) + " " + n.device + ": " + n.detail);
    };
    auto m = machine::Machine::Create(**description, std::move(options));
    if (!m) return Error(m.error().ToString(), kExitSoftware);
    machine_ = std::move(*m);
    if (auto r = machine_->Start(); !r) return Error(r.error().ToString(), kExitSoftware);
    if (auto r = machine_->WaitSettled(30 * kSec); !r) return Error(r.error().ToString(), kExitSoftware);
    tree_before_ = machine_->model().RenderText();
    machine_name_ = machine_->name();
    Say("Umbra demo: machine '" + machine_name_ + "'\n\n" + tree_before_);

    // A link that would close a cycle is refused, naming the cycle.
    auto cycle = machine_->model().AddLink("disk0", "ttyS0", model::LinkFlags{});
    cycle_message_ = cycle ? "(the cycle was not refused!)" : cycle.error().message;
    Say("refused: " + cycle_message_ + "\n");

    RunApplicationsUnderFaults();
    tree_after_ = machine_->model().RenderText();
    machine_->Stop();
    machine_.reset();  // hardware gone: the speaker's WAV is complete
    VerifySound();
    (void)recorder_->Close();
    WriteReport();
    return Print();
  }

 private:
  void Say(const std::string& s) {
    if (!json_) std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }
  int Error(const std::string& what, int code) {
    std::fprintf(stderr, "umbra demo: %s\n", what.c_str());
    return code;
  }

  // One thread per application; the main thread injects the faults. The
  // applications run until every fault of the run is over (the disk's
  // supplier crash too), so that every fault has requests before and after
  // it: its gap is measured, not missing.
  void RunApplicationsUnderFaults() {
    Say("running file transfers on nic0, the disk verifier on disk0, byte streams on ttyS0 and");
    Say("audio playback on snd0,");
    Say("killing each driver four times (segfault, abort, SIGKILL, hang) while they run ...\n");
    std::vector<std::thread> apps;
    apps.emplace_back([this] { NetApp(); });
    apps.emplace_back([this] { DiskApp(); });
    apps.emplace_back([this] { UartApp(); });
    apps.emplace_back([this] { SoundApp(); });
    usleep(100'000);
    const int signals[] = {SIGSEGV, SIGABRT, SIGKILL, SIGSTOP};
    const char* devices[] = {"nic0", "disk0", "ttyS0", "snd0"};
    for (int sig : signals) {
      for (const char* dev : devices) {
        // Between two files nic0 is idle while the receiver lingers: hit it
        // while a file is on the way, so that its gap is the crash's.
        for (int i = 0; i < 1000 && std::string(dev) == "nic0" && !NetBusy(); ++i) usleep(1000);
        AddFault(InjectAndWait(*machine_, dev, sig, "demo", NextIndex()));
      }
      usleep(150'000);  // the standby of each driver is back before its next kill (kStandbyDelayNs)
    }
    ShowSupplierCrash();
    stop_apps_ = true;
    // nic0's application ends its last transfer and keeps sending small
    // frames through the crash loop (NetApp).
    const int64_t deadline = MonotonicNanos() + 60 * kSec;
    while (!net_transfers_done_ && MonotonicNanos() < deadline) usleep(1000);
    ShowCrashLoop();
    crash_loop_done_ = true;
    for (auto& t : apps) t.join();
  }

  uint64_t NextIndex() { return ++injections_; }
  // A file has been on its way through nic0 for 20 ms: frames are flowing.
  bool NetBusy() const {
    const int64_t started = net_file_started_ns_;
    return started != 0 && MonotonicNanos() - started > 20 * kMs;
  }
  void AddFault(const Fault& f) {
    std::lock_guard lock(mu_);
    faults_.push_back(f);
  }

  // Transfers 4 MiB files to the wire's peer, one after another, until the
  // faults are over; every file must arrive whole.
  void NetApp() {
    AppResult r{.device = "nic0", .application = "file transfers (4 MiB each, go-back-N, checksummed)"};
    auto* nic = dynamic_cast<net::NetShadow*>(machine_->shadow("nic0"));
    auto* hwnic = dynamic_cast<machine::NicHardware*>(machine_->hardware("nic0"));
    if (nic == nullptr || hwnic == nullptr || hwnic->peer() == nullptr) {
      r.detail = "nic0 has no net shadow or wire";
      return Record(r);
    }
    std::vector<std::byte> data(4 << 20);
    std::mt19937_64 rng(7);
    for (auto& b : data) b = std::byte(rng());
    if (auto o = nic->Open(10 * kSec); !o) {
      r.detail = "open: " + o.error().ToString();
      return Record(r);
    }
    if (auto u = nic->Up(); !u) {
      r.detail = "up: " + u.error().ToString();
      return Record(r);
    }
    net::workloads::InterfacePort nic_side(*nic);
    net::workloads::PeerPort peer_side(*hwnic->peer(), kPeerMac);
    const uint64_t want = net::workloads::Fnv1a(data);
    uint64_t files = 0, go_backs = 0;
    do {
      Result<net::workloads::FileTransferStats> got = Fail(Errc::kInternal, "no receiver");
      std::thread receiver([&] { got = net::workloads::ReceiveFile(peer_side, {}); });
      net_file_started_ns_ = MonotonicNanos();
      auto sent = net::workloads::SendFile(nic_side, kPeerMac, data, {});
      net_file_started_ns_ = 0;
      receiver.join();
      if (!sent) {
        r.detail = "sender saw an error: " + sent.error().ToString();
      } else if (!got) {
        r.detail = "receiver saw an error: " + got.error().ToString();
      } else if (got->checksum != want || got->bytes != data.size()) {
        r.detail = "checksum mismatch";
      }
      if (!r.detail.empty()) {
        net_transfers_done_ = true;
        return Record(r);
      }
      ++files;
      go_backs += sent->retransmits;
    } while (!stop_apps_);
    net_transfers_done_ = true;
    demo::SendUntilFailed(*nic, kPeerMac, crash_loop_done_);
    r.ok = true;
    r.detail = std::to_string(files) + " files, " + std::to_string(files * data.size()) +
               " bytes, every checksum matches, " + std::to_string(go_backs) + " go-backs, no error seen";
    Record(r);
  }

  // Random reads, writes and flushes against a model of the disk until the
  // faults are over (at least 6000), then every block read back.
  void DiskApp() {
    AppResult r{.device = "disk0", .application = "verifying random read/write/flush"};
    auto* disk = dynamic_cast<shadows::block::BlockShadow*>(machine_->shadow("disk0"));
    if (disk == nullptr) {
      r.detail = "disk0 has no block shadow";
      return Record(r);
    }
    shadows::block::VerifyWorkload w(*disk, {.blocks = 1024, .queue_depth = 8, .seed = 3});
    shadows::block::VerifyReport run;
    for (uint64_t ops = 0; (ops < 6000 || !stop_apps_) && run.clean(); ops += 500) run = w.Run(500);
    auto check = w.Verify();
    r.ok = run.clean() && check.clean();
    r.detail = run.ToString() + "; read-back: " + check.ToString();
    Record(r);
  }

  // 16 KiB byte streams through the port, each read back from the line and
  // compared, until the faults are over.
  void UartApp() {
    AppResult r{.device = "ttyS0", .application = "byte streams (16 KiB each, in order, no loss)"};
    auto* port = dynamic_cast<shadows::uart::UartShadow*>(machine_->shadow("ttyS0"));
    auto* hw = machine_->hardware("ttyS0");
    auto* dev = hw ? dynamic_cast<hw::uart::UartDevice*>(hw->device()) : nullptr;
    if (port == nullptr || dev == nullptr) {
      r.detail = "ttyS0 has no uart shadow";
      return Record(r);
    }
    (void)port->Open();
    std::vector<std::byte> data(16 << 10);
    for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte((i * 131 + 7) & 0xff);
    uint64_t streams = 0;
    do {
      if (auto e = demo::StreamOnce(*port, *dev, data); !e.empty()) {
        r.detail = e;
        return Record(r);
      }
      ++streams;
    } while (!stop_apps_);
    r.ok = true;
    r.detail = std::to_string(streams) + " streams, " + std::to_string(streams * data.size()) +
               " bytes arrived, in order, none lost or repeated";
    Record(r);
  }

  // Plays a generated multi-tone signal; after the machine stops, the
  // speaker's WAV is compared with it (VerifySound).
  void SoundApp() {
    AppResult r{.device = "snd0", .application = "audio playback (3 s, 48 kHz stereo)"};
    auto* pcm = dynamic_cast<sound::SoundShadow*>(machine_->shadow("snd0"));
    if (pcm == nullptr) {
      r.detail = "snd0 has no sound shadow";
      return Record(r);
    }
    if (auto o = pcm->Open(10 * kSec); !o) {
      r.detail = o.error().ToString();
      return Record(r);
    }
    sound::PcmParams params;
    track_ = hw::sound::GenerateTestSignal({params.rate, params.channels, params.format}, params.rate * 3);
    auto played = sound::workloads::PlayTrack(*pcm, track_, params);
    if (!played) {
      r.detail = "the player saw an error: " + played.error().ToString();
      return Record(r);
    }
    r.ok = true;  // until the speaker's recording says otherwise
    r.detail = std::to_string(played->frames) + " frames written, " + std::to_string(played->dropped_frames) +
               " dropped while the driver was down, no error seen";
    Record(r);
  }

  // The speaker recorded exactly what the DAC played: it must equal the track
  // everywhere except inside the recovery gaps.
  void VerifySound() {
    std::lock_guard lock(mu_);
    for (auto& a : apps_) {
      if (a.device != "snd0" || !a.ok) continue;
      auto out = hw::sound::ReadWav(out_dir_ + "/snd0-speaker.wav");
      if (!out) {
        a.ok = false;
        a.detail += "; speaker: " + out.error().ToString();
        return;
      }
      auto cmp = hw::sound::CompareAudio(track_, *out);
      if (!cmp) {
        a.ok = false;
        a.detail += "; compare: " + cmp.error().ToString();
        return;
      }
      // Silence before the stream started counts as a gap too; what matters
      // is that nothing was shifted, repeated or corrupted.
      a.ok = cmp->clean();
      a.detail += "; speaker: " + std::to_string(cmp->gaps.size()) + " gaps, " + std::to_string(cmp->gap_frames()) +
                  " frames of silence, " + (cmp->clean() ? "no shifted, repeated or corrupted sample" : "MISMATCHES");
    }
  }

  void Record(const AppResult& r) {
    std::lock_guard lock(mu_);
    apps_.push_back(r);
  }

  // The links at work, part one: a supplier's crash makes its consumer hold
  // (the applications are still running, so nic0 is busy).
  void ShowSupplierCrash() {
    Say("device links: disk0's driver dies while nic0 (its consumer) is busy ...");
    auto* nic = machine_->shadow("nic0");
    std::atomic<bool> saw_hold{false}, stop{false};
    std::thread watch([&] {
      while (!stop) {
        if (nic && nic->state() == shadows::ShadowState::kHolding) saw_hold = true;
        usleep(100);
      }
    });
    AddFault(InjectAndWait(*machine_, "disk0", SIGKILL, "demo: supplier of nic0", NextIndex()));
    usleep(20'000);
    stop = true;
    watch.join();
    hold_ = saw_hold.load();
    resumed_ = nic && nic->state() == shadows::ShadowState::kPassive;
    Say(std::string("  nic0 ") + (hold_ ? "held while disk0 recovered" : "did not hold") + ", then " +
        (resumed_ ? "resumed" : "did NOT resume") + "\n");
  }

  // Part two: a supplier that fails for good leaves an optional consumer
  // degraded. nic0's application keeps small frames going (NetApp), so that
  // each crash of the loop has a gap until the last one, after which nothing
  // completes (the device failed).
  void ShowCrashLoop() {
    Say("nic0's driver now crashes until its restart budget is spent ...");
    auto* nic = machine_->shadow("nic0");
    // Each kill hits a driver that has been serving for 20 ms (a kill during
    // the restart backoff would find none), so every one is a fault of its
    // own, with frames through before and after it.
    for (int64_t end = MonotonicNanos() + 30 * kSec;
         nic && nic->state() != shadows::ShadowState::kFailed && MonotonicNanos() < end;) {
      if (nic->state() != shadows::ShadowState::kPassive) {
        usleep(1000);
        continue;
      }
      usleep(20'000);
      Fault f{.device = "nic0", .fault = FaultName(SIGKILL), .site = "demo: crash loop"};
      Inject(*machine_, f, SIGKILL, NextIndex());
      AddFault(f);
      for (int i = 0; i < 1000 && nic->state() == shadows::ShadowState::kPassive; ++i) usleep(1000);
    }
    const int64_t deadline = MonotonicNanos() + 5 * kSec;
    auto* tty = machine_->shadow("ttyS0");
    while (MonotonicNanos() < deadline && !(tty && tty->degraded())) usleep(1000);
    failed_ = nic && nic->state() == shadows::ShadowState::kFailed;
    degraded_ = tty && tty->degraded() && tty->state() == shadows::ShadowState::kPassive;
    Say(std::string("  nic0 ") + (failed_ ? "failed for good" : "did NOT fail") + "; ttyS0 " +
        (degraded_ ? "runs degraded" : "is NOT degraded") + "\n");
  }

  // The demo's figures come from the trace, analysed as `umbra report` does:
  // the table, the JSON, `umbra report` and the HTML report show the same
  // numbers.
  void WriteReport() {
    auto trace = recorder::ReadTrace(trace_path_);
    if (!trace) {
      report_error_ = trace.error().ToString();
      return;
    }
    auto report = recorder::Analyze(*trace);
    if (!report) {
      report_error_ = report.error().ToString();
      return;
    }
    std::ofstream html(html_path_);
    if (auto r = recorder::WriteHtmlReport(*trace, *report, html); !r) report_error_ = r.error().ToString();
    report_ = std::move(*report);
  }

  // The crash loop is meant to end in a failed device; every other fault
  // must recover.
  bool AllGood() const {
    bool ok = hold_ && resumed_ && failed_ && degraded_ && !apps_.empty() && report_.has_value();
    for (const auto& f : faults_) ok = ok && (f.recovered || f.site == "demo: crash loop");
    for (const auto& a : apps_) ok = ok && a.ok;
    return ok;
  }

  // The JSON summary is always written beside the trace (umbra-demo.json);
  // --json prints it instead of the tables.
  int Print() {
    const std::string json = JsonSummary();
    std::ofstream(json_path_) << json << "\n";
    if (json_) {
      std::printf("%s\n", json.c_str());
      return AllGood() ? kExitOk : kExitNotRecovered;
    }
    if (report_) std::printf("%s", recorder::RenderFaultSummary(*report_).c_str());
    std::printf("\napplications:\n");
    for (const auto& a : apps_) {
      std::printf("  %-6s %-52s %s  %s\n", a.device.c_str(), a.application.c_str(), a.ok ? "verified" : "FAILED",
                  a.detail.c_str());
    }
    std::printf("\n%s\n", tree_after_.c_str());
    std::printf("trace:  %s\njson:   %s\n", trace_path_.c_str(), json_path_.c_str());
    if (report_error_.empty()) {
      std::printf("report: %s  (umbra report %s; umbra trace export %s --format chrome -o t.json)\n",
                  html_path_.c_str(), trace_path_.c_str(), trace_path_.c_str());
    } else {
      std::printf("report: not written: %s\n", report_error_.c_str());
    }
    std::printf("\n%s\n", AllGood() ? "every fault recovered and every application verified"
                                    : "SOMETHING DID NOT RECOVER OR VERIFY");
    return AllGood() ? kExitOk : kExitNotRecovered;
  }

  // "faults" is the report's own list (recorder::RenderFaultsJson), as in
  // `umbra report --json`.
  std::string JsonSummary() {
    std::string out = "{\"machine\":\"" + JsonEscape(machine_name_) + "\",\"cycle_refused\":\"" +
                      JsonEscape(cycle_message_) + "\",\"faults\":";
    out += report_ ? recorder::RenderFaultsJson(*report_) : "[]";
    out += ",\"applications\":[";
    for (size_t i = 0; i < apps_.size(); ++i) {
      const auto& a = apps_[i];
      out += std::string(i ? "," : "") + "{\"device\":\"" + a.device + "\",\"application\":\"" +
             JsonEscape(a.application) + "\",\"verified\":" + (a.ok ? "true" : "false") + ",\"detail\":\"" +
             JsonEscape(a.detail) + "\"}";
    }
    out += std::string("],\"links\":{\"consumer_held\":") + (hold_ ? "true" : "false") +
           ",\"consumer_resumed\":" + (resumed_ ? "true" : "false") +
           ",\"supplier_failed\":" + (failed_ ? "true" : "false") +
           ",\"optional_consumer_degraded\":" + (degraded_ ? "true" : "false") + "},\"trace\":\"" +
           JsonEscape(trace_path_) + "\",\"report\":\"" + JsonEscape(report_error_.empty() ? html_path_ : "") +
           "\",\"ok\":" + (AllGood() ? "true" : "false") + "}";
    return out;
  }

  bool json_;
  std::string out_dir_, trace_path_, html_path_, json_path_, report_error_;
  std::unique_ptr<recorder::Recorder> recorder_;  // closed before the machine goes
  std::unique_ptr<machine::Machine> machine_;
  std::string tree_before_, tree_after_, cycle_message_, machine_name_;
  hw::sound::WavFile track_;
  std::mutex mu_;
  std::vector<Fault> faults_;
  std::vector<AppResult> apps_;
  std::vector<std::string> log_;
  bool hold_ = false, resumed_ = false, failed_ = false, degraded_ = false;
  std::atomic<bool> stop_apps_{false};           // the faults are over: applications finish their round
  std::atomic<int64_t> net_file_started_ns_{0};  // when the file now on its way through nic0 started (0: none)
  std::atomic<bool> net_transfers_done_{false};  // nic0's last file is through: the crash loop may start
  std::atomic<bool> crash_loop_done_{false};     // nic0's application stops sending
  uint64_t injections_ = 0;                      // FaultInjected seeds: 1, 2, ... in injection order
  std::optional<recorder::Report> report_;       // the trace's analysis, once written
};

}  // namespace

int RunEchoDemo();

void AddDemoCommand(CLI::App& app, int& exit_code) {
  auto* demo = app.add_subcommand("demo", "Run the default machine under fault injection and show what recovered");
  static bool json = false, minimal = false;
  static std::string out_dir = "umbra-demo-out";
  demo->add_flag("--json", json, "Print the results as one JSON object");
  demo->add_option("--out", out_dir, "Where to write the trace and the HTML report")->capture_default_str();
  demo->add_flag("--minimal", minimal, "Only crash an echo driver in every way (no machine)");
  demo->footer("Examples:\n  umbra demo\n  umbra demo --json --out /tmp/demo");
  demo->callback([&exit_code] { exit_code = minimal ? RunEchoDemo() : Demo(json, out_dir).Run(); });
}

}  // namespace umbra::cli
