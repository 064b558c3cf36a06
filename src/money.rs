//! Exact money: parsing, cent rounding and largest-remainder allocation.
//!
//! Everything here is `rust_decimal`; no float ever holds an amount. This
//! module imports nothing of ours, so every stage can use it.

use std::cmp::Ordering;
use std::fmt;

pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;

/// The largest amount, in currency units, that an input may state (a bill
/// row, a fee, a budget): a quadrillion. Sums of such amounts over any
/// month that fits in memory, and their products with a rate of at most
/// [`MAX_RATE`], stay far inside the 28 digits of a `Decimal`, so the
/// arithmetic after parsing cannot overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0); // 10^15

/// The largest rate (markup, fee rate) a policy may state: 10, or 1,000 %.
pub const MAX_RATE: Decimal = Decimal::TEN;

/// Why a text is not an exact decimal amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAmountError {
    pub text: String,
    /// A number, but beyond [`MAX_AMOUNT`].
    pub too_large: bool,
}

impl fmt::Display for ParseAmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.too_large {
            write!(
                f,
                "`{}` is beyond ±{MAX_AMOUNT}, the largest amount chargeback adds up",
                self.text
            )
        } else {
            write!(f, "`{}` is not a decimal number", self.text)
        }
    }
}

impl std::error::Error for ParseAmountError {}

