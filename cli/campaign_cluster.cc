#include "cli/campaign_cluster.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "campaign/campaign.h"
#include "campaign/report.h"
#include "campaign/run.h"
#include "shadows/workload.h"

namespace umbra::cli {
namespace {

namespace fc = faultinject::campaign;
namespace fs = std::filesystem;

constexpr int kExitIncomplete = 75;  // EX_TEMPFAIL: rerun the missing shards, then collect again

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "umbra campaign: %s\n", message.c_str());
  return code;
}

// Single-quotes `s` for a POSIX shell.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

bool WriteFile(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  return out && chmod(path.c_str(), mode) == 0;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The array job: task I runs shard I/N into shards/, writing the runs as
// .partial and renaming them once the shard's campaign has finished (exit 0:
// all as expected, 1: some not; anything else is a failed shard).
std::string ShardScript(const fs::path& dir, const ClusterSubmit& s) {
  std::ostringstream o;
  o << "#!/bin/bash\n"
    << "#SBATCH --job-name=umbra-shard\n"
    << "#SBATCH --array=0-" << s.shards - 1 << "\n"
    << "#SBATCH --output=" << (dir / "logs" / "shard-%a.out").string() << "\n";
  if (!s.partition.empty()) o << "#SBATCH --partition=" << s.partition << "\n";
  o << "# A shard of an Umbra campaign; rerun one with: sbatch --array=I " << (dir / "shard.sbatch").string() << "\n"
    << "set -u\n"
    << "dir=" << Quote(dir.string()) << "\n"
    << "i=${SLURM_ARRAY_TASK_ID:?not run as a Slurm array task}\n"
    << "out=\"$dir/shards/shard-$i\"\n"
    << "rm -f \"$out.jsonl\" \"$out.exit\" \"$out.trace\"\n"
    << Quote(s.umbra_binary) << " campaign \"$dir/campaign.textproto\" --shard \"$i/" << s.shards << "\""
    << " --jsonl \"$out.jsonl.partial\" --trace \"$out.trace\"\n"
    << "rc=$?\n"
    << "echo \"$rc\" > \"$out.exit\"\n"
    << "if [ \"$rc\" -le 1 ]; then mv \"$out.jsonl.partial\" \"$out.jsonl\"; fi\n"
    << "exit \"$rc\"\n";
  return o.str();
}

// The merge job: runs after the array whatever became of its tasks.
std::string MergeScript(const fs::path& dir, const ClusterSubmit& s) {
  std::ostringstream o;
  o << "#!/bin/bash\n"
    << "#SBATCH --job-name=umbra-merge\n"
    << "#SBATCH --output=" << (dir / "logs" / "merge.out").string() << "\n";
  if (!s.partition.empty()) o << "#SBATCH --partition=" << s.partition << "\n";
  o << "# Merges an Umbra campaign's shards; run it again after rerunning a shard.\n"
    << "set -u\n"
    << "dir=" << Quote(dir.string()) << "\n"
    << Quote(s.umbra_binary) << " campaign --collect \"$dir\"\n"
    << "rc=$?\n"
    << "shopt -s nullglob\n"
    << "traces=(\"$dir\"/shards/shard-*.trace)\n"
    << "if [ ${#traces[@]} -gt 0 ]; then\n"
    << "  " << Quote(s.umbra_binary) << " report \"${traces[@]}\" --html \"$dir/report.html\""
    << " > \"$dir/recovery.txt\" || true\n"
    << "fi\n"
    << "exit \"$rc\"\n";
  return o.str();
}

// Runs `argv` and returns its standard output; nullopt (with the reason in
// `why`) when it cannot be run or exits non-zero.
std::optional<std::string> Capture(const std::vector<std::string>& argv, std::string& why) {
  std::string cmd;
  for (const std::string& a : argv) cmd += Quote(a) + " ";
  cmd += "2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    why = "cannot run " + argv[0];
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) {
    why = argv[0] + " failed (status " + std::to_string(WEXITSTATUS(status)) + "): " + out;
    return std::nullopt;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// "12345" or "12345;cluster" (sbatch --parsable) → "12345".
std::string JobId(const std::string& parsable) { return parsable.substr(0, parsable.find(';')); }

struct Manifest {
  uint32_t shards = 0;
  std::string umbra_binary;
};

Result<Manifest> ReadManifest(const fs::path& dir) {
  std::ifstream in(dir / "manifest");
  if (!in) return umbra::Fail(Errc::kNotFound, (dir / "manifest").string() + ": cannot open (not a campaign folder?)");
  Manifest m;
  std::string key;
  while (in >> key) {
    if (key == "shards")
      in >> m.shards;
    else if (key == "umbra")
      in >> std::ws, std::getline(in, m.umbra_binary);
    else
      std::getline(in, key);  // a later version's key: ignored
  }
  if (m.shards == 0) return umbra::Fail(Errc::kParse, (dir / "manifest").string() + ": no 'shards N' line");
  return m;
}

// The records of one shard file; a last line cut short (the shard died while
// writing it) is left out with a warning, any other bad line is an error.
Result<std::vector<fc::RunRecord>> ReadShard(const fs::path& path, std::string& warning) {
  std::ifstream in(path);
  if (!in) return umbra::Fail(Errc::kNotFound, path.string() + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  std::vector<fc::RunRecord> out;
  for (size_t n = 0; n < lines.size(); ++n) {
    auto r = fc::RecordFromJson(lines[n]);
    if (r) {
      out.push_back(std::move(*r));
      continue;
    }
    if (n + 1 == lines.size()) {
      warning = path.string() + ": last line cut short, left out";
      break;
    }
    return umbra::Fail(Errc::kParse, path.string() + ":" + std::to_string(n + 1) + ": " + r.error().message);
  }
  return out;
}

struct ShardState {
  std::string problem;  // empty: complete
  std::vector<fc::RunRecord> records;
};

ShardState LookAtShard(const fs::path& dir, const fc::CampaignConfig& config, uint32_t i, uint32_t n) {
  ShardState st;
  const fs::path base = dir / "shards" / ("shard-" + std::to_string(i));
  fc::CampaignConfig shard = config;
  shard.shard_index = i;
  shard.shard_count = n;
  const size_t expected = fc::ShardRuns(shard).size();
  const fs::path done = base.string() + ".jsonl";
  const fs::path partial = base.string() + ".jsonl.partial";
  const fs::path exit_file = base.string() + ".exit";
  const bool finished = fs::exists(done);
  if (!finished && !fs::exists(partial)) {
    st.problem = "missing (never ran, or still running)";
    return st;
  }
  std::string warning;
  auto recs = ReadShard(finished ? done : partial, warning);
  if (!recs) {
    st.problem = recs.error().message;
    return st;
  }
  if (!warning.empty()) std::fprintf(stderr, "umbra campaign: warning: %s\n", warning.c_str());
  st.records = std::move(*recs);
  if (!finished) {
    const std::string rc = fs::exists(exit_file) ? ReadFile(exit_file) : "";
    st.problem = rc.empty() ? "unfinished" : "failed (exit " + rc.substr(0, rc.find('\n')) + ")";
    st.problem += ", " + std::to_string(st.records.size()) + " of " + std::to_string(expected) + " runs";
  } else if (st.records.size() != expected) {
    st.problem = "has " + std::to_string(st.records.size()) + " of " + std::to_string(expected) + " runs";
  }
  return st;
}

}  // namespace

int SubmitToSlurm(const fc::CampaignConfig& config, const ClusterSubmit& s) {
  if (s.shards == 0) return Fail("--shards must be at least 1", kExitUsage);
  if (s.umbra_binary.empty()) return Fail("cannot find this program's own path", kExitSoftware);
  std::error_code ec;
  const fs::path dir = fs::absolute(s.out_dir, ec);
  fs::create_directories(dir / "shards", ec);
  if (!ec) fs::create_directories(dir / "logs", ec);
  if (ec) return Fail(s.out_dir + ": " + ec.message(), kExitCantCreate);
  fc::CampaignConfig c = config;
  c.shard_index = 0;
  c.shard_count = 1;
  const std::string manifest = "shards " + std::to_string(s.shards) + "\numbra " + s.umbra_binary + "\n";
  if (!WriteFile(dir / "campaign.textproto", fc::CampaignToText(c) + "\n") || !WriteFile(dir / "manifest", manifest) ||
      !WriteFile(dir / "shard.sbatch", ShardScript(dir, s), 0755) ||
      !WriteFile(dir / "merge.sbatch", MergeScript(dir, s), 0755)) {
    return Fail("cannot write the campaign folder " + dir.string(), kExitCantCreate);
  }
  const size_t runs = fc::ExpandRuns(c).size();
  std::printf("campaign seed %llu: %zu runs in %u shards, folder %s\n", static_cast<unsigned long long>(c.seed), runs,
              s.shards, dir.c_str());
  if (!s.submit) {
    std::printf("not submitted; to submit:\n  a=$(sbatch --parsable %s)\n"
                "  sbatch --dependency=afterany:${a%%%%;*} %s\n",
                (dir / "shard.sbatch").c_str(), (dir / "merge.sbatch").c_str());
    return kExitOk;
  }
  std::string why;
  auto array = Capture({"sbatch", "--parsable", (dir / "shard.sbatch").string()}, why);
  if (!array) return Fail("submitting the shards: " + why, kExitSoftware);
  const std::string array_id = JobId(*array);
  auto merge =
      Capture({"sbatch", "--parsable", "--dependency=afterany:" + array_id, (dir / "merge.sbatch").string()}, why);
  if (!merge) return Fail("submitting the merge job (shards are job " + array_id + "): " + why, kExitSoftware);
  if (!WriteFile(dir / "jobs", "array " + array_id + "\nmerge " + JobId(*merge) + "\n")) {
    return Fail("cannot write " + (dir / "jobs").string(), kExitCantCreate);
  }
  std::printf("submitted: shards job %s (array 0-%u), merge job %s after it\n"
              "follow with: squeue -j %s,%s; the report lands in %s/report.txt and report.html\n",
              array_id.c_str(), s.shards - 1, JobId(*merge).c_str(), array_id.c_str(), JobId(*merge).c_str(),
              dir.c_str());
  return kExitOk;
}

int CollectShards(const std::string& dir_arg, bool json) {
  const fs::path dir = dir_arg;
  auto manifest = ReadManifest(dir);
  if (!manifest) {
    return Fail(manifest.error().message, manifest.error().code == Errc::kNotFound ? kExitNoInput : kExitDataErr);
  }
  auto config = fc::LoadCampaignFile((dir / "campaign.textproto").string());
  if (!config) return Fail(config.error().message, kExitDataErr);
  fc::WorkloadRegistry registry;
  (void)fc::RegisterBuiltinWorkloads(registry);
  if (auto r = fc::Resolve(registry, *config); !r) return Fail(r.error().message, kExitDataErr);

  std::vector<fc::RunRecord> all;
  std::vector<uint32_t> rerun;
  for (uint32_t i = 0; i < manifest->shards; ++i) {
    ShardState st = LookAtShard(dir, *config, i, manifest->shards);
    if (!st.problem.empty()) {
      std::fprintf(stderr, "shard %u/%u: %s\n", i, manifest->shards, st.problem.c_str());
      rerun.push_back(i);
    }
    all.insert(all.end(), std::make_move_iterator(st.records.begin()), std::make_move_iterator(st.records.end()));
  }
  all = fc::MergeRecords(std::move(all));
  const std::string text = fc::FormatSummary(all);
  const std::string js = fc::ReportJson(all, config->seed, fc::ModeName(config->mode));
  if (!WriteFile(dir / "report.txt", text) || !WriteFile(dir / "report.json", js + "\n")) {
    return Fail("cannot write the report into " + dir.string(), kExitCantCreate);
  }
  std::fputs(json ? (js + "\n").c_str() : text.c_str(), stdout);
  std::fprintf(stderr, "%zu of %zu runs from %u shard(s)\n", all.size(), fc::ExpandRuns(*config).size(),
               manifest->shards);
  if (!rerun.empty()) {
    std::string list;
    for (uint32_t i : rerun) list += (list.empty() ? "" : ",") + std::to_string(i);
    std::fprintf(stderr,
                 "%zu shard(s) to rerun (same seeds, same runs):\n  sbatch --array=%s %s\n"
                 "then collect again: umbra campaign --collect %s\n",
                 rerun.size(), list.c_str(), (dir / "shard.sbatch").c_str(), dir.c_str());
    return kExitIncomplete;
  }
  for (const auto& r : all) {
    if (!fc::AsExpected(r.outcome, r.mode)) return kExitNotRecovered;
  }
  return kExitOk;
}

}  // namespace umbra::cli
