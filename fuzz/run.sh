#!/usr/bin/env bash
# Builds webhook_parser_fuzz with clang in its own build directory and fuzzes it for a bounded
# time, starting from a copy of the seed corpus so the checked-in seeds stay as they are.
# Exits non-zero when the fuzzer finds a crash, leak, timeout or sanitizer report; the input
# that caused it is saved under fuzz-corpus-out/ (ignored by git).
#
#   WACHAT_FUZZ_SECONDS    how long to fuzz (default 60)
#   WACHAT_FUZZ_BUILD_DIR  build directory (default <repo>/build-fuzz)
#   WACHAT_FUZZ_JOBS       parallel compile jobs (default 1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${WACHAT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${WACHAT_FUZZ_SECONDS:-60}"
jobs="${WACHAT_FUZZ_JOBS:-1}"
artifacts="$root/fuzz-corpus-out"

export CC=clang CXX=clang++
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" \
  -DWACHAT_FUZZ=ON -DWACHAT_TESTS=OFF -DWACHAT_BENCH=OFF
cmake --build "$build" -j"$jobs" --target webhook_parser_fuzz

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts"
cp "$root"/fuzz/corpus/webhook_parser/*.json "$work/corpus/"

echo "fuzzing webhook_parser_fuzz for ${seconds}s" >&2
status=0
"$build/fuzz/webhook_parser_fuzz" "$work/corpus" \
  -dict="$root/fuzz/webhook_parser.dict" \
  -max_total_time="$seconds" \
  -max_len=65536 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/webhook_parser-" || status=$?

if [[ $status -ne 0 ]]; then
  echo "webhook_parser_fuzz failed (exit $status); inputs saved in $artifacts" >&2
  exit "$status"
fi
echo "webhook_parser_fuzz: no crash in ${seconds}s ($(ls "$work/corpus" | wc -l) corpus inputs)" >&2
