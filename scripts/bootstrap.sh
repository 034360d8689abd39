# Shared set-up for ./umbra and ./test: Debian packages, configure, build.
# Sourced, not run. Everything here is idempotent and cheap when already done.

UMBRA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The Debian 12 packages a build and a full test run need.
UMBRA_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config
  libboost-dev libboost-context-dev
  libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev sqlite3
  iproute2 sox
  # The driver sandbox's system-call allowlist (runtime/sandbox).
  libseccomp-dev
  # frontends: FUSE for the block file
  libfuse3-dev fuse3
)

# What only the test suite needs, installed by ./test (./umbra does not need them):
# a one-node Slurm cluster for the sharded-campaign test, clang 16 for the fuzz
# targets, Chromium (~100 MB) for the HTML report's render test
# (tests/recorder/html_render_test.cc).
UMBRA_TEST_PACKAGES=(
  slurm-wlm munge
  clang-16 libclang-rt-16-dev   # the libFuzzer targets (tests/fuzz, docs/fuzzing.md)
  chromium
  fio e2fsprogs socat iperf3 iputils-ping curl   # the programs the frontends' tests and README run
)

umbra_log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

umbra_ensure_packages() {
  local missing=()
  local p
  for p in "${UMBRA_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  umbra_log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# umbra_build PRESET [TARGET...]: configure once, then build incrementally.
umbra_build() {
  local preset=$1; shift
  local dir="$UMBRA_ROOT/build/$preset"
  if [ ! -f "$dir/build.ninja" ]; then
    umbra_log "configuring ($preset)"
    (cd "$UMBRA_ROOT" && cmake --preset "$preset" >/dev/null)
  fi
  local targets=()
  local t
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$dir" "${targets[@]}" -- -j"$(nproc)" | grep -vE '^\[[0-9]+/[0-9]+\]' || true
  return "${PIPESTATUS[0]}"
}
