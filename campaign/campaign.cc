#include "campaign/campaign.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "campaign/report.h"
#include "base/clock.h"
#include "base/unique_fd.h"

extern char** environ;

namespace umbra::faultinject::campaign {
namespace {

RunRecord SetupFailure(const RunSpec& spec, const Error& e) {
  RunRecord r;
  r.index = spec.index;
  r.seed = spec.seed;
  r.workload = spec.workload;
  r.fault = spec.fault;
  r.mode = spec.mode;
  r.outcome = Outcome::kMalfunction;
  r.note = "run could not be set up: " + e.ToString();
  return r;
}

RunRecord HostCrash(const RunSpec& spec, const std::string& why) {
  RunRecord r;
  r.index = spec.index;
  r.seed = spec.seed;
  r.workload = spec.workload;
  r.fault = spec.fault;
  r.mode = spec.mode;
  r.outcome = Outcome::kHostCrash;
  r.note = why;
  return r;
}

// The runs worker k of `jobs` does, among the shard's, after index `after`.
std::vector<RunSpec> WorkerRuns(const CampaignConfig& config, uint32_t k, uint32_t jobs, int64_t after) {
  std::vector<RunSpec> all = ShardRuns(config);
  std::vector<RunSpec> out;
  for (size_t p = 0; p < all.size(); ++p) {
    if (p % jobs == k && static_cast<int64_t>(all[p].index) > after) out.push_back(all[p]);
  }
  return out;
}

bool PastDeadline(const CampaignConfig& config) {
  return config.deadline_ns != 0 && MonotonicNanos() >= config.deadline_ns;
}

// This process's pid, resident memory and open descriptors, into `r`.
void MeasureHost(RunRecord& r) {
  r.host_pid = getpid();
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2) {
      r.host_rss_kb = resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
    }
    std::fclose(f);
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    r.host_fds = n > 0 ? n - 1 : 0;  // less the one opendir holds
  }
}

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended";
}

// One worker process and what it has reported.
struct Worker {
  uint32_t k = 0;
  pid_t pid = -1;
  UniqueFd out;               // its stdout: JSON lines
  std::string buffer;         // a partial line
  std::vector<RunSpec> todo;  // runs not yet reported, in order
};

Result<void> SpawnWorker(Worker& w, const CampaignConfig& config, const std::vector<std::string>& argv, uint32_t jobs,
                         int64_t after) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::vector<std::string> args = argv;
  args.insert(args.end(), {"--config", CampaignToText(config), "--worker",
                           std::to_string(w.k) + "/" + std::to_string(jobs), "--after", std::to_string(after),
                           "--shard", std::to_string(config.shard_index) + "/" + std::to_string(config.shard_count)});
  if (config.deadline_ns != 0) args.insert(args.end(), {"--deadline", std::to_string(config.deadline_ns)});
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, cargs[0], &actions, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return FailErrno("posix_spawn " + args[0], err);
  w.pid = pid;
  w.out = std::move(read_end);
  w.buffer.clear();
  w.todo = WorkerRuns(config, w.k, jobs, after);
  return {};
}

// Takes the complete lines out of the worker's buffer.
void TakeLines(Worker& w, std::vector<RunRecord>& records, const RecordSink& on_record) {
  size_t nl;
  while ((nl = w.buffer.find('\n')) != std::string::npos) {
    std::string line = w.buffer.substr(0, nl);
    w.buffer.erase(0, nl + 1);
    auto rec = RecordFromJson(line);
    if (!rec) continue;  // not a record (a stray line); the run is retried as missing
    std::erase_if(w.todo, [&](const RunSpec& s) { return s.index == rec->index; });
    if (on_record) on_record(*rec);
    records.push_back(std::move(*rec));
  }
}

}  // namespace

