# Installs the Debian packages wachat needs that are missing. Sourced by run.sh and test.sh.
wachat_packages=(
  build-essential cmake ninja-build pkg-config
  libcaf-dev libboost1.74-dev libboost-system1.74-dev libssl-dev
  libsimdjson-dev libpqxx-dev libfmt-dev nlohmann-json3-dev libjemalloc-dev catch2
  libphonenumber-dev
  postgresql-15 postgresql-client-15 openssl
)

wachat_install_deps() {
  local missing=()
  for p in "${wachat_packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "wachat: installing missing packages: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

wachat_build() {
  local build_dir=$1
  shift
  cmake -S "$WACHAT_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >&2
  cmake --build "$build_dir" -j2 >&2
}
