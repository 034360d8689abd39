#include "runtime/model/machine.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "umbra/machine.pb.h"

namespace umbra::model {

namespace {

namespace gpb = google::protobuf;

struct Location {
  int line = -1;    // 1-based; -1 unknown
  int column = -1;  // 1-based
};

using Step = FieldStep;

std::string PathString(const FieldPath& path) { return FieldPathString(path); }

// --- JSON positions --------------------------------------------------------------
//
// A small scanner over the JSON text that records where each value starts, by
// field path ("devices[2].bus"), and where the text stops being JSON. The
// protobuf JSON parser reports neither line nor column.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : text_(text) {}

  // Scans the document; false with error() set on a syntax error.
  bool Scan() {
    SkipSpace();
    if (!Value("")) return false;
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the top-level object");
    return true;
  }
  const std::string& error() const { return error_; }
  Location error_location() const { return LocationAt(error_pos_); }
  Location Find(const std::string& path) const {
    auto it = positions_.find(path);
    return it == positions_.end() ? Location{} : LocationAt(it->second);
  }

 private:
  Location LocationAt(size_t pos) const {
    Location loc{1, 1};
    for (size_t i = 0; i < pos && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++loc.line;
        loc.column = 1;
      } else {
        ++loc.column;
      }
    }
    return loc;
  }
  bool Error(std::string message) {
    if (error_.empty()) {
      error_ = std::move(message);
      error_pos_ = pos_;
    }
    return false;
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Value(const std::string& path) {
    SkipSpace();
    if (pos_ >= text_.size()) return Error("unexpected end of file");
    if (!path.empty()) positions_.emplace(path, pos_);
    char c = text_[pos_];
    if (c == '{') return Object(path);
    if (c == '[') return Array(path);
    if (c == '"') return String(nullptr);
    return Literal();
  }
  bool Object(const std::string& path) {
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') return ++pos_, true;
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a field name in quotes");
      std::string key;
      size_t key_pos = pos_;
      if (!String(&key)) return false;
      // A member is located at its key (so an unknown field points at its name).
      positions_.emplace(path.empty() ? key : path + "." + key, key_pos);
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':' after \"" + key + "\"");
      ++pos_;
      if (!Value(path.empty() ? key : path + "." + key)) return false;
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') return ++pos_, true;
      return Error("expected ',' or '}'");
    }
  }
  bool Array(const std::string& path) {
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') return ++pos_, true;
    for (int i = 0;; ++i) {
      if (!Value(path + "[" + std::to_string(i) + "]")) return false;
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') return ++pos_, true;
      return Error("expected ',' or ']'");
    }
  }
  bool String(std::string* out) {
    ++pos_;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\n') return Error("newline inside a string");
      if (text_[pos_] == '\\') ++pos_;
      if (out && pos_ < text_.size()) out->push_back(text_[pos_]);
      ++pos_;
    }
    if (pos_ >= text_.size()) return Error("unterminated string");
    ++pos_;
    return true;
  }
  bool Literal() {
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-' ||
                                   text_[pos_] == '+' || text_[pos_] == '.')) {
      ++pos_;
    }
    std::string_view word = text_.substr(start, pos_ - start);
    if (word.empty()) return Error(std::string("unexpected character '") + text_[pos_] + "'");
    if (word == "true" || word == "false" || word == "null") return true;
    if (std::isdigit(static_cast<unsigned char>(word[0])) || word[0] == '-') return true;
    pos_ = start;
    return Error("unexpected word \"" + std::string(word) + "\"");
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::map<std::string, size_t> positions_;
  std::string error_;
  size_t error_pos_ = 0;
};

// Turns "devices[0].deviceClass" into candidate spellings of a JSON path.
std::string CamelCase(const std::string& snake) {
  std::string out;
  bool upper = false;
  for (char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out.push_back(upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c);
    upper = false;
  }
  return out;
}

