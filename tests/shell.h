// Shell: runs a command line for tests that drive programs from outside
// (umbra itself, Slurm, fio …), with its output and exit code.
//
//   Output r = Shell(std::string(UMBRA_BIN) + " status --json");
//   EXPECT_EQ(r.code, 0) << r.out;
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace umbra::testing {

struct Output {
  int code = -1;    // exit status, or -1 when it did not exit normally
  std::string out;  // stdout and stderr together
};

inline Output Shell(const std::string& cmd) {
  Output r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Single-quotes `s` for a POSIX shell.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace umbra::testing
