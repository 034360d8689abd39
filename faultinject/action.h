// The catalogue of injectable faults: every action a failpoint spec can name,
// which side carries it out, and the value a failpoint hands back to its call
// site.
//
//   const ActionInfo* info = FindAction("panic");   // alias of "abort"
//   info->kind == ActionKind::kAbort;
//   info->side == ActionSide::kExecuted;             // the failpoint kills the process
//
// Each action models a real driver bug; docs/fault-injection.md says which.
//
// Thread safety: everything here is immutable data and pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace umbra::faultinject {

// Every action of the spec language. Aliases (panic, sleep, return …) map to one
// of these; the printer always writes the canonical name.
enum class ActionKind {
  kOff,                 // do nothing (a pass-through term, e.g. "3*off->abort")
  kPrint,               // log that the site was hit, then carry on
  kSegfault,            // dereference a null or wild pointer: SIGSEGV
  kAbort,               // abort(): an assertion or BUG_ON
  kHang,                // spin forever in an infinite loop
  kDeadlock,            // take a non-recursive lock the thread already holds
  kDelay,               // sleep for some milliseconds: a slow device or a long poll
  kExit,                // _exit(code): a driver that gives up
  kLeak,                // allocate and never free, up to a limit
  kCorruptHeap,         // corrupt malloc's metadata, then free: glibc aborts
  kError,               // site-interpreted: return an error code
  kMalformedReply,      // site-interpreted: send a reply that does not decode
  kForgedId,            // site-interpreted: complete a request id that was never issued
  kDuplicateId,         // site-interpreted: complete the same request twice
  kWrongLength,         // site-interpreted: report a wrong payload length
  kWildDma,             // site-interpreted: a descriptor pointing outside the pool
  kBadRegister,         // site-interpreted: program a bad value into a device register
  kDropCompletion,      // site-interpreted: never complete the request
  kSigkill,             // host-side: SIGKILL the driver process
  kSigstop,             // host-side: SIGSTOP it (and SIGCONT after some milliseconds)
  kSigcont,             // host-side: SIGCONT a stopped driver
  kKillDuringRecovery,  // host-side: SIGKILL the new driver while recovery runs
};

// Who carries an action out.
enum class ActionSide {
  kExecuted,  // the failpoint itself, inside UMBRA_FAILPOINT (crash, hang, sleep …)
  kSite,      // the call site, which receives it as an Action and acts on it
  kHost,      // the host's campaign engine (signals sent to the driver process)
};

// The type an action's argument must have.
enum class ArgType {
  kNumber,  // an integer, or a range lo..hi drawn uniformly per trigger
  kWord,    // one of a fixed set of words (or, for kError, an errno name)
  kText,    // free text: a word or a "quoted string"
  kErrno,   // an errno value: a number (or range) or a name such as EIO
};

// One parameter of an action's argument list.
struct ArgSchema {
  std::string_view name;  // for docs and error messages: "ms", "code" …
  ArgType type;
  std::string_view words;          // kWord: the allowed words, '|'-separated, first is default
  int64_t default_number = 0;      // kNumber and kErrno: the value when omitted
  int64_t max_number = INT64_MAX;  // kNumber: the largest value accepted
};

// A catalogue entry: the canonical name and the argument schema.
struct ActionInfo {
  ActionKind kind;
  std::string_view name;     // canonical name
  std::string_view aliases;  // '|'-separated other names, may be empty
  ActionSide side;
  int required_args;  // the first `required_args` of `args` must be given
  int max_args;       // at most this many (≤ 3)
  ArgSchema args[3];
  std::string_view summary;  // one line: the bug it models
};

// Looks up an action by canonical name or alias; nullptr when unknown.
const ActionInfo* FindAction(std::string_view name);

// The catalogue entry of `kind` (never null).
const ActionInfo& GetActionInfo(ActionKind kind);

// The canonical name of `kind`: "segfault", "wild_dma" …
std::string_view ActionName(ActionKind kind);

// All entries, in ActionKind order (for docs, `--help` and tests).
const ActionInfo* ActionCatalogue(int* count);

// The faults a call site carries out itself; what UMBRA_FAILPOINT evaluates to.
enum class SiteFault {
  kNone,            // carry on normally
  kError,           // fail the operation with errno `value`
  kMalformedReply,  // send a reply that does not decode
  kForgedId,        // complete an id that was never issued
  kDuplicateId,     // complete the current request twice
  kWrongLength,     // report the true length plus `value` bytes
  kWildDma,         // put a descriptor `value` bytes past the end of the pool
  kBadRegister,     // write `value` into the register instead of the right one
  kDropCompletion,  // do not complete the request
};

// The value a failpoint evaluates to. Trivially copyable and two words wide,
// so the disarmed fast path returns it in registers.
//
//   switch (Action a = UMBRA_FAILPOINT("nic.tx.submit"); a.fault) {
//     case SiteFault::kNone: break;
//     case SiteFault::kError: return Fail(Errc::kIo, "injected");
//     ...
//   }
struct Action {
  SiteFault fault = SiteFault::kNone;
  int64_t value = 0;  // the action's resolved numeric argument, 0 when none

  explicit operator bool() const { return fault != SiteFault::kNone; }
  bool operator==(const Action&) const = default;
};

// "none", "error", "wild_dma" …
std::string_view SiteFaultName(SiteFault fault);

}  // namespace umbra::faultinject
