#include "faultinject/spec.h"

#include <cctype>
#include <cerrno>
#include <limits>

namespace umbra::faultinject {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }
bool IsWordChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == ':' ||
         c == '/' || c == '-';
}
bool IsNameChar(char c) { return IsWordChar(c) || c == '*' || c == '?'; }

struct ErrnoName {
  std::string_view name;
  int value;
};
constexpr ErrnoName kErrnoNames[] = {
    {"EPERM", EPERM},     {"ENOENT", ENOENT},       {"EINTR", EINTR},   {"EIO", EIO},
    {"ENXIO", ENXIO},     {"EAGAIN", EAGAIN},       {"ENOMEM", ENOMEM}, {"EFAULT", EFAULT},
    {"EBUSY", EBUSY},     {"ENODEV", ENODEV},       {"EINVAL", EINVAL}, {"ENOSPC", ENOSPC},
    {"EPIPE", EPIPE},     {"ETIMEDOUT", ETIMEDOUT}, {"EPROTO", EPROTO}, {"ECANCELED", ECANCELED},
    {"ENOBUFS", ENOBUFS}, {"EOVERFLOW", EOVERFLOW},
};

// A recursive-descent parser over the whole text; `pos_` is a byte offset.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Spec> Parse() {
    Spec spec;
    for (;;) {
      SkipBlanks();
      if (AtEnd()) return spec;
      if (Peek() == ';' || Peek() == '\n') {
        ++pos_;
        continue;
      }
      UMBRA_TRY(ParseStatement(spec));
      SkipBlanks();
      if (AtEnd()) return spec;
      if (Peek() != ';' && Peek() != '\n') {
        return Error(pos_, "expected ';' or a new line after the rule");
      }
    }
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  // Spaces, tabs and comments; never a newline (it separates statements).
  void SkipBlanks() {
    for (;;) {
      char c = Peek();
      if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (!AtEnd() && Peek() != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  std::unexpected<umbra::Error> Error(size_t at, std::string_view what) const {
    size_t newline = at == 0 ? std::string_view::npos : text_.rfind('\n', at - 1);
    size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    size_t line_end = text_.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text_.size();
    size_t line_no = 1;
    for (size_t i = 0; i < line_start; ++i) line_no += text_[i] == '\n';
    size_t column = at - line_start + 1;
    std::string msg = "spec:" + std::to_string(line_no) + ":" + std::to_string(column) + ": ";
    msg += what;
    msg += "\n  ";
    msg += text_.substr(line_start, line_end - line_start);
    msg += "\n  ";
    for (size_t i = line_start; i < at; ++i) msg += text_[i] == '\t' ? '\t' : ' ';
    msg += '^';
    return Fail(Errc::kParse, std::move(msg));
  }

  std::string_view ScanWhile(bool (*pred)(char)) {
    size_t start = pos_;
    while (!AtEnd() && pred(Peek())) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  Result<void> ParseStatement(Spec& spec) {
    size_t start = pos_;
    if (Peek() == '[') return ParseRule(spec);
    std::string_view name = ScanWhile(IsNameChar);
    if (name.empty()) return Error(pos_, "expected a site pattern, a [filter] or seed=N");
    SkipBlanks();
    if (name == "seed") return ParseSeed(spec, start);
    pos_ = start;
    return ParseRule(spec);
  }

  Result<void> ParseSeed(Spec& spec, size_t start) {
    if (!Consume('=')) return Error(pos_, "expected '=' after 'seed'");
    SkipBlanks();
    if (spec.seed) return Error(start, "the seed is given twice");
    if (!IsDigit(Peek())) return Error(pos_, "expected a number (0 to 2^64-1)");
    size_t at = pos_;
    spec.seed = UMBRA_TRY(Unsigned(at, ScanWhile(IsDigit)));
    return {};
  }

  Result<void> ParseRule(Spec& spec) {
    Rule rule;
    if (Peek() == '[') UMBRA_TRY(ParseFilter(rule));
    SkipBlanks();
    size_t pattern_at = pos_;
    rule.pattern = ScanWhile(IsNameChar);
    if (rule.pattern.empty()) return Error(pattern_at, "expected a site pattern");
    SkipBlanks();
    if (!Consume('=')) return Error(pos_, "expected '=' after the site pattern");
    std::optional<size_t> first_host_at, first_driver_at;
    for (;;) {
      SkipBlanks();
      size_t term_at = pos_;
      Term term = UMBRA_TRY(ParseTerm());
      ActionSide side = GetActionInfo(term.action).side;
      if (term.action != ActionKind::kOff) {
        auto& first = side == ActionSide::kHost ? first_host_at : first_driver_at;
        if (!first) first = term_at;
      }
      if (first_host_at && first_driver_at) {
        return Error(std::max(*first_host_at, *first_driver_at),
                     "a rule cannot mix host-side actions (sigkill, sigstop, sigcont, "
                     "kill_during_recovery) with driver-side ones");
      }
      rule.terms.push_back(std::move(term));
      SkipBlanks();
      if (Peek() == '-' && Peek(1) == '>') {
        pos_ += 2;
        continue;
      }
      break;
    }
    rule.host_side = first_host_at.has_value();
    spec.rules.push_back(std::move(rule));
    return {};
  }

  // [device=glob,driver=glob]
  Result<void> ParseFilter(Rule& rule) {
    ++pos_;  // '['
    for (;;) {
      SkipBlanks();
      size_t key_at = pos_;
      std::string_view key = ScanWhile(IsLower);
      std::string* slot = key == "device" ? &rule.device : key == "driver" ? &rule.driver : nullptr;
      if (slot == nullptr) return Error(key_at, "expected 'device' or 'driver' in the filter");
      if (!slot->empty()) return Error(key_at, "this filter key is given twice");
      SkipBlanks();
      if (!Consume('=')) return Error(pos_, "expected '=' after the filter key");
      SkipBlanks();
      size_t value_at = pos_;
      *slot = ScanWhile(IsNameChar);
      if (slot->empty()) return Error(value_at, "expected a device or driver name (globs allowed)");
      SkipBlanks();
      if (Consume(']')) return {};
      if (!Consume(',')) return Error(pos_, "expected ',' or ']' in the filter");
    }
  }

  // [skip+][pct%][count*]action[(args)]
  Result<Term> ParseTerm() {
    Term term;
    int stage = 0;  // 1 after skip, 2 after pct, 3 after count
    while (IsDigit(Peek())) {
      size_t num_at = pos_;
      std::string_view digits = ScanWhile(IsDigit);
      std::string_view fraction;
      if (Peek() == '.' && IsDigit(Peek(1))) {
        ++pos_;
        fraction = ScanWhile(IsDigit);
      }
      char op = Peek();
      if (op == '%') {
        if (stage >= 2) return Error(num_at, "the probability must come before the count");
        term.pct_e4 = UMBRA_TRY(PercentValue(num_at, digits, fraction));
        stage = 2;
      } else if (op == '+' || op == '*') {
        if (!fraction.empty()) return Error(num_at, "expected a whole number");
        uint64_t n = UMBRA_TRY(Unsigned(num_at, digits));
        if (op == '+') {
          if (stage >= 1) return Error(num_at, "the skip count (N+) must come first in a term");
          term.skip = n;
          stage = 1;
        } else {
          if (stage >= 3) return Error(num_at, "the count (N*) is given twice");
          if (n == 0) return Error(num_at, "the count (N*) must be at least 1");
          term.count = n;
          stage = 3;
        }
      } else {
        return Error(pos_, "expected '+' (skip), '%' (probability) or '*' (count) after the number");
      }
      ++pos_;
      SkipBlanks();
    }
    size_t action_at = pos_;
    std::string_view name = ScanWhile([](char c) { return IsLower(c) || IsDigit(c); });
    if (name.empty()) return Error(action_at, "expected an action (segfault, abort, delay, …)");
    const ActionInfo* info = FindAction(name);
    if (info == nullptr) return Error(action_at, "unknown action '" + std::string(name) + "'");
    term.action = info->kind;
    SkipBlanks();
    std::vector<size_t> arg_at;
    if (Consume('(')) UMBRA_TRY(ParseArgs(term.args, arg_at));
    UMBRA_TRY(CheckArgs(*info, term.args, arg_at, action_at));
    return term;
  }

  Result<uint32_t> PercentValue(size_t at, std::string_view digits, std::string_view fraction) {
    if (fraction.size() > 4) return Error(at, "a probability has at most 4 decimals");
    if (digits.size() > 3) return Error(at, "a probability is at most 100%");
    uint64_t value = 0;
    for (char c : digits) value = value * 10 + (c - '0');
    for (size_t i = 0; i < 4; ++i) {
      value = value * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
    }
    if (value > Term::kAlways) return Error(at, "a probability is at most 100%");
    return static_cast<uint32_t>(value);
  }

  Result<uint64_t> Unsigned(size_t at, std::string_view digits) {
    uint64_t value = 0;
    for (char c : digits) {
      uint64_t d = c - '0';
      if (value > (std::numeric_limits<uint64_t>::max() - d) / 10) {
        return Error(at, "the number is too large");
      }
      value = value * 10 + d;
    }
    return value;
  }

  // A decimal or 0x-hex integer, optionally negative.
  Result<int64_t> ParseInteger(bool allow_negative) {
    size_t at = pos_;
    bool negative = allow_negative && Consume('-');
    uint64_t value = 0;
    if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
      pos_ += 2;
      size_t digits_at = pos_;
      while (std::isxdigit(static_cast<unsigned char>(Peek()))) {
        if (value >> 60) return Error(at, "the number is too large");
        char c = Peek();
        value = value * 16 + (IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
        ++pos_;
      }
      if (pos_ == digits_at) return Error(digits_at, "expected hex digits after 0x");
    } else {
      if (!IsDigit(Peek())) return Error(pos_, "expected a number");
      value = UMBRA_TRY(Unsigned(at, ScanWhile(IsDigit)));
    }
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error(at, "the number is too large");
    }
    return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
  }

  Result<void> ParseArgs(std::vector<Arg>& args, std::vector<size_t>& arg_at) {
    SkipBlanks();
    if (Consume(')')) return {};
    for (;;) {
      SkipBlanks();
      arg_at.push_back(pos_);
      args.push_back(UMBRA_TRY(ParseArg()));
      SkipBlanks();
      if (Consume(')')) return {};
      if (!Consume(',')) return Error(pos_, "expected ',' or ')' after the argument");
    }
  }

  Result<Arg> ParseArg() {
    if (Peek() == '"') return ParseQuoted();
    if (IsDigit(Peek()) || (Peek() == '-' && IsDigit(Peek(1)))) {
      int64_t lo = UMBRA_TRY(ParseInteger(/*allow_negative=*/true));
      if (Peek() != '.' || Peek(1) != '.') return Arg::Number(lo, lo);
      pos_ += 2;
      size_t hi_at = pos_;
      int64_t hi = UMBRA_TRY(ParseInteger(/*allow_negative=*/true));
      if (hi < lo) return Error(hi_at, "the range's upper end is below its lower end");
      return Arg::Number(lo, hi);
    }
    std::string_view word = ScanWhile(IsWordChar);
    if (word.empty()) return Error(pos_, "expected an argument: a number, lo..hi, a word or \"text\"");
    return Arg::Text(std::string(word));
  }

  Result<Arg> ParseQuoted() {
    size_t open_at = pos_++;
    std::string text;
    for (;;) {
      if (AtEnd() || Peek() == '\n') return Error(open_at, "unterminated string");
      char c = text_[pos_++];
      if (c == '"') return Arg::Text(std::move(text));
      if (c == '\\' && (Peek() == '"' || Peek() == '\\')) c = text_[pos_++];
      text += c;
    }
  }

  Result<void> CheckArgs(const ActionInfo& info, const std::vector<Arg>& args, const std::vector<size_t>& arg_at,
                         size_t action_at) {
    int n = static_cast<int>(args.size());
    if (n > info.max_args) {
      return Error(arg_at[info.max_args],
                   std::string(info.name) + " takes at most " + std::to_string(info.max_args) + " argument(s)");
    }
    if (n < info.required_args) {
      return Error(n == 0 ? action_at : arg_at.back(), std::string(info.name) + " needs " +
                                                           std::to_string(info.required_args) +
                                                           " argument(s): " + ArgNames(info));
    }
    for (int i = 0; i < n; ++i) UMBRA_TRY(CheckArg(info, info.args[i], args[i], arg_at[i]));
    return {};
  }

  Result<void> CheckArg(const ActionInfo& info, const ArgSchema& schema, const Arg& arg, size_t at) {
    bool number = arg.kind == Arg::Kind::kNumber;
    switch (schema.type) {
      case ArgType::kNumber:
        if (!number) return Error(at, std::string(schema.name) + " must be a number or lo..hi");
        if (arg.lo < 0 && info.kind != ActionKind::kWrongLength) {
          return Error(at, std::string(schema.name) + " cannot be negative");
        }
        if (arg.hi > schema.max_number) {
          return Error(at, std::string(schema.name) + " is at most " + std::to_string(schema.max_number));
        }
        return {};
      case ArgType::kWord: {
        std::string_view words = schema.words;
        for (size_t start = 0; start <= words.size();) {
          size_t bar = words.find('|', start);
          if (bar == std::string_view::npos) bar = words.size();
          if (!number && words.substr(start, bar - start) == arg.text) return {};
          start = bar + 1;
        }
        return Error(at, std::string(schema.name) + " must be one of: " + std::string(words));
      }
      case ArgType::kText: return {};
      case ArgType::kErrno:
        if (number && arg.lo > 0) return {};
        if (!number && ErrnoFromName(arg.text) != 0) return {};
        return Error(at, "expected a positive errno value or a name such as EIO");
    }
    return {};
  }

  static std::string ArgNames(const ActionInfo& info) {
    std::string names;
    for (int i = 0; i < info.max_args; ++i) {
      if (i > 0) names += ", ";
      names += info.args[i].name;
    }
    return names;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

void AppendArg(std::string& out, const Arg& arg) {
  if (arg.kind == Arg::Kind::kNumber) {
    out += std::to_string(arg.lo);
    if (arg.hi != arg.lo) out += ".." + std::to_string(arg.hi);
    return;
  }
  // A bare word only when it reads back as the same text (not as a number).
  bool bare = !arg.text.empty() && !IsDigit(arg.text[0]) && arg.text[0] != '-';
  for (char c : arg.text) bare = bare && IsWordChar(c);
  if (bare) {
    out += arg.text;
    return;
  }
  out += '"';
  for (char c : arg.text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

Result<Spec> ParseSpec(std::string_view text) { return Parser(text).Parse(); }

std::string FormatTerm(const Term& term) {
  std::string out;
  if (term.skip > 0) out += std::to_string(term.skip) + "+";
  if (term.pct_e4 != Term::kAlways) {
    out += std::to_string(term.pct_e4 / 10000);
    if (uint32_t frac = term.pct_e4 % 10000; frac != 0) {
      std::string digits = std::to_string(frac + 10000).substr(1);
      while (digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    out += "%";
  }
  if (term.count > 0) out += std::to_string(term.count) + "*";
  out += ActionName(term.action);
  if (term.args.empty()) return out;
  out += '(';
  for (size_t i = 0; i < term.args.size(); ++i) {
    if (i > 0) out += ',';
    AppendArg(out, term.args[i]);
  }
  out += ')';
  return out;
}

std::string FormatRule(const Rule& rule) {
  std::string out;
  if (!rule.device.empty() || !rule.driver.empty()) {
    out += '[';
    if (!rule.device.empty()) out += "device=" + rule.device;
    if (!rule.device.empty() && !rule.driver.empty()) out += ',';
    if (!rule.driver.empty()) out += "driver=" + rule.driver;
    out += ']';
  }
  out += rule.pattern;
  out += '=';
  for (size_t i = 0; i < rule.terms.size(); ++i) {
    if (i > 0) out += "->";
    out += FormatTerm(rule.terms[i]);
  }
  return out;
}

std::string FormatSpec(const Spec& spec) {
  std::string out;
  if (spec.seed) out += "seed=" + std::to_string(*spec.seed);
  for (const Rule& rule : spec.rules) {
    if (!out.empty()) out += ';';
    out += FormatRule(rule);
  }
  return out;
}

bool GlobMatch(std::string_view pattern, std::string_view name) {
  size_t p = 0, n = 0;
  size_t star = std::string_view::npos, star_n = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_n = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int ErrnoFromName(std::string_view name) {
  for (const ErrnoName& e : kErrnoNames) {
    if (e.name == name) return e.value;
  }
  return 0;
}

}  // namespace umbra::faultinject
