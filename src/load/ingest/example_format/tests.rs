//! The example format's fixture test: told apart from every real format,
//! then read through the shared loop.

use super::*;
use crate::context::Context;
use crate::load::ingest::{BILL_FORMATS, detect};
use crate::load::store::Store;
use crate::money::Decimal;
use crate::schema::quarantine;

const FIXTURE: &str = "\
ChargePeriodStart,SubAccountId,x_Model,x_UsageType,ConsumedQuantity,EffectiveCost,BillingCurrency
2025-03-02T00:00:00Z,proj-a,example-large,input,1000000,2.50,USD
2025-03-02T00:00:00Z,proj-a,example-large,output,100000,1.25,usd
2025-02-28T00:00:00Z,proj-a,example-large,input,5,0.01,USD
2025-03-03T00:00:00Z,proj-b,example-large,input,10,0.02,EUR
2025-03-04T00:00:00Z,proj-b,example-large,input,10,\"0,02\",USD
";

/// A line's row, scope, token class, tokens and cost.
type Line<'a> = (u64, &'a str, Option<UsageType>, Option<Decimal>, Decimal);

/// Every real format's rules, and this one's.
fn registry() -> Vec<BillFormat<Key>> {
    BILL_FORMATS
        .iter()
        .map(|f| BillFormat {
            format: Key::Real(f.format),
            rules: f.rules,
            read: f.read,
        })
        .chain([FORMAT])
        .collect()
}

fn detect(ctx: &Context, url: &str) -> Key {
    let formats = registry();
    let formats: Vec<&BillFormat<Key>> = formats.iter().collect();
    detect::bill_format_among(&formats, ctx, url, None, None).unwrap()
}

#[test]
fn the_example_is_told_apart_from_focus_and_read_through_the_shared_loop() {
    let ctx = Context::new(Store::new());
    ctx.store
        .put_memory("example.csv", FIXTURE.as_bytes().to_vec());
    ctx.store.put_memory(
        "focus.csv",
        FIXTURE.replace("EffectiveCost", "BilledCost").into_bytes(),
    );
    // The real formats alone cannot tell what it is; its own rule can.
    assert!(detect::billing_format(&ctx, "memory://example.csv", None, None).is_err());
    assert_eq!(detect(&ctx, "memory://example.csv"), Key::Example);
    assert_eq!(
        detect(&ctx, "memory://focus.csv"),
        Key::Real(BillingFormat::Focus)
    );

    let catalog = Catalog::parse(
        r#"{"models": [{"provider": "example-ai", "model": "example-large",
            "prices": [{"effective_from": "2025-01-01", "input": "2.50", "output": "12.50"}]}]}"#,
        "catalog.json",
    )
    .unwrap();
    let ReadBill::Text(read) = FORMAT.read else {
        panic!("the example is read from its text");
    };
    let period = "2025-03".parse().unwrap();
    // Without a rate, the EUR row stops the run, naming its cell.
    let err = read(
        "memory://example.csv",
        FIXTURE,
        &catalog,
        period,
        &FxTable::none("USD"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "memory://example.csv:4:BillingCurrency: billed in `EUR` on 2025-03-03, but no `[[fx]]` rate from `EUR` to `USD` is in force that day"
    );
    let rates = FxTable::new(
        "USD",
        [crate::fx::Rate {
            from: "EUR".into(),
            rate: "1.0842".parse().unwrap(),
            effective_from: "2025-03-01".parse().unwrap(),
        }],
    );
    let bill = read("memory://example.csv", FIXTURE, &catalog, period, &rates).unwrap();
    assert_eq!((bill.rows_read, bill.outside_period), (5, 1));
    let lines: Vec<Line<'_>> = bill
        .lines
        .iter()
        .map(|l| (l.row, l.scope.as_str(), l.usage_type, l.quantity, l.cost))
        .collect();
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(
        lines,
        [
            (
                1,
                "proj-a",
                Some(UsageType::Input),
                Some(d("1000000")),
                d("2.50")
            ),
            (
                2,
                "proj-a",
                Some(UsageType::Output),
                Some(d("100000")),
                d("1.25")
            ),
            // 0.02 EUR × 1.0842 = 0.021684 → 0.02 USD.
            (
                4,
                "proj-b",
                Some(UsageType::Input),
                Some(d("10")),
                d("0.02")
            ),
        ]
    );
    let converted = bill.lines[2].fx.as_ref().unwrap();
    assert_eq!(
        (converted.cost, converted.rate.rate),
        (d("0.02"), d("1.0842"))
    );
    assert!(bill.lines[..2].iter().all(|l| l.fx.is_none()));
    assert!(
        bill.lines
            .iter()
            .all(|l| l.model.as_deref() == Some("example-large")
                && l.source == "memory://example.csv")
    );
    let q: Vec<(u64, &str, &str)> = bill
        .quarantine
        .iter()
        .map(|q| (q.row, q.column.as_str(), q.field(quarantine::COST)))
        .collect();
    assert_eq!(q, [(5, "EffectiveCost", "0,02")]);
}