// --- the locator: file, line and column for a field path ------------------------------

class Locator {
 public:
  Locator(std::string file, const gpb::TextFormat::ParseInfoTree* tree, const JsonScanner* json,
          std::string_view text = {})
      : file_(std::move(file)), tree_(tree), json_(json), text_(text) {}

  Location Find(const FieldPath& path) const {
    if (tree_) return FindText(path);
    if (json_) {
      Location loc = json_->Find(JsonPath(path, false));
      if (loc.line < 0) loc = json_->Find(JsonPath(path, true));
      return loc;
    }
    return {};
  }

  Error At(const FieldPath& path, const std::string& message) const {
    Location loc = Find(path);
    std::string where = file_;
    if (loc.line >= 0) where += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
    return Error{Errc::kParse, where + ": " + PathString(path) + ": " + message};
  }

 private:
  Location FindText(const FieldPath& path) const {
    const gpb::TextFormat::ParseInfoTree* tree = tree_;
    const gpb::Descriptor* desc = proto::Machine::descriptor();
    Location best;
    for (size_t i = 0; i < path.size() && tree && desc; ++i) {
      const gpb::FieldDescriptor* fd = desc->FindFieldByName(path[i].field);
      if (!fd) break;
      if (fd->is_map() && !path[i].key.empty()) {
        Location entry = FindMapEntry(*tree, fd, path[i].key);
        return entry.line >= 0 ? entry : best;
      }
      // A whole repeated field ("flags") is located at its first element.
      int index = fd->is_repeated() ? std::max(path[i].index, 0) : -1;
      gpb::TextFormat::ParseLocation loc = tree->GetLocation(fd, index);
      if (fd->is_repeated() && path[i].index < 0) {
        if (loc.line >= 0) best = Location{loc.line + 1, loc.column + 1};
        break;
      }
      if (loc.line >= 0) best = Location{loc.line + 1, loc.column + 1};
      if (fd->type() != gpb::FieldDescriptor::TYPE_MESSAGE) break;
      tree = tree->GetTreeForNested(fd, path[i].index);
      desc = fd->message_type();
    }
    return best;
  }
  // A map key is a member of the map's object: "devices[0].settings.mac".
  // A map's entries are located in the order they were parsed: the one whose
  // `key` field's line holds the key in quotes.
  Location FindMapEntry(const gpb::TextFormat::ParseInfoTree& tree, const gpb::FieldDescriptor* map,
                        const std::string& key) const {
    const gpb::FieldDescriptor* key_field = map->message_type()->FindFieldByName("key");
    const std::string quoted = "\"" + key + "\"";
    for (int i = 0;; ++i) {
      const gpb::TextFormat::ParseLocation entry = tree.GetLocation(map, i);
      if (entry.line < 0) return {};
      const gpb::TextFormat::ParseInfoTree* nested = tree.GetTreeForNested(map, i);
      if (!nested) continue;
      const gpb::TextFormat::ParseLocation at = nested->GetLocation(key_field, -1);
      if (at.line >= 0 && LineAt(at.line).find(quoted, at.column) != std::string_view::npos) {
        return Location{at.line + 1, at.column + 1};
      }
    }
  }
  std::string_view LineAt(int line) const {
    size_t start = 0;
    for (int l = 0; l < line && start != std::string_view::npos; ++l) {
      start = text_.find('\n', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos || start >= text_.size()) return {};
    return text_.substr(start, text_.find('\n', start) - start);
  }

  static std::string JsonPath(const FieldPath& path, bool camel) {
    std::string out;
    for (const Step& s : path) {
      if (!out.empty()) out += ".";
      out += camel ? CamelCase(s.field) : s.field;
      if (s.index >= 0) out += "[" + std::to_string(s.index) + "]";
      if (!s.key.empty()) out += "." + s.key;
    }
    return out;
  }

  std::string file_;
  const gpb::TextFormat::ParseInfoTree* tree_;
  const JsonScanner* json_;
  std::string_view text_;  // the text format source, for map keys
};

// --- parsing ----------------------------------------------------------------------

class TextErrors : public gpb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

MachineFormat Detect(std::string_view content, std::string_view file_name) {
  if (EndsWith(file_name, ".json")) return MachineFormat::kJson;
  if (EndsWith(file_name, ".textproto") || EndsWith(file_name, ".pbtxt") || EndsWith(file_name, ".txtpb")) {
    return MachineFormat::kText;
  }
  for (char c : content) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    return c == '{' ? MachineFormat::kJson : MachineFormat::kText;
  }
  return MachineFormat::kText;
}