bool AsExpected(Outcome outcome, shadows::RecoveryMode mode) {
  switch (outcome) {
    case Outcome::kTransparent:
    case Outcome::kExpected: return true;
    case Outcome::kMalfunction: return mode == shadows::RecoveryMode::kRestartOnly;
    case Outcome::kFailed:
    case Outcome::kHostCrash: return false;
  }
  return false;
}

Result<void> Resolve(const WorkloadRegistry& registry, CampaignConfig& config) {
  if (config.workloads.empty()) config.workloads = registry.names();
  for (const std::string& w : config.workloads) {
    if (!registry.Has(w)) {
      std::string known;
      for (const auto& n : registry.names()) known += (known.empty() ? "" : ", ") + n;
      return Fail(Errc::kInvalidArgument, "unknown workload '" + w + "' (known: " + known + ")");
    }
  }
  if (config.faults.empty()) config.faults.assign(AllFaultTypes().begin(), AllFaultTypes().end());
  if (config.runs_per_cell == 0) return Fail(Errc::kInvalidArgument, "runs per cell must be at least 1");
  if (config.shard_count == 0 || config.shard_index >= config.shard_count) {
    return Fail(Errc::kInvalidArgument, "shard index must be below the shard count");
  }
  if (config.jobs == 0) config.jobs = std::max(1u, std::thread::hardware_concurrency());
  return {};
}

std::vector<RunSpec> ExpandRuns(const CampaignConfig& config) {
  std::vector<RunSpec> out;
  uint64_t index = 0;
  for (const std::string& w : config.workloads) {
    for (FaultType t : config.faults) {
      for (uint32_t r = 0; r < config.runs_per_cell; ++r, ++index) {
        out.push_back({.index = index,
                       .seed = RunSeed(config.seed, index),
                       .workload = w,
                       .fault = t,
                       .mode = config.mode,
                       .units = config.units});
      }
    }
  }
  return out;
}

std::vector<RunSpec> ShardRuns(const CampaignConfig& config) {
  std::vector<RunSpec> out = ExpandRuns(config);
  const uint32_t n = std::max(1u, config.shard_count);
  std::erase_if(out, [&](const RunSpec& s) { return s.index % n != config.shard_index; });
  return out;
}

std::vector<RunRecord> RunInProcess(const WorkloadRegistry& registry, const CampaignConfig& config,
                                    const RecordSink& on_record) {
  const std::vector<RunSpec> runs = ShardRuns(config);
  std::vector<RunRecord> records(runs.size());
  std::vector<char> ran(runs.size(), 0);
  std::atomic<size_t> next{0};
  std::mutex sink_mu;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < runs.size();) {
      if (PastDeadline(config)) break;
      ran[i] = 1;
      auto r = RunOne(registry, runs[i], config.run);
      records[i] = r ? std::move(*r) : SetupFailure(runs[i], r.error());
      MeasureHost(records[i]);
      std::lock_guard lock(sink_mu);
      if (on_record) on_record(records[i]);
    }
  };
  // spdlog creates its registry on first use, inside its own (uninstrumented)
  // library: create it here, before the run threads log concurrently, so
  // that ThreadSanitizer sees it happen before them.
  (void)spdlog::default_logger_raw();
  std::vector<std::thread> threads;
  const uint32_t jobs = std::clamp<uint32_t>(config.jobs, 1, std::max<size_t>(1, runs.size()));
  for (uint32_t j = 0; j < jobs; ++j) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  size_t kept = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (ran[i]) records[kept++] = std::move(records[i]);
  }
  records.resize(kept);
  return records;
}