/// Parses a decimal as written in an export: `12.5`, `-0.000123`, `1.2E-5`,
/// with surrounding blanks. The text itself is parsed, so `0.1` is exactly
/// one tenth.
pub fn parse_amount(text: &str) -> Result<Decimal, ParseAmountError> {
    let t = text.trim();
    let err = || ParseAmountError {
        text: text.to_string(),
        too_large: false,
    };
    if t.is_empty() {
        return Err(err());
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let v = if t.contains(['e', 'E']) {
        Decimal::from_scientific(t).map_err(|_| err())?
    } else {
        t.parse::<Decimal>().map_err(|_| err())?
    };
    if v.abs() > MAX_AMOUNT {
        return Err(ParseAmountError {
            too_large: true,
            ..err()
        });
    }
    Ok(v)
}

/// Minor units of an ISO 4217 currency (cents for most).
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

/// Rounds an amount to `scale` places, half away from zero: the rule an
/// invoice reader expects for a single computed line (markup, fee).
pub fn round_line(amount: Decimal, scale: u32) -> Decimal {
    let mut r = amount.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

/// Formats an amount with exactly `scale` places and no exponent.
pub fn format_amount(amount: Decimal, scale: u32) -> String {
    let mut r = round_line(amount, scale);
    if r.is_zero() {
        r = Decimal::ZERO;
        r.rescale(scale);
    }
    r.to_string()
}

/// Rounds every amount to `scale` places so that the rounded amounts add up
/// to `target` exactly (largest-remainder / Hamilton method).
///
/// Each amount is floored to the minor unit; the units still missing to
/// reach `target` go one each to the amounts with the largest remainders,
/// ties to the earlier index. When `target` is within one unit of the exact
/// sum, every rounded amount is within one unit of its exact value.
pub fn largest_remainder(amounts: &[Decimal], target: Decimal, scale: u32) -> Vec<Decimal> {
    let unit = Decimal::new(1, scale);
    let mut floors = Vec::with_capacity(amounts.len());
    let mut remainders = Vec::with_capacity(amounts.len());
    let mut floor_sum = Decimal::ZERO;
    for &a in amounts {
        let mut f = a.round_dp_with_strategy(scale, RoundingStrategy::ToNegativeInfinity);
        f.rescale(scale);
        floor_sum += f;
        remainders.push(a - f);
        floors.push(f);
    }
    if amounts.is_empty() {
        return floors;
    }
    // Whole units still to hand out; an integer because target and floors
    // are both multiples of `unit`.
    let missing = ((round_line(target, scale) - floor_sum) / unit)
        .trunc()
        .mantissa();
    let n = amounts.len() as i128;
    let each = missing.div_euclid(n);
    let extra = missing.rem_euclid(n) as usize;
    let mut order: Vec<usize> = (0..amounts.len()).collect();
    order.sort_by(|&a, &b| match remainders[b].cmp(&remainders[a]) {
        Ordering::Equal => a.cmp(&b),
        o => o,
    });
    let each = Decimal::from_i128_with_scale(each, 0) * unit;
    for f in floors.iter_mut() {
        *f += each;
    }
    for &i in order.iter().take(extra) {
        floors[i] += unit;
    }
    for f in floors.iter_mut() {
        f.rescale(scale);
    }
    floors
}

/// Places kept on the parts of a split: far below a cent, and few enough
/// that sums of parts stay exact within the 28 digits of a `Decimal`.
pub const SPLIT_PLACES: u32 = 12;

/// Splits `total` over `weights` in proportion, so that the parts add up to
/// `total` exactly: parts are cut to [`SPLIT_PLACES`] (or the total's own
/// places, if more), and what the cut leaves goes to the largest part.
/// Zero total weight gives no split (`None`).
pub fn split_exact(total: Decimal, weights: &[Decimal]) -> Option<Vec<Decimal>> {
    let sum: Decimal = weights.iter().copied().sum();
    if sum.is_zero() {
        return None;
    }
    let places = total.scale().max(SPLIT_PLACES);
    let mut parts: Vec<Decimal> = weights
        .iter()
        .map(|w| {
            if w.is_zero() {
                Decimal::ZERO
            } else {
                // Divide first when the product would lose digits.
                total
                    .checked_mul(*w)
                    .and_then(|p| p.checked_div(sum))
                    .unwrap_or_else(|| total / sum * *w)
                    .round_dp_with_strategy(places, RoundingStrategy::ToZero)
            }
        })
        .collect();
    let residual = total - parts.iter().copied().sum::<Decimal>();
    if !residual.is_zero() {
        let largest = (0..parts.len())
            .max_by(|&a, &b| parts[a].abs().cmp(&parts[b].abs()).then(b.cmp(&a)))
            .expect("weights are not empty");
        parts[largest] += residual;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        parse_amount(s).unwrap()
    }

    #[test]
    fn amounts_beyond_the_bound_are_refused_in_words() {
        assert_eq!(MAX_AMOUNT.to_string(), "1000000000000000");
        assert_eq!(d("-1000000000000000"), -MAX_AMOUNT);
        for text in [
            "1000000000000000.01",
            "1e16",
            "79228162514264337593543950335",
        ] {
            let e = parse_amount(text).unwrap_err();
            assert!(e.too_large, "{text}");
            assert_eq!(
                e.to_string(),
                format!(
                    "`{text}` is beyond ±1000000000000000, the largest amount chargeback adds up"
                )
            );
        }
        assert_eq!(
            parse_amount("1e30").unwrap_err().to_string(),
            "`1e30` is not a decimal number"
        );
    }

    #[test]
    fn parses_export_notations() {
        assert_eq!(d("0.1") + d("0.2"), d("0.3"));
        assert_eq!(d("1.2E-5"), d("0.000012"));
        assert_eq!(d(" +3.50 "), d("3.5"));
        assert_eq!(d("-0.004"), Decimal::new(-4, 3));
        assert_eq!(
            parse_amount("12,5").unwrap_err().to_string(),
            "`12,5` is not a decimal number"
        );
        assert!(parse_amount("").is_err());
        assert!(parse_amount("NaN").is_err());
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(format_amount(d("2.345"), 2), "2.35");
        assert_eq!(format_amount(d("-2.345"), 2), "-2.35");
        assert_eq!(format_amount(d("7"), 2), "7.00");
        assert_eq!(format_amount(d("-0.001"), 2), "0.00");
        assert_eq!(format_amount(d("1234.5"), 0), "1235");
    }

    #[test]
    fn largest_remainder_hands_out_missing_cents() {
        let parts = largest_remainder(&[d("0.333"), d("0.333"), d("0.334")], d("1.00"), 2);
        assert_eq!(parts, vec![d("0.33"), d("0.33"), d("0.34")]);
        let parts = largest_remainder(&[d("10.005"), d("10.005")], d("20.01"), 2);
        assert_eq!(parts, vec![d("10.01"), d("10.00")]);
        // Negative amounts (credits) floor towards minus infinity.
        let parts = largest_remainder(&[d("-1.005"), d("3.005")], d("2.00"), 2);
        assert_eq!(parts.iter().copied().sum::<Decimal>(), d("2.00"));
    }

    #[test]
    fn split_exact_adds_up() {
        let parts = split_exact(d("100"), &[d("1"), d("1"), d("1")]).unwrap();
        assert_eq!(parts.iter().copied().sum::<Decimal>(), d("100"));
        assert!(split_exact(d("5"), &[Decimal::ZERO]).is_none());
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-1_000_000_000i64..10_000_000_000i64, 0u32..9).prop_map(|(m, s)| Decimal::new(m, s))
    }

    proptest! {
        #[test]
        fn largest_remainder_conserves_and_stays_within_a_cent(
            amounts in prop::collection::vec(amount(), 1..60)
        ) {
            let exact: Decimal = amounts.iter().copied().sum();
            let target = round_line(exact, 2);
            let parts = largest_remainder(&amounts, target, 2);
            prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), target);
            for (p, a) in parts.iter().zip(&amounts) {
                prop_assert!((*p - *a).abs() < d("0.01"), "{p} vs {a}");
                prop_assert_eq!(p.scale(), 2);
            }
        }

        #[test]
        fn split_exact_is_exact(
            total in amount(),
            weights in prop::collection::vec(0u64..5_000_000_000, 1..40)
        ) {
            let w: Vec<Decimal> = weights.iter().map(|&x| Decimal::from(x)).collect();
            if let Some(parts) = split_exact(total, &w) {
                prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
            }
        }
    }
}
