#!/usr/bin/env bash
# Installs the Debian packages flexgen needs to build and test. Idempotent:
# does nothing (and needs no root) when every package is already installed.
# --fuzz adds what `make fuzz` needs: clang with libFuzzer and the sanitizer runtimes
# (libclang-rt-14-dev) and llvm-symbolizer (llvm) for readable stack traces. The sanitizer build
# (`make test-asan`) uses the default compiler: gcc's runtimes come with build-essential.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # libtorch 1.13.1 (CPU)
  libopenblas0-openmp     # fast BLAS (Debian's default is the netlib reference)
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev
  libsentencepiece-dev sentencepiece
  libpcre2-dev libpng-dev zlib1g-dev
  nodejs npm              # tokenizer parity tests fetch the JS reference with npm pack
)

for arg in "$@"; do
  case "$arg" in
    --fuzz) PKGS+=(clang libclang-rt-14-dev llvm) ;;
    *) echo "setup-deps: unknown option $arg (known: --fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# node/npm may come from elsewhere than Debian (e.g. nodesource); accept working binaries.
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  filtered+=("$p")
done
missing=("${filtered[@]}")

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all dependencies present" >&2
  exit 0
fi

echo "setup-deps: installing: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