Result<std::vector<RunRecord>> RunIsolated(const CampaignConfig& config, const std::vector<std::string>& argv,
                                           const RecordSink& on_record) {
  if (argv.empty()) return Fail(Errc::kInvalidArgument, "no worker command");
  const uint32_t jobs = std::max(1u, config.jobs);
  std::vector<Worker> workers(jobs);
  std::vector<RunRecord> records;
  for (uint32_t k = 0; k < jobs; ++k) {
    workers[k].k = k;
    UMBRA_TRY(SpawnWorker(workers[k], config, argv, jobs, -1));
  }
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Worker*> owners;
    for (Worker& w : workers) {
      if (!w.out.valid()) continue;
      fds.push_back({.fd = w.out.get(), .events = POLLIN});
      owners.push_back(&w);
    }
    if (fds.empty()) break;
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return FailErrno("poll");
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Worker& w = *owners[i];
      char buf[65536];
      const ssize_t n = read(w.out.get(), buf, sizeof buf);
      if (n > 0) {
        w.buffer.append(buf, static_cast<size_t>(n));
        TakeLines(w, records, on_record);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // End of the worker's output: it finished, or it died mid-run.
      w.out.reset();
      int status = 0;
      waitpid(w.pid, &status, 0);
      if (w.todo.empty()) continue;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && PastDeadline(config)) continue;  // stopped in time
      const RunSpec crashed = w.todo.front();
      RunRecord rec = HostCrash(crashed, "the process running the run " + DescribeStatus(status));
      if (on_record) on_record(rec);
      records.push_back(std::move(rec));
      UMBRA_TRY(SpawnWorker(w, config, argv, jobs, static_cast<int64_t>(crashed.index)));
    }
  }
  return MergeRecords(std::move(records));
}

int RunWorker(const WorkloadRegistry& registry, const CampaignConfig& config, uint32_t k, uint32_t jobs, int64_t after,
              int fd) {
  for (const RunSpec& spec : WorkerRuns(config, k, jobs, after)) {
    if (PastDeadline(config)) break;
    auto r = RunOne(registry, spec, config.run);
    RunRecord rec = r ? std::move(*r) : SetupFailure(spec, r.error());
    MeasureHost(rec);
    std::string line = RecordToJson(rec) + "\n";
    for (size_t off = 0; off < line.size();) {
      const ssize_t n = write(fd, line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 1;
      off += static_cast<size_t>(n);
    }
  }
  return 0;
}

Result<ShrinkResult> Shrink(const WorkloadRegistry& registry, RunSpec spec, const RunOptions& options, Outcome target) {
  ShrinkResult best;
  {
    RunRecord first = UMBRA_TRY(RunOne(registry, spec, options));
    best.plan = UMBRA_TRY(ParsePlan(first.plan));
    best.record = std::move(first);
    best.attempts = 1;
  }
  if (best.record.outcome != target) {
    return Fail(Errc::kInvalidArgument, "the run's outcome is " + std::string(OutcomeName(best.record.outcome)) +
                                            ", not " + std::string(OutcomeName(target)));
  }
  auto still_fails = [&](const FaultPlan& candidate) -> bool {
    spec.plan = candidate;
    ++best.attempts;
    auto r = RunOne(registry, spec, options);
    if (!r || r->outcome != target) return false;
    best.plan = candidate;
    best.record = std::move(*r);
    return true;
  };
  bool progress = true;
  while (progress) {
    progress = false;
    // Fewer faults.
    for (size_t i = 0; best.plan.faults.size() > 1 && i < best.plan.faults.size(); ++i) {
      FaultPlan c = best.plan;
      c.faults.erase(c.faults.begin() + static_cast<long>(i));
      if (still_fails(c)) {
        progress = true;
        --i;
      }
    }
    // Earlier points: a fixed hit count instead of a random one, then halving.
    for (size_t i = 0; i < best.plan.faults.size(); ++i) {
      FaultPlan c = best.plan;
      Injection& inj = c.faults[i];
      if (inj.when == When::kRandom) {
        inj = {.type = inj.type, .site = inj.site, .when = When::kAfterHits, .after = 0};
      } else if (inj.after > 0) {
        inj.after /= 2;
      } else {
        continue;
      }
      if (still_fails(c)) progress = true;
    }
  }
  return best;
}

}  // namespace umbra::faultinject::campaign
