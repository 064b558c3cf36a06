//! Exact money: parsing, cent rounding and largest-remainder allocation.
//!
//! Everything here is `rust_decimal`; no float ever holds an amount. This
//! module imports nothing of ours, so every stage can use it.

use std::cmp::Ordering;
use std::fmt;

pub use rust_decimal::Decimal;
pub use rust_decimal::RoundingStrategy;

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

/// Why the text of a JSON number has no exact [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonNumberError {
    /// Not a number as JSON writes one (RFC 8259 §6): `"0.1"`, `1_0`, `.5`.
    NotANumber(String),
    /// A number whose exact value needs more than 28 decimal places, or
    /// more digits than a `Decimal` holds: rounding it would change it.
    Inexact(String),
}

impl fmt::Display for JsonNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonNumberError::NotANumber(t) => write!(f, "`{t}` is not a number"),
            JsonNumberError::Inexact(t) => {
                write!(
                    f,
                    "`{t}` is beyond what a decimal of 28 digits holds exactly"
                )
            }
        }
    }
}

impl std::error::Error for JsonNumberError {}

/// The exact value of a JSON number's text times `10^shift`: with shift 6,
/// `2.5e-06` (dollars per token) is `2.5` (dollars per 1M tokens).
///
/// The digits and the exponent are read as written, never through a
/// float, and the shift is applied to the exponent, so the result is the
/// number itself or an error. (`Decimal::from_scientific` rounds a
/// mantissa of more than 28 digits without saying so, refuses `1.5e-28`
/// although `1.5e-22` would fit, and takes `1_0e1`, which is no JSON.)
/// Trailing zeros are dropped: `1.250e-06` is `1.25`.
pub fn json_number_exact(text: &str, shift: i32) -> Result<Decimal, JsonNumberError> {
    let not_a_number = || JsonNumberError::NotANumber(text.to_string());
    let inexact = || JsonNumberError::Inexact(text.to_string());
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits_from = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int_len = digits_from(i);
    // JSON: at least one integer digit, and no leading zero before others.
    if int_len == 0 || (int_len > 1 && b[i] == b'0') {
        return Err(not_a_number());
    }
    let mut digits: Vec<u8> = b[i..i + int_len].to_vec();
    i += int_len;
    let mut frac_len = 0usize;
    if b.get(i) == Some(&b'.') {
        frac_len = digits_from(i + 1);
        if frac_len == 0 {
            return Err(not_a_number());
        }
        digits.extend_from_slice(&b[i + 1..i + 1 + frac_len]);
        i += 1 + frac_len;
    }
    let mut exponent: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = b.get(i) == Some(&b'-');
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp_len = digits_from(i);
        if exp_len == 0 {
            return Err(not_a_number());
        }
        for &d in &b[i..i + exp_len] {
            // Far past any Decimal's range already: the value is zero or
            // refused below whatever the remaining digits say.
            exponent = (exponent * 10 + i64::from(d - b'0')).min(1_000_000);
        }
        if exp_negative {
            exponent = -exponent;
        }
        i += exp_len;
    }
    if i != b.len() {
        return Err(not_a_number());
    }
    // value = digits × 10^(exponent − frac_len + shift)
    let mut power = exponent - i64::try_from(frac_len).map_err(|_| inexact())? + i64::from(shift);
    let first = digits.iter().position(|&d| d != b'0');
    let Some(first) = first else {
        return Ok(Decimal::ZERO);
    };
    let mut last = digits.len();
    while digits[last - 1] == b'0' {
        last -= 1;
        power += 1;
    }
    let significant = &digits[first..last];
    // A Decimal holds at most 96 bits of mantissa: 28 digits always fit,
    // 29 sometimes; more never do.
    if significant.len() > 29 {
        return Err(inexact());
    }
    let mut mantissa: i128 = 0;
    for &d in significant {
        mantissa = mantissa * 10 + i128::from(d - b'0');
    }
    let (mantissa, scale) = if power >= 0 {
        let factor = u32::try_from(power)
            .ok()
            .and_then(|p| 10i128.checked_pow(p))
            .ok_or_else(inexact)?;
        (mantissa.checked_mul(factor).ok_or_else(inexact)?, 0)
    } else {
        let scale = u32::try_from(-power).map_err(|_| inexact())?;
        (mantissa, scale)
    };
    let mantissa = if negative { -mantissa } else { mantissa };
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| inexact())
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
    fn json_numbers_are_read_exactly() {
        let per_mtok = |t: &str| json_number_exact(t, 6).map(|d| d.to_string());
        for (text, want) in [
            ("2.5e-06", "2.5"),
            ("1e-7", "0.1"),
            ("3E-6", "3"),
            ("3e+0", "3000000"),
            ("5.46875e-07", "0.546875"),
            ("2.1875e-06", "2.1875"),
            ("1.250e-06", "1.25"),
            ("0.000015", "15"),
            ("0.0", "0"),
            ("0", "0"),
            ("-0.0", "0"),
            ("-2e-6", "-2"),
            // From the exponent, not a float: 0.1 + 0.2 stays 0.3.
            ("3.0000000000000004e-07", "0.30000000000000004"),
            // 1.5e-28 per token is out of a Decimal's 28 places; per 1M
            // tokens it is 1.5e-22, which fits.
            ("1.5e-28", "0.00000000000000000000015"),
            ("1e-34", "0.0000000000000000000000000001"),
        ] {
            assert_eq!(per_mtok(text).as_deref(), Ok(want), "{text}");
        }
        assert_eq!(
            json_number_exact("2000000.0", 0).unwrap().to_string(),
            "2000000"
        );
        assert_eq!(json_number_exact("128e3", 0).unwrap().to_string(), "128000");
    }

    #[test]
    fn json_numbers_without_an_exact_decimal_are_refused() {
        for text in [
            "\"0.1\"", "1_0e1", ".5", "5.", "01", "1e", "1e+", "+1", " 1", "NaN", "", "-",
        ] {
            assert_eq!(
                json_number_exact(text, 6),
                Err(JsonNumberError::NotANumber(text.to_string())),
                "{text}"
            );
        }
        for text in [
            // 32 significant digits: rounding would change the price.
            "1.0000000000000000000000000000001e0",
            "1e-35",
            "1e29",
            "1e999999999999",
        ] {
            assert_eq!(
                json_number_exact(text, 6),
                Err(JsonNumberError::Inexact(text.to_string())),
                "{text}"
            );
        }
        assert_eq!(
            json_number_exact("1e-35", 6).unwrap_err().to_string(),
            "`1e-35` is beyond what a decimal of 28 digits holds exactly"
        );
        // A zero is exact at any exponent.
        assert_eq!(json_number_exact("0e-999", 6), Ok(Decimal::ZERO));
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
