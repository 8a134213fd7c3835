#!/usr/bin/env bash
# Runs one fuzz target for SECONDS (default 600) from the committed seeds.
# cargo-fuzz needs nightly features; the stable toolchain is allowed to use them with
# RUSTC_BOOTSTRAP=1 (no other toolchain is available on our machines).
# Usage: fuzz/run.sh TARGET [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
target=$1
secs=${2:-600}
mkdir -p "corpus/$target"
cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1
