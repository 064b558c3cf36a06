//! Effective-dated exchange rates (`[[fx]]`): the rate in force on a day,
//! and a bill amount converted with it into the invoice currency, exactly
//! and rounded once. It knows nothing of bills or invoices; the bill row
//! loop converts with it and the reconciliation and invoices print what it
//! used.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::money::{Decimal, MAX_AMOUNT, minor_units, round_line};

/// The largest rate a policy may state: a million units of the invoice
/// currency for one of the bill's (the weakest currencies are about
/// 10⁵ to the dollar). With amounts bounded by [`MAX_AMOUNT`], a product
/// stays far inside the 28 digits of a `Decimal`.
pub const MAX_FX_RATE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// One rate: how many units of the invoice currency one unit of `from`
/// is, from `effective_from` until the next rate of `from`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Rate {
    pub from: String,
    pub rate: Decimal,
    pub effective_from: NaiveDate,
}

/// How a bill line was converted: what the bill stated, and the rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Converted {
    /// The cost as the bill states it, in `rate.from`.
    pub cost: Decimal,
    pub rate: Rate,
}

/// Why an amount could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoConversion {
    /// No rate of the currency is in force on the day: none at all, or
    /// only later ones (`first` is the earliest, when there is one).
    NoRate { first: Option<NaiveDate> },
    /// The converted amount is beyond [`MAX_AMOUNT`].
    TooLarge,
}

/// The rates of a policy into its invoice currency, by bill currency, each
/// currency's rates in date order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FxTable {
    to: String,
    rates: BTreeMap<String, Vec<Rate>>,
}

impl FxTable {
    /// The table of `rates` into `to`. The policy has checked that they
    /// are all into `to` and that no currency has two rates of one day.
    pub fn new(to: &str, rates: impl IntoIterator<Item = Rate>) -> FxTable {
        let mut by: BTreeMap<String, Vec<Rate>> = BTreeMap::new();
        for r in rates {
            by.entry(r.from.clone()).or_default().push(r);
        }
        for v in by.values_mut() {
            v.sort_by_key(|r| r.effective_from);
        }
        FxTable {
            to: to.to_string(),
            rates: by,
        }
    }

    /// Invoices in `to`, and no rates: any other currency has none.
    pub fn none(to: &str) -> FxTable {
        FxTable::new(to, [])
    }

    /// The invoice currency.
    pub fn currency(&self) -> &str {
        &self.to
    }

    /// The rate of `from` in force on `day`: the latest that took effect
    /// on or before it.
    pub fn rate_on(&self, from: &str, day: NaiveDate) -> Option<&Rate> {
        let rates = self.rates.get(from)?;
        let n = rates.partition_point(|r| r.effective_from <= day);
        n.checked_sub(1).map(|i| &rates[i])
    }

    /// `cost`, billed in `from` (any case) on `day`, in the invoice
    /// currency: itself when `from` is the invoice currency, else
    /// `cost × rate` rounded once to the invoice currency's minor unit,
    /// half away from zero, with what was converted.
    pub fn convert(
        &self,
        from: &str,
        day: NaiveDate,
        cost: Decimal,
    ) -> Result<(Decimal, Option<Converted>), NoConversion> {
        if from.eq_ignore_ascii_case(&self.to) {
            return Ok((cost, None));
        }
        let from = from.to_ascii_uppercase();
        let Some(rate) = self.rate_on(&from, day) else {
            let first = self
                .rates
                .get(&from)
                .and_then(|r| r.first())
                .map(|r| r.effective_from);
            return Err(NoConversion::NoRate { first });
        };
        let converted = cost
            .checked_mul(rate.rate)
            .map(|exact| round_line(exact, minor_units(&self.to)))
            .filter(|c| c.abs() <= MAX_AMOUNT)
            .ok_or(NoConversion::TooLarge)?;
        Ok((
            converted,
            Some(Converted {
                cost,
                rate: rate.clone(),
            }),
        ))
    }
}

