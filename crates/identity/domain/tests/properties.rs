#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use yizhan_identity::{IdNumber, Login, Password, PersonName};

proptest! {
    /// Any region, real date and sequence with the computed check character parses,
    /// masks to first 4 + 10 stars + last 4, and never shows in Debug.
    #[test]
    fn valid_numbers_parse_and_mask(region in 100_000u32..=999_999, days in 0i64..(200 * 365), seq in 0u32..1000) {
        let (y, m, d) = yizhan_core::time::civil_from_days(days + yizhan_core::time::days_from_civil(1900, 1, 1));
        prop_assume!(y <= 2100);
        let n = common::id_number(&region.to_string(), &format!("{y:04}{m:02}{d:02}"), &format!("{seq:03}"));
        let parsed = IdNumber::parse(&n).unwrap();
        prop_assert_eq!(parsed.expose(), n.as_str());
        let masked = parsed.masked();
        prop_assert_eq!(&masked[..4], &n[..4]);
        prop_assert_eq!(&masked[4..14], "**********");
        prop_assert_eq!(&masked[14..], &n[14..]);
        let debug = format!("{parsed:?}");
        prop_assert!(!debug.contains(&n));
    }

    /// Changing any one of the 17 digits breaks the checksum.
    #[test]
    fn one_changed_digit_is_caught(pos in 0usize..17, delta in 1u32..10) {
        let n = "11010519491231002X";
        let mut chars: Vec<char> = n.chars().collect();
        let d = chars[pos].to_digit(10).unwrap();
        chars[pos] = char::from_digit((d + delta) % 10, 10).unwrap();
        let changed: String = chars.into_iter().collect();
        prop_assert!(IdNumber::parse(&changed).is_err(), "{}", changed);
    }

    /// Parsers never panic, and what they accept is normalized and stable.
    #[test]
    fn parsers_are_total_and_idempotent(s in "\\PC{0,40}") {
        if let Ok(l) = Login::parse(&s) {
            prop_assert_eq!(Login::parse(l.as_str()).unwrap(), l.clone());
            prop_assert!(!l.masked().is_empty());
        }
        if let Ok(n) = IdNumber::parse(&s) {
            prop_assert_eq!(IdNumber::parse(n.expose()).unwrap(), n);
        }
        if let Ok(p) = PersonName::parse(&s) {
            prop_assert_eq!(p.as_str().trim(), p.as_str());
        }
        let _ = Password::parse(&s);
    }

    #[test]
    fn mobile_numbers_in_any_common_spelling(second in 3u32..=9, rest in 0u64..1_000_000_000) {
        let number = format!("1{second}{rest:09}");
        for spelled in [
            number.clone(),
            format!("+86{number}"),
            format!("86 {} {} {}", &number[..3], &number[3..7], &number[7..]),
            format!("{}-{}-{}", &number[..3], &number[3..7], &number[7..]),
        ] {
            let login = Login::parse(&spelled).unwrap();
            prop_assert_eq!(login.as_str(), number.as_str());
        }
    }
}
