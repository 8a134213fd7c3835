#!/usr/bin/env bash
# Fuzzes one target, or every target in turn, from the committed seeds, with debug
# assertions and overflow checks on (-a: arithmetic on hostile packet time must
# saturate), then minimises what was found and keeps the small inputs as seeds.
# cargo-fuzz needs nightly features; the stable toolchain is allowed to use them with
# RUSTC_BOOTSTRAP=1 (no other toolchain is available on our machines).
# Usage: fuzz/run.sh TARGET|all [MINUTES]   (default 10 minutes per target)
# Findings land in fuzz/artifacts/TARGET/; each run's final stats in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")"
which=$1
mins=${2:-10}
if [[ $which == all ]]; then
    targets=$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^apiwatch-fuzz$')
else
    targets=$which
fi
mkdir -p logs
export RUSTC_BOOTSTRAP=1
for t in $targets; do
    mkdir -p "corpus/$t" "seeds/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    echo "== $t: $mins min" >&2
    status=0
    cargo fuzz run -O -a "$t" "corpus/$t" -- \
        -max_total_time=$((mins * 60)) -max_len=131072 -rss_limit_mb=2048 \
        -print_final_stats=1 >"logs/$t.log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|SUMMARY|panicked" "logs/$t.log" >&2 || true
    [[ $status -eq 0 ]] || echo "!! $t: finding, see fuzz/artifacts/$t and fuzz/logs/$t.log" >&2
    # Keep a small minimised corpus: the inputs up to 8 KiB that still add coverage,
    # at most 200 per target.
    cargo fuzz cmin -O -a "$t" "corpus/$t" -- -max_len=131072 >/dev/null 2>&1 || true
    room=$((200 - $(ls "seeds/$t" | wc -l)))
    if ((room > 0)); then
        find "corpus/$t" -type f -size -8k | head -n "$room" | xargs -r cp -n -t "seeds/$t/" || true
    fi
done
