#!/usr/bin/env bash
# Builds the Debian package in BUILD_DIR (cpack -G DEB) and checks its file list and dependencies.
# Run by ctest when configured with -DFLEXGEN_TEST_PACKAGE=ON (off by default: it repackages the build).
set -euo pipefail
build=${1:?usage: check_deb.sh BUILD_DIR}
cd "$build"
rm -f flexgen_*.deb
cpack -G DEB >/dev/null
deb=$(ls flexgen_*.deb)
files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/flexgen ./usr/lib/flexgen/libflexgen_spm.so ./usr/share/flexgen/data/webqa/test.jsonl \
         ./usr/share/flexgen/data/myriadlama/train.jsonl ./usr/share/bash-completion/completions/flexgen \
         ./usr/share/doc/flexgen/README.md ./usr/share/doc/flexgen/LICENSE; do
  grep -qx -- "$f" <<<"$files" || { echo "missing from $deb: $f"; exit 1; }
done
depends=$(dpkg-deb -f "$deb" Depends)
for p in libtorch1.13 libsentencepiece0 libpcre2-8-0 libpng16-16 libgomp1 libc6 libstdc++6; do
  grep -qw -- "$p" <<<"$depends" || { echo "Depends lacks $p: $depends"; exit 1; }
done
echo "$deb ok: $depends"
