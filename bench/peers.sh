#!/usr/bin/env bash
# Times `chargeback run` against what a user would write instead, on one
# generated month, and prints the ratios.
#
#   bench/peers.sh                    # 10M requests, 40 teams, 5 runs each
#   bench/peers.sh --runs 7 --data /tmp/chargeback-bench
#   bench/peers.sh --rows 1000000 --teams 8 --files 4
#
# The month is written once by examples/generate_month.rs (Parquet, zstd,
# seed 42, January 2025, timestamps typed `timestamp[ms, UTC]`, with the
# policy it writes) under --data/month-peers-<rows>-<teams> and reused
# while its parameters are the same. Then, in turn, --runs times each:
#
#   chargeback  the whole `chargeback run`: ingest, exact de-duplication,
#               reconcile, attribute, every invoice in HTML and PDF, the
#               summary, the ledgers, publish;
#   duckdb      DuckDB (Python `duckdb`): `SELECT DISTINCT ON (request_id)`
#               over the month's Parquet files, then tokens × catalog price
#               summed per team (bench/peers.py);
#   polars      Python Polars: `scan_parquet`, `unique(subset="request_id")`,
#               the same join and sum, `collect(engine="streaming")`.
#
# The peers do less than chargeback (no bill, no reconciliation, no
# documents); each prints per-team requests, tokens and catalog cost, and
# the script fails unless their per-team requests and tokens are those of
# chargeback's invoices.json (bench/peers.py check). Wall time and peak RSS
# come from `/usr/bin/time -v`; the table shows medians of --runs runs and
# the ratios chargeback / DuckDB (targets: time ≤ 1/3, memory ≤ 1/2).
# DuckDB and Polars are installed from PyPI into a venv under
# ~/.cache/llm-chargeback/peers-venv (made when missing; --venv to choose).
# Run it on a quiet machine; the load average is printed with the table.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/tmp/chargeback-bench
rows=10000000
teams=40
files=10
runs=5
venv=$HOME/.cache/llm-chargeback/peers-venv
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --teams) teams=$2; shift 2 ;;
        --files) files=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --venv) venv=$2; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "bench/peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "bench/peers.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import duckdb, polars' 2>/dev/null; then
    echo "installing duckdb and polars into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb polars
fi
py=$venv/bin/python
versions=$("$py" -c 'import duckdb, polars; print(f"DuckDB {duckdb.__version__}, Polars {polars.__version__}")')

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-chargeback/target}"
# The binary people install: the dist profile (fat LTO, Cargo.toml).
cargo build --profile dist --locked --quiet --bin chargeback
bin=$CARGO_TARGET_DIR/dist
mkdir -p "$data"

month=$data/month-peers-$rows-$teams
extra="--timestamps typed"
stamp="rows=$rows files=$files teams=$teams seed=42 period=2025-01 $extra $(sha256sum examples/generate_month.rs | cut -c1-16)"
if [ "$(cat "$month/.generated" 2>/dev/null)" != "$stamp" ]; then
    echo "generating $rows requests, $files files, $teams teams in $month" >&2
    rm -rf "$month"
    cargo build --release --locked --quiet --example generate_month
    # shellcheck disable=SC2086 # $extra is options
    "$CARGO_TARGET_DIR/release/examples/generate_month" --out "$month" --rows "$rows" --files "$files" \
        --teams "$teams" --seed 42 --period 2025-01 --policy $extra >&2
    echo "$stamp" >"$month/.generated"
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
seconds() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'; }

work=$data/peers
rm -rf "$work" && mkdir -p "$work"
out=$work/out
# Run <n> of a tool under /usr/bin/time: its wall seconds and peak KB appended.
measure() {
    local tool=$1 n=$2
    shift 2
    /usr/bin/time -v -o "$work/time" "$@"
    awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/time" | seconds >>"$work/wall-$tool"
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time" >>"$work/rss-$tool"
    echo "$tool run $n: $(tail -1 "$work/wall-$tool") s, $(tail -1 "$work/rss-$tool") KB" >&2
}
loads=()
for i in $(seq "$runs"); do
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    measure chargeback "$i" "$bin/chargeback" run -c "$month/chargeback.toml" -p 2025-01 \
        --out "$out" --force --quiet
    measure duckdb "$i" "$py" bench/peers.py duckdb "$month" 2025-01 "$work/duckdb.csv"
    measure polars "$i" "$py" bench/peers.py polars "$month" 2025-01 "$work/polars.csv"
done
"$py" bench/peers.py check "$out" "$work/duckdb.csv" "$work/polars.csv"

for tool in chargeback duckdb polars; do
    declare "wall_$tool=$(median <"$work/wall-$tool")"
    declare "rss_$tool=$(median <"$work/rss-$tool")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "not met") }'; }
time_ratio=$(ratio "$wall_chargeback" "$wall_duckdb")
rss_ratio=$(ratio "$rss_chargeback" "$rss_duckdb")

cores=$(nproc)
mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "Machine: $cores cores ($cpu), $mem_gib GiB; load average at each round: ${loads[*]}"
echo "Month: $(echo "$rows" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') requests, $files files, $teams teams (typed timestamps); $versions; median of $runs runs"
echo
echo "| tool | wall | peak RSS |"
echo "|---|---:|---:|"
for tool in chargeback duckdb polars; do
    w=wall_$tool r=rss_$tool
    printf '| %s | %.2f s | %.0f MiB |\n' "$tool" "${!w}" "$(awk -v k="${!r}" 'BEGIN { print k / 1024 }')"
done
echo
echo "chargeback / DuckDB: time $time_ratio (target ≤ 0.33: $(verdict "$time_ratio" 0.3334)), memory $rss_ratio (target ≤ 0.50: $(verdict "$rss_ratio" 0.5))"
echo "chargeback / Polars: time $(ratio "$wall_chargeback" "$wall_polars"), memory $(ratio "$rss_chargeback" "$rss_polars")"