/// The rates that touched something, in words: `EUR at 1.0842 (rate of
/// 2025-01-01) and 1.0910 (rate of 2025-01-15)`, each rate as the policy
/// writes it; currencies joined by `;`. `None` when no rate did.
pub fn rates_in_words<'a>(rates: impl IntoIterator<Item = &'a Rate>) -> Option<String> {
    let mut by: BTreeMap<&str, Vec<&Rate>> = BTreeMap::new();
    for r in rates {
        let v = by.entry(&r.from).or_default();
        if !v.contains(&r) {
            v.push(r);
        }
    }
    let phrases: Vec<String> = by
        .into_iter()
        .map(|(from, mut rates)| {
            rates.sort_by_key(|r| (r.effective_from, r.rate));
            let each: Vec<String> = rates
                .iter()
                .map(|r| format!("{} (rate of {})", r.rate, r.effective_from))
                .collect();
            let list = match each.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            format!("{from} at {list}")
        })
        .collect();
    (!phrases.is_empty()).then(|| phrases.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, d).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn rate(from: &str, r: &str, d: u32) -> Rate {
        Rate {
            from: from.into(),
            rate: dec(r),
            effective_from: day(d),
        }
    }

    fn table() -> FxTable {
        FxTable::new(
            "USD",
            [
                rate("EUR", "1.0910", 15),
                rate("EUR", "1.0842", 1),
                rate("JPY", "0.0064", 1),
            ],
        )
    }

    #[test]
    fn the_rate_in_force_is_the_latest_that_took_effect() {
        let t = table();
        assert_eq!(t.rate_on("EUR", day(1)).unwrap().rate, dec("1.0842"));
        assert_eq!(t.rate_on("EUR", day(14)).unwrap().rate, dec("1.0842"));
        assert_eq!(t.rate_on("EUR", day(15)).unwrap().rate, dec("1.0910"));
        assert_eq!(t.rate_on("EUR", day(31)).unwrap().rate, dec("1.0910"));
        assert_eq!(t.rate_on("GBP", day(15)), None);
        let later = FxTable::new("USD", [rate("EUR", "1.1", 10)]);
        assert_eq!(later.rate_on("EUR", day(9)), None);
    }

    #[test]
    fn a_converted_amount_is_rounded_once_half_away_from_zero() {
        let t = table();
        // 12.345 × 1.0842 = 13.384449 → 13.38; −0.005 × 1.0910 = −0.005455 → −0.01.
        let (usd, how) = t.convert("eur", day(3), dec("12.345")).unwrap();
        assert_eq!(usd.to_string(), "13.38");
        assert_eq!(
            how,
            Some(Converted {
                cost: dec("12.345"),
                rate: rate("EUR", "1.0842", 1),
            })
        );
        let (usd, _) = t.convert("EUR", day(20), dec("-0.005")).unwrap();
        assert_eq!(usd.to_string(), "-0.01");
        // The invoice currency itself is not touched, not even rounded.
        assert_eq!(
            t.convert("usd", day(3), dec("0.000123")).unwrap(),
            (dec("0.000123"), None)
        );
        // Into a currency without minor units: whole yen.
        let yen = FxTable::new("JPY", [rate("USD", "151.5", 1)]);
        assert_eq!(
            yen.convert("USD", day(2), dec("1.01"))
                .unwrap()
                .0
                .to_string(),
            "153"
        );
    }

    #[test]
    fn a_currency_without_a_rate_that_day_says_when_its_first_rate_starts() {
        let t = FxTable::new("USD", [rate("EUR", "1.1", 10)]);
        assert_eq!(
            t.convert("EUR", day(9), Decimal::ONE),
            Err(NoConversion::NoRate {
                first: Some(day(10))
            })
        );
        assert_eq!(
            t.convert("GBP", day(9), Decimal::ONE),
            Err(NoConversion::NoRate { first: None })
        );
        let big = FxTable::new("USD", [rate("VND", "1000000", 1)]);
        assert_eq!(
            big.convert("VND", day(2), MAX_AMOUNT),
            Err(NoConversion::TooLarge)
        );
    }

    #[test]
    fn rates_are_named_once_each_by_currency_and_date() {
        let a = rate("EUR", "1.0842", 1);
        let b = rate("EUR", "1.0910", 15);
        let g = rate("GBP", "1.27", 1);
        assert_eq!(rates_in_words([]), None);
        assert_eq!(
            rates_in_words([&a, &a]).unwrap(),
            "EUR at 1.0842 (rate of 2025-01-01)"
        );
        assert_eq!(
            rates_in_words([&b, &g, &a]).unwrap(),
            "EUR at 1.0842 (rate of 2025-01-01) and 1.0910 (rate of 2025-01-15); GBP at 1.27 (rate of 2025-01-01)"
        );
    }
}
