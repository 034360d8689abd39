#include "faultinject/action.h"

#include <iterator>

namespace umbra::faultinject {
namespace {

constexpr ArgSchema kNoArg{};

// Indexed by ActionKind: kCatalogue[int(kind)].kind == kind (checked by a test).
constexpr ActionInfo kCatalogue[] = {
    {ActionKind::kOff, "off", "", ActionSide::kExecuted, 0, 0, {}, "no fault (pass through)"},
    {ActionKind::kPrint,
     "print",
     "log",
     ActionSide::kExecuted,
     0,
     1,
     {{"message", ArgType::kText, "", 0}, kNoArg, kNoArg},
     "log that the site was reached"},
    {ActionKind::kSegfault,
     "segfault",
     "crash",
     ActionSide::kExecuted,
     0,
     1,
     {{"pointer", ArgType::kWord, "null|wild", 0}, kNoArg, kNoArg},
     "dereference a null or wild (poisoned) pointer"},
    {ActionKind::kAbort, "abort", "panic|bug", ActionSide::kExecuted, 0, 0, {}, "a failed assertion or BUG_ON()"},
    {ActionKind::kHang,
     "hang",
     "spin",
     ActionSide::kExecuted,
     0,
     0,
     {},
     "an infinite loop (a poll loop whose exit condition never comes)"},
    {ActionKind::kDeadlock,
     "deadlock",
     "",
     ActionSide::kExecuted,
     0,
     0,
     {},
     "a non-recursive lock taken twice by the same thread"},
    {ActionKind::kDelay,
     "delay",
     "sleep|slow",
     ActionSide::kExecuted,
     1,
     1,
     {{"ms", ArgType::kNumber, "", 0}, kNoArg, kNoArg},
     "a slow handler: sleep for ms milliseconds"},
    {ActionKind::kExit,
     "exit",
     "",
     ActionSide::kExecuted,
     0,
     1,
     {{"code", ArgType::kNumber, "", 1, 255}, kNoArg, kNoArg},
     "the driver exits with code"},
    {ActionKind::kLeak,
     "leak",
     "",
     ActionSide::kExecuted,
     2,
     3,
     {{"bytes", ArgType::kNumber, "", 0, int64_t{1} << 40},
      {"limit_mib", ArgType::kNumber, "", 0, int64_t{1} << 20},
      {"at_limit", ArgType::kWord, "stop|abort", 0}},
     "leak bytes per trigger until limit_mib MiB, then stop or abort (allocation failure)"},
    {ActionKind::kCorruptHeap,
     "corrupt_heap",
     "",
     ActionSide::kExecuted,
     0,
     1,
     {{"how", ArgType::kWord, "double_free|header", 0}, kNoArg, kNoArg},
     "a double free, or a chunk header clobbered by a stray write, then free()"},
    {ActionKind::kError,
     "error",
     "return",
     ActionSide::kSite,
     0,
     1,
     {{"errno", ArgType::kErrno, "", 5}, kNoArg, kNoArg},
     "return an error (default EIO)"},
    {ActionKind::kMalformedReply, "malformed_reply", "", ActionSide::kSite, 0, 0, {}, "a reply that does not decode"},
    {ActionKind::kForgedId,
     "forged_id",
     "unknown_id",
     ActionSide::kSite,
     0,
     0,
     {},
     "a completion for a request id that was never issued"},
    {ActionKind::kDuplicateId, "duplicate_id", "", ActionSide::kSite, 0, 0, {}, "the same request completed twice"},
    {ActionKind::kWrongLength,
     "wrong_length",
     "",
     ActionSide::kSite,
     0,
     1,
     {{"delta", ArgType::kNumber, "", 1}, kNoArg, kNoArg},
     "a completion whose length is off by delta bytes"},
    {ActionKind::kWildDma,
     "wild_dma",
     "",
     ActionSide::kSite,
     0,
     1,
     {{"offset", ArgType::kNumber, "", 4096}, kNoArg, kNoArg},
     "a descriptor pointing offset bytes past the end of the DMA pool"},
    {ActionKind::kBadRegister,
     "bad_register",
     "",
     ActionSide::kSite,
     0,
     1,
     {{"value", ArgType::kNumber, "", 0xdeadbeef}, kNoArg, kNoArg},
     "wrong device programming: value written to a register"},
    {ActionKind::kDropCompletion,
     "drop_completion",
     "",
     ActionSide::kSite,
     0,
     0,
     {},
     "a request that is never completed"},
    {ActionKind::kSigkill,
     "sigkill",
     "",
     ActionSide::kHost,
     0,
     0,
     {},
     "the driver process is killed (OOM killer, operator)"},
    {ActionKind::kSigstop,
     "sigstop",
     "",
     ActionSide::kHost,
     0,
     1,
     {{"ms", ArgType::kNumber, "", 0}, kNoArg, kNoArg},
     "the driver process is stopped (SIGCONT after ms; 0: until a sigcont)"},
    {ActionKind::kSigcont, "sigcont", "", ActionSide::kHost, 0, 0, {}, "a stopped driver process is continued"},
    {ActionKind::kKillDuringRecovery,
     "kill_during_recovery",
     "double_fault",
     ActionSide::kHost,
     0,
     0,
     {},
     "the restarted driver is killed while recovery is still running"},
};

static_assert(std::size(kCatalogue) == static_cast<size_t>(ActionKind::kKillDuringRecovery) + 1);

bool InList(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    size_t bar = list.find('|');
    if (list.substr(0, bar) == name) return true;
    if (bar == std::string_view::npos) return false;
    list.remove_prefix(bar + 1);
  }
  return false;
}

}  // namespace

const ActionInfo* FindAction(std::string_view name) {
  for (const ActionInfo& info : kCatalogue) {
    if (info.name == name || InList(info.aliases, name)) return &info;
  }
  return nullptr;
}

const ActionInfo& GetActionInfo(ActionKind kind) { return kCatalogue[static_cast<int>(kind)]; }

std::string_view ActionName(ActionKind kind) { return GetActionInfo(kind).name; }

const ActionInfo* ActionCatalogue(int* count) {
  *count = static_cast<int>(std::size(kCatalogue));
  return kCatalogue;
}

std::string_view SiteFaultName(SiteFault fault) {
  switch (fault) {
    case SiteFault::kNone: return "none";
    case SiteFault::kError: return "error";
    case SiteFault::kMalformedReply: return "malformed_reply";
    case SiteFault::kForgedId: return "forged_id";
    case SiteFault::kDuplicateId: return "duplicate_id";
    case SiteFault::kWrongLength: return "wrong_length";
    case SiteFault::kWildDma: return "wild_dma";
    case SiteFault::kBadRegister: return "bad_register";
    case SiteFault::kDropCompletion: return "drop_completion";
  }
  return "unknown";
}

}  // namespace umbra::faultinject
