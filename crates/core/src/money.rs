use serde::{Deserialize, Serialize};

/// An amount of CNY in fen (1 yuan = 100 fen). Always a whole, positive number
/// of fen when it is an amount to move; balances use plain `i64` fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    /// The largest single amount the platform moves: 1,000,000 yuan.
    pub const MAX_AMOUNT: i64 = 100_000_000;

    /// Parse an amount to move: an integer in 1..=MAX_AMOUNT fen. The error is
    /// a catalogue key (`error.amount.*`) for a field error.
    pub fn amount(v: i64) -> Result<Fen, &'static str> {
        if v <= 0 {
            Err("error.amount.not_positive")
        } else if v > Self::MAX_AMOUNT {
            Err("error.amount.too_large")
        } else {
            Ok(Fen(v))
        }
    }

    /// Parse a JSON value as an amount: rejects floats, strings, zero, negatives,
    /// huge numbers. The error is a catalogue key, as for [`Fen::amount`].
    pub fn from_json(v: &serde_json::Value) -> Result<Fen, &'static str> {
        match v {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Fen::amount(i),
                None if n.is_f64() => Err("error.amount.fraction"),
                None => Err("error.amount.too_large"),
            },
            _ => Err("error.amount.not_a_number"),
        }
    }
}

/// "12.34" for 1234 fen; "-0.05" for -5.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// For people to read: "1,234,567.89" (thousands grouped with commas, as
/// both English and Chinese money amounts are written); never for input
/// fields or payloads, which take [`yuan`].
pub fn yuan_grouped(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    let whole = (a / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", a % 100)
}

/// Parse "12.34", "12.3", "12" yuan into fen; for forms where people type yuan.
pub fn parse_yuan(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    let w: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let f: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    w.checked_mul(100)?.checked_add(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_yuan() {
        assert_eq!(yuan(1234), "12.34");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(yuan(123_456_789), "1234567.89");
        assert_eq!(yuan_grouped(123_456_789), "1,234,567.89");
        assert_eq!(yuan_grouped(100_000), "1,000.00");
        assert_eq!(yuan_grouped(99_999), "999.99");
        assert_eq!(yuan_grouped(-12_345_600), "-123,456.00");
        assert_eq!(yuan_grouped(5), "0.05");
        assert_eq!(parse_yuan("12.34"), Some(1234));
        assert_eq!(parse_yuan("0.5"), Some(50));
        assert_eq!(parse_yuan("7"), Some(700));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan("abc"), None);
    }

    #[test]
    fn amounts_must_be_positive_whole_and_bounded() {
        assert!(Fen::from_json(&serde_json::json!(100)).is_ok());
        assert!(Fen::from_json(&serde_json::json!(0)).is_err());
        assert!(Fen::from_json(&serde_json::json!(-1)).is_err());
        assert!(Fen::from_json(&serde_json::json!(1.5)).is_err());
        assert!(Fen::from_json(&serde_json::json!("100")).is_err());
        assert!(Fen::from_json(&serde_json::json!(1e300)).is_err());
        assert!(Fen::from_json(&serde_json::json!(u64::MAX)).is_err());
        assert!(Fen::from_json(&serde_json::json!(Fen::MAX_AMOUNT + 1)).is_err());
    }
}