// protobuf's JSON errors look like "(devices[0]) nmae: Cannot find field." or
// "nmae: Cannot find field."; returns the field path ("devices[0].nmae") and
// the rest of the message, or an empty path when it names none.
std::pair<std::string, std::string> JsonErrorPath(const std::string& message) {
  std::string prefix;
  std::string rest = message;
  if (rest.starts_with("(")) {
    size_t close = rest.find(") ");
    if (close == std::string::npos) return {"", message};
    prefix = rest.substr(1, close - 1);
    rest = rest.substr(close + 2);
  }
  size_t colon = rest.find(": ");
  if (colon == std::string::npos) return {"", message};
  std::string field = rest.substr(0, colon);
  for (char c : field) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return {"", message};
  }
  return {prefix.empty() ? field : prefix + "." + field, rest.substr(colon + 2)};
}

// A backend that never completes probes; validation only registers drivers.
class InertBackend : public DriverBackend {
 public:
  void Probe(Device&) override {}
  void Remove(Device&) override {}
};

Result<LinkFlags> ParseFlags(const proto::MachineLink& link, int i, const Locator& where) {
  LinkFlags flags;
  for (int j = 0; j < link.flags_size(); ++j) {
    auto f = LinkFlags::ParseOne(link.flags(j));
    if (!f) return std::unexpected(where.At({{"links", i}, {"flags", j}}, f.error().message));
    flags = flags | *f;
  }
  return flags;
}

DeviceSpec ToSpec(const proto::MachineDevice& d) {
  DeviceSpec spec{d.name(), d.bus(), {d.compatible().begin(), d.compatible().end()}, d.device_class(), {}};
  for (const auto& [k, v] : d.settings()) spec.settings.emplace(k, v);
  return spec;
}

DriverSpec ToSpec(const proto::MachineDriver& d) {
  DriverSpec spec{d.name(), d.bus(), {d.compatible().begin(), d.compatible().end()}, d.binary(), {}};
  for (const auto& [k, v] : d.settings()) spec.settings.emplace(k, v);
  return spec;
}

// --- recovery settings ------------------------------------------------------------

FieldPath Append(FieldPath path, std::initializer_list<Step> more) {
  path.insert(path.end(), more);
  return path;
}

// A nonzero `ms` must lie in [low, high].
Result<void> InRange(uint32_t ms, uint32_t low, uint32_t high, const FieldPath& path, const Locator& where) {
  if (ms == 0 || (ms >= low && ms <= high)) return {};
  return std::unexpected(where.At(path, std::to_string(ms) + " is out of range: give " + std::to_string(low) + " to " +
                                            std::to_string(high) + " (or 0 for the default)"));
}

