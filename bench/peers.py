"""The attribution a user would write instead of `chargeback run`, for bench/peers.sh.

    python bench/peers.py duckdb MONTH_DIR PERIOD OUT_CSV
    python bench/peers.py polars MONTH_DIR PERIOD OUT_CSV
    python bench/peers.py check CHARGEBACK_OUT DUCKDB_CSV POLARS_CSV

Both peers read the same files as chargeback (MONTH_DIR/requests/*.parquet
and MONTH_DIR/model-catalog.json), keep one row per `request_id`, keep the
requests of the period (typed timestamps, UTC), price each token class at
the catalog price in force on the period's first day (the generated catalog
has one price per model; a token class without a price is priced as
uncached input, as chargeback's catalog does), resolve the logged model
through the catalog's names and aliases (lower-cased) and sum per team
(no team: `untagged`): requests, tokens, cost. Money is exact in both:
DECIMAL in DuckDB, Decimal in Polars. They write `team,requests,tokens,cost`
sorted by team.

`check` compares the per-team requests and tokens of both peers with the
invoices in chargeback's invoices.json (its usage is the bill's money split
by these tokens, so the amounts differ by design; the tokens and requests
must not), and the peers' catalog costs with each other. It exits 1 on any
difference.
"""

import csv
import datetime as dt
import json
import sys
from decimal import Decimal

TOKENS = ["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens"]
CLASSES = ["input", "cached_input", "cache_write", "output"]


def month_bounds(period):
    year, month = map(int, period.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.timezone.utc)
    return start, end


def price_rows(month, period):
    """(provider, name, input, cached_input, cache_write, output) per catalog
    name and alias, lower-cased, each once: what a user builds from the JSON."""
    first_day = period + "-01"
    with open(f"{month}/model-catalog.json") as f:
        catalog = json.load(f)
    rows = {}
    for m in catalog["models"]:
        in_force = [p for p in m["prices"] if p["effective_from"] <= first_day]
        if not in_force:
            continue
        p = max(in_force, key=lambda p: p["effective_from"])
        prices = tuple(Decimal(p.get(c, p["input"])) for c in CLASSES)
        for name in [m["model"], *m.get("aliases", [])]:
            rows[(m["provider"].lower(), name.lower())] = prices
    return [(prov, name, *prices) for (prov, name), prices in sorted(rows.items())]


def write(out, rows):
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["team", "requests", "tokens", "cost"])
        for r in sorted(rows):
            w.writerow(r)


def run_duckdb(month, period, out):
    import duckdb

    start, end = month_bounds(period)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE prices (provider TEXT, name TEXT, input DECIMAL(18,6), "
        "cached_input DECIMAL(18,6), cache_write DECIMAL(18,6), output DECIMAL(18,6))"
    )
    con.executemany("INSERT INTO prices VALUES (?, ?, ?, ?, ?, ?)", price_rows(month, period))
    rows = con.execute(
        f"""
        WITH requests AS (
            SELECT DISTINCT ON (request_id)
                request_id, "timestamp", provider, model, team,
                input_tokens, cached_input_tokens, cache_write_tokens, output_tokens
            FROM read_parquet('{month}/requests/*.parquet')
        )
        SELECT
            coalesce(nullif(trim(r.team), ''), 'untagged') AS team,
            count(*) AS requests,
            sum(coalesce(r.input_tokens, 0) + coalesce(r.cached_input_tokens, 0)
                + coalesce(r.cache_write_tokens, 0) + coalesce(r.output_tokens, 0)) AS tokens,
            sum(coalesce(r.input_tokens, 0) * p.input
                + coalesce(r.cached_input_tokens, 0) * p.cached_input
                + coalesce(r.cache_write_tokens, 0) * p.cache_write
                + coalesce(r.output_tokens, 0) * p.output) AS cost
        FROM requests r
        JOIN prices p ON p.provider = lower(trim(r.provider)) AND p.name = lower(trim(r.model))
        WHERE r."timestamp" >= ? AND r."timestamp" < ?
        GROUP BY 1
        """,
        [start, end],
    ).fetchall()
    # USD per million tokens × tokens, exact; the division in Python keeps it so.
    write(out, [(t, n, int(k), (Decimal(c) / 1_000_000).normalize()) for t, n, k, c in rows])


