#!/usr/bin/env bash
# Times `chargeback run` on generated months and prints the README's table.
#
#   bench/run.sh                      # 1M, 10M, 100M requests and 1,000 teams
#   bench/run.sh --sizes 1M,10M --runs 5 --data /tmp/chargeback-bench
#   bench/run.sh --sizes teams-even   # 1,000 teams of ~1,000 requests each
#
# Each month is written once by examples/generate_month.rs (Parquet, zstd,
# seed 42, January 2025, with the policy it writes) under --data and reused
# while its parameters are the same. `teams` is the Zipf month (a few large
# teams, a long tail, timestamps as text); `teams-even` gives each of its
# 1,000 teams about 1,000 requests and types the timestamps
# (`timestamp[ms, UTC]`), as a month exported by a warehouse is. Each
# run is a whole `chargeback run`: ingest, reconcile, attribute, render
# every HTML and PDF document, publish.
# Wall time and peak RSS come from `/usr/bin/time -v`; the table shows the
# median of --runs runs (3 for 100M unless --runs is given) and the median
# time of the slowest stage from `--timings`. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/tmp/chargeback-bench
sizes=1M,10M,100M,teams
runs=
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench/run.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-chargeback/target}"
# The binary people install: the dist profile (fat LTO, Cargo.toml).
cargo build --profile dist --locked --quiet --bin chargeback
bin=$CARGO_TARGET_DIR/dist
mkdir -p "$data"

# name → rows, files, teams, and the generator's other options
params() {
    case "$1" in
        1M) echo "1000000 4 8" ;;
        10M) echo "10000000 10 8" ;;
        100M) echo "100000000 100 8" ;;
        teams) echo "1000000 4 1000" ;;
        teams-even) echo "1000000 4 1000 --timestamps typed --team-weights even" ;;
        *) echo "bench/run.sh: unknown size $1 (1M, 10M, 100M, teams, teams-even)" >&2; exit 2 ;;
    esac
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# "h:mm:ss" or "m:ss.cc" → seconds
seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'; }

cores=$(nproc)
mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
rows_out=()
for size in ${sizes//,/ }; do
    read -r rows files teams extra <<<"$(params "$size")"
    month=$data/month-$size
    stamp="rows=$rows files=$files teams=$teams seed=42 period=2025-01${extra:+ $extra} $(sha256sum examples/generate_month.rs | cut -c1-16)"
    if [ "$(cat "$month/.generated" 2>/dev/null)" != "$stamp" ]; then
        echo "generating $size ($rows requests, $files files, $teams teams) in $month" >&2
        rm -rf "$month"
        # Built only when a month is written: with dev-dependencies its
        # features differ, and a scratch release build of it is long.
        cargo build --release --locked --quiet --example generate_month
        "$CARGO_TARGET_DIR/release/examples/generate_month" --out "$month" --rows "$rows" --files "$files" \
            --teams "$teams" --seed 42 --period 2025-01 --policy $extra >&2
        echo "$stamp" >"$month/.generated"
    fi
    n=${runs:-$([ "$size" = 100M ] && echo 3 || echo 5)}
    : >"$data/wall-$size" && : >"$data/rss-$size" && : >"$data/stages-$size"
    for i in $(seq "$n"); do
        /usr/bin/time -v -o "$data/time-$size" "$bin/chargeback" run -c "$month/chargeback.toml" \
            -p 2025-01 --out "$data/out-$size" --force --quiet --timings 2>"$data/timings-$size"
        awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$data/time-$size" | seconds >>"$data/wall-$size"
        awk -F': ' '/Maximum resident set size/ { print $2 }' "$data/time-$size" >>"$data/rss-$size"
        awk '/^timing: / { t = $(NF - 1); sub(/^timing: /, ""); sub(/ +[0-9.]+ s$/, ""); print $0 "\t" t }' \
            "$data/timings-$size" >>"$data/stages-$size"
        echo "$size run $i: $(tail -1 "$data/wall-$size") s, $(tail -1 "$data/rss-$size") KB" >&2
    done
    wall=$(median <"$data/wall-$size")
    rss=$(median <"$data/rss-$size")
    # The slowest stage, by its median time.
    slowest=$(cut -f1 "$data/stages-$size" | grep -v '^total$' | sort -u | while IFS= read -r stage; do
        printf '%s\t%s\n' "$(awk -F'\t' -v s="$stage" '$1 == s { print $2 }' "$data/stages-$size" | median)" "$stage"
    done | sort -g -r | head -1)
    render=$(awk -F'\t' '$1 ~ /^render/ { print $2 }' "$data/stages-$size" | median)
    rows_out+=("$(printf '| %s | %s | %s | %s | %.2f s | %.0f MiB | %.2f s | %s (%.2f s) |' \
        "$size" "$(echo "$rows" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')" "$files" "$teams" "$wall" \
        "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$render" \
        "$(cut -f2 <<<"$slowest")" "$(cut -f1 <<<"$slowest")")")
done

echo
echo "Machine: $cores cores ($cpu), $mem_gib GiB; median of ${runs:-5 (3 for 100M)} runs of \`chargeback run\`"
echo
echo "| month | requests | files | teams | wall | peak RSS | render (HTML + PDF) | slowest stage |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows_out[@]}"