Result<void> ValidateBudget(const proto::RestartBudget& b, const FieldPath& at, const Locator& where) {
  if (b.max_restarts() > 1'000'000) {
    return std::unexpected(where.At(Append(at, {{"max_restarts"}}), "more than 1000000 restarts"));
  }
  UMBRA_TRY(InRange(b.window_ms(), 1, 86'400'000, Append(at, {{"window_ms"}}), where));
  return InRange(b.backoff_ms(), 1, 600'000, Append(at, {{"backoff_ms"}}), where);
}

Result<void> ValidateBackoff(const proto::Backoff& b, const FieldPath& at, const Locator& where) {
  UMBRA_TRY(InRange(b.initial_ms(), 1, 600'000, Append(at, {{"initial_ms"}}), where));
  UMBRA_TRY(InRange(b.max_ms(), 1, 3'600'000, Append(at, {{"max_ms"}}), where));
  UMBRA_TRY(InRange(b.crash_loop_ms(), 1, 600'000, Append(at, {{"crash_loop_ms"}}), where));
  UMBRA_TRY(InRange(b.stable_ms(), 1, 3'600'000, Append(at, {{"stable_ms"}}), where));
  if (b.initial_ms() > 0 && b.max_ms() > 0 && b.max_ms() < b.initial_ms()) {
    return std::unexpected(where.At(Append(at, {{"max_ms"}}), "shorter than initial_ms"));
  }
  return {};
}

Result<void> ValidateRecovery(const proto::Recovery& r, const FieldPath& at, const Locator& where) {
  UMBRA_TRY(InRange(r.heartbeat_period_ms(), 5, 60'000, Append(at, {{"heartbeat_period_ms"}}), where));
  UMBRA_TRY(InRange(r.request_deadline_ms(), 1, 3'600'000, Append(at, {{"request_deadline_ms"}}), where));
  UMBRA_TRY(ValidateBudget(r.restart_budget(), Append(at, {{"restart_budget"}}), where));
  UMBRA_TRY(ValidateBackoff(r.backoff(), Append(at, {{"backoff"}}), where));
  if (r.restart_budget().backoff_ms() > 0 && r.backoff().initial_ms() > 0) {
    return std::unexpected(where.At(Append(at, {{"backoff"}, {"initial_ms"}}),
                                    "given twice: restart_budget.backoff_ms says the same; keep one"));
  }
  return {};
}

// The machine-wide shorthands (settings.heartbeat_period_ms,
// settings.restart_budget) and settings.recovery say the same things.
Result<void> ValidateMachineRecovery(const proto::MachineSettings& s, const Locator& where) {
  const FieldPath settings{{"settings"}};
  UMBRA_TRY(InRange(s.heartbeat_period_ms(), 5, 60'000, Append(settings, {{"heartbeat_period_ms"}}), where));
  UMBRA_TRY(ValidateBudget(s.restart_budget(), Append(settings, {{"restart_budget"}}), where));
  UMBRA_TRY(ValidateRecovery(s.recovery(), Append(settings, {{"recovery"}}), where));
  if (s.heartbeat_period_ms() > 0 && s.recovery().heartbeat_period_ms() > 0) {
    return std::unexpected(where.At({{"settings"}, {"recovery"}, {"heartbeat_period_ms"}},
                                    "given twice: settings.heartbeat_period_ms says the same; keep one"));
  }
  if (s.has_restart_budget() && s.recovery().has_restart_budget()) {
    return std::unexpected(where.At({{"settings"}, {"recovery"}, {"restart_budget"}},
                                    "given twice: settings.restart_budget says the same; keep one"));
  }
  if (s.restart_budget().backoff_ms() > 0 && s.recovery().backoff().initial_ms() > 0) {
    return std::unexpected(where.At({{"settings"}, {"recovery"}, {"backoff"}, {"initial_ms"}},
                                    "given twice: settings.restart_budget.backoff_ms says the same; keep one"));
  }
  return {};
}

// The checks that name a field precisely; what is left is caught by
// registering everything in a scratch model.
Result<void> Validate(const proto::Machine& m, const Locator& where) {
  UMBRA_TRY(ValidateMachineRecovery(m.settings(), where));
  for (int i = 0; i < m.devices_size(); ++i) {
    UMBRA_TRY(ValidateRecovery(m.devices(i).recovery(), {{"devices", i}, {"recovery"}}, where));
  }
  std::set<std::string> buses, devices, drivers;
  for (int i = 0; i < m.buses_size(); ++i) {
    if (!buses.insert(m.buses(i).name()).second) {
      return std::unexpected(where.At({{"buses", i}, {"name", -1}}, "duplicate bus \"" + m.buses(i).name() + "\""));
    }
  }
  for (int i = 0; i < m.devices_size(); ++i) {
    const auto& d = m.devices(i);
    if (!devices.insert(d.name()).second) {
      return std::unexpected(where.At({{"devices", i}, {"name", -1}}, "duplicate device \"" + d.name() + "\""));
    }
    if (!buses.contains(d.bus())) {
      return std::unexpected(where.At({{"devices", i}, {"bus", -1}}, "unknown bus \"" + d.bus() + "\""));
    }
  }
  for (int i = 0; i < m.drivers_size(); ++i) {
    const auto& d = m.drivers(i);
    if (!drivers.insert(d.name()).second) {
      return std::unexpected(where.At({{"drivers", i}, {"name", -1}}, "duplicate driver \"" + d.name() + "\""));
    }
    if (!buses.contains(d.bus())) {
      return std::unexpected(where.At({{"drivers", i}, {"bus", -1}}, "unknown bus \"" + d.bus() + "\""));
    }
    if (d.compatible().empty()) {
      return std::unexpected(where.At({{"drivers", i}}, "empty match table: give at least one compatible"));
    }
  }
  for (int i = 0; i < m.links_size(); ++i) {
    const auto& l = m.links(i);
    if (!devices.contains(l.consumer())) {
      return std::unexpected(where.At({{"links", i}, {"consumer", -1}}, "unknown device \"" + l.consumer() + "\""));
    }
    if (!devices.contains(l.supplier())) {
      return std::unexpected(where.At({{"links", i}, {"supplier", -1}}, "unknown device \"" + l.supplier() + "\""));
    }
    LinkFlags flags = UMBRA_TRY(ParseFlags(l, i, where));
    if (auto ok = ValidateLinkFlags(flags); !ok) {
      return std::unexpected(where.At({{"links", i}, {"flags", -1}}, ok.error().message));
    }
  }
  // Names, cycles and duplicates links: a scratch model refuses them.
  auto scratch = UMBRA_TRY(Model::Create());
  for (int i = 0; i < m.buses_size(); ++i) {
    if (auto ok = scratch->AddBus(m.buses(i).name()); !ok) {
      return std::unexpected(where.At({{"buses", i}, {"name", -1}}, ok.error().message));
    }
  }
  for (int i = 0; i < m.devices_size(); ++i) {
    if (auto ok = scratch->AddDevice(ToSpec(m.devices(i))); !ok) {
      return std::unexpected(where.At({{"devices", i}}, ok.error().message));
    }
  }
  for (int i = 0; i < m.links_size(); ++i) {
    LinkFlags flags = UMBRA_TRY(ParseFlags(m.links(i), i, where));
    if (auto ok = scratch->AddLink(m.links(i).consumer(), m.links(i).supplier(), flags); !ok) {
      return std::unexpected(where.At({{"links", i}}, ok.error().message));
    }
  }
  for (int i = 0; i < m.drivers_size(); ++i) {
    if (auto ok = scratch->AddDriver(ToSpec(m.drivers(i)), std::make_shared<InertBackend>()); !ok) {
      return std::unexpected(where.At({{"drivers", i}}, ok.error().message));
    }
  }
  return {};
}

// The caller's check, located like the loader's own errors.
Result<void> RunCheck(const proto::Machine& m, const MachineCheck& check, const Locator& where) {
  if (!check) return {};
  if (std::optional<FieldError> e = check(m)) return std::unexpected(where.At(e->path, e->message));
  return {};
}

Result<std::unique_ptr<proto::Machine>> ParseText(std::string_view content, const std::string& file,
                                                  const MachineCheck& check) {
  auto machine = std::make_unique<proto::Machine>();
  gpb::TextFormat::Parser parser;
  TextErrors errors;
  gpb::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(content), machine.get())) {
    return Fail(Errc::kParse, file + ":" + (errors.first().empty() ? std::string("does not parse") : errors.first()));
  }
  const Locator where(file, &tree, nullptr, content);
  UMBRA_TRY(Validate(*machine, where));
  UMBRA_TRY(RunCheck(*machine, check, where));
  return machine;
}

Result<std::unique_ptr<proto::Machine>> ParseJson(std::string_view content, const std::string& file,
                                                  const MachineCheck& check) {
  JsonScanner scanner(content);
  if (!scanner.Scan()) {
    Location loc = scanner.error_location();
    return Fail(Errc::kParse,
                file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": " + scanner.error());
  }
  auto machine = std::make_unique<proto::Machine>();
  gpb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = gpb::util::JsonStringToMessage(std::string(content), machine.get(), options);
  Locator where(file, nullptr, &scanner);
  if (!status.ok()) {
    std::string message(status.message());
    auto [path, rest] = JsonErrorPath(message);
    if (path.empty()) return Fail(Errc::kParse, file + ": " + message);
    Location loc = scanner.Find(path);
    std::string at = loc.line >= 0 ? ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) : "";
    return Fail(Errc::kParse, file + at + ": " + path + ": " + rest);
  }
  UMBRA_TRY(Validate(*machine, where));
  UMBRA_TRY(RunCheck(*machine, check, where));
  return machine;
}

}  // namespace

std::string FieldPathString(const FieldPath& path) {
  std::string out;
  for (const FieldStep& s : path) {
    if (!out.empty()) out += ".";
    out += s.field;
    if (s.index >= 0) out += "[" + std::to_string(s.index) + "]";
    if (!s.key.empty()) out += "[\"" + s.key + "\"]";
  }
  return out;
}

Result<std::unique_ptr<proto::Machine>> ParseMachine(std::string_view content, std::string_view file_name,
                                                     MachineFormat format, const MachineCheck& check) {
  std::string file(file_name);
  if (format == MachineFormat::kAuto) format = Detect(content, file_name);
  switch (format) {
    case MachineFormat::kJson: return ParseJson(content, file, check);
    case MachineFormat::kText:
    case MachineFormat::kAuto: return ParseText(content, file, check);
  }
  return ParseText(content, file, check);
}

Result<std::unique_ptr<proto::Machine>> LoadMachine(const std::string& path, const MachineCheck& check) {
  std::ifstream in(path);
  if (!in) return FailErrno("cannot open machine file " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseMachine(buffer.str(), path, MachineFormat::kAuto, check);
}

Result<void> PopulateModel(const proto::Machine& m, Model& model, const BackendFactory& backends) {
  for (const auto& b : m.buses()) {
    UMBRA_TRY(model.AddBus(b.name()));
    if (b.no_autoprobe()) UMBRA_TRY(model.Write("/bus/" + b.name() + "/drivers_autoprobe", "0"));
  }
  for (const auto& d : m.devices()) UMBRA_TRY(model.AddDevice(ToSpec(d)));
  for (const auto& l : m.links()) {
    LinkFlags flags;
    for (const auto& name : l.flags()) flags = flags | UMBRA_TRY(LinkFlags::ParseOne(name));
    UMBRA_TRY(model.AddLink(l.consumer(), l.supplier(), flags));
  }
  for (const auto& d : m.drivers()) {
    DriverSpec spec = ToSpec(d);
    auto backend = backends(model, spec);
    UMBRA_TRY(model.AddDriver(std::move(spec), std::move(backend)));
  }
  return {};
}

Result<std::unique_ptr<Model>> BuildModel(const proto::Machine& machine, const BackendFactory& backends) {
  auto model = UMBRA_TRY(Model::Create());
  UMBRA_TRY(PopulateModel(machine, *model, backends));
  return model;
}

}  // namespace umbra::model