def run_polars(month, period, out):
    import polars as pl

    start, end = month_bounds(period)
    price = pl.Decimal(18, 6)
    prices = pl.LazyFrame(
        price_rows(month, period),
        schema={"provider": pl.String, "name": pl.String, **{c: price for c in CLASSES}},
        orient="row",
    )
    tokens = [pl.col(c).fill_null(0) for c in TOKENS]
    per_team = (
        pl.scan_parquet(f"{month}/requests/*.parquet")
        .select("request_id", "timestamp", "provider", "model", "team", *TOKENS)
        .unique(subset="request_id", keep="any")
        .filter(pl.col("timestamp").is_between(start, end, closed="left"))
        .join(
            prices,
            left_on=[
                pl.col("provider").str.strip_chars().str.to_lowercase(),
                pl.col("model").str.strip_chars().str.to_lowercase(),
            ],
            right_on=["provider", "name"],
        )
        .group_by(
            pl.col("team").str.strip_chars().replace("", None).fill_null("untagged")
        )
        .agg(
            pl.len().alias("requests"),
            pl.sum_horizontal(tokens).sum().alias("tokens"),
            pl.sum_horizontal(
                [t.cast(pl.Decimal(38, 0)) * pl.col(c) for t, c in zip(tokens, CLASSES)]
            )
            .sum()
            .alias("cost"),
        )
        .collect(engine="streaming")
    )
    write(
        out,
        [
            (t, n, k, (Decimal(c) / 1_000_000).normalize())
            for t, n, k, c in per_team.select("team", "requests", "tokens", "cost").iter_rows()
        ],
    )


def read_csv(path):
    with open(path) as f:
        return {r["team"]: r for r in csv.DictReader(f)}


def check(chargeback_out, duckdb_csv, polars_csv):
    with open(f"{chargeback_out}/invoices.json") as f:
        invoices = json.load(f)["invoices"]
    ours = {i["team"]: (int(i["requests"] or 0), int(i["tokens"] or 0)) for i in invoices}
    peers = {"DuckDB": read_csv(duckdb_csv), "Polars": read_csv(polars_csv)}
    bad = []
    for name, rows in peers.items():
        theirs = {t: (int(r["requests"]), int(r["tokens"])) for t, r in rows.items()}
        for team in sorted(set(ours) | set(theirs)):
            if ours.get(team) != theirs.get(team):
                bad.append(f"{team}: chargeback {ours.get(team)}, {name} {theirs.get(team)} (requests, tokens)")
    d, p = peers["DuckDB"], peers["Polars"]
    for team in sorted(set(d) & set(p)):
        if Decimal(d[team]["cost"]) != Decimal(p[team]["cost"]):
            bad.append(f"{team}: catalog cost DuckDB {d[team]['cost']}, Polars {p[team]['cost']}")
    if bad:
        print(f"peers.py: the per-team totals disagree ({len(bad)}):", file=sys.stderr)
        for b in bad[:20]:
            print("  " + b, file=sys.stderr)
        sys.exit(1)
    requests = sum(r for r, _ in ours.values())
    tokens = sum(t for _, t in ours.values())
    cost = sum(Decimal(r["cost"]) for r in d.values())
    print(
        f"agree: {len(ours)} teams, {requests:,} requests, {tokens:,} tokens — chargeback's invoices, "
        f"DuckDB and Polars per team; catalog cost USD {cost} in both peers"
    )


def main():
    if len(sys.argv) == 5 and sys.argv[1] in ("duckdb", "polars"):
        {"duckdb": run_duckdb, "polars": run_polars}[sys.argv[1]](*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
