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
  # frontends: FUSE for the block file, and the outside programs their tests run
  libfuse3-dev fuse3 fio e2fsprogs socat iperf3 iputils-ping curl
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
