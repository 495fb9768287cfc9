//! Calendar arithmetic on epoch milliseconds (UTC+8, the platform's civil time),
//! without a date library.

/// China Standard Time offset.
pub const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
pub const DAY_MS: i64 = 24 * 3600 * 1000;
pub const HOUR_MS: i64 = 3600 * 1000;
pub const MINUTE_MS: i64 = 60 * 1000;

/// (year, month 1..=12, day 1..=31) from days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether y-m-d is a real calendar date.
pub fn is_valid_date(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let (yy, mm, dd) = civil_from_days(days_from_civil(y, m, d));
    (yy, mm, dd) == (y, m, d)
}

/// "2026-11-29 15:04" in China Standard Time.
pub fn fmt_cst(ms: i64) -> String {
    let local = ms + CST_OFFSET_MS;
    let days = local.div_euclid(DAY_MS);
    let rem = local.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / HOUR_MS, (rem % HOUR_MS) / MINUTE_MS)
}

/// (year, month) in China Standard Time.
pub fn year_month_cst(ms: i64) -> (i64, u32) {
    let (y, m, _) = civil_from_days((ms + CST_OFFSET_MS).div_euclid(DAY_MS));
    (y, m)
}

/// [start, end) epoch ms of a month in China Standard Time.
pub fn month_range_cst(y: i64, m: u32) -> (i64, i64) {
    let start = days_from_civil(y, m, 1) * DAY_MS - CST_OFFSET_MS;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let end = days_from_civil(ny, nm, 1) * DAY_MS - CST_OFFSET_MS;
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates() {
        for days in [-1000, 0, 59, 365 * 30, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert!(is_valid_date(2000, 2, 29));
        assert!(!is_valid_date(1900, 2, 29));
        assert!(!is_valid_date(2023, 13, 1));
        assert_eq!(fmt_cst(0), "1970-01-01 08:00");
        let (s, e) = month_range_cst(2026, 12);
        assert_eq!(year_month_cst(s), (2026, 12));
        assert_eq!(year_month_cst(e - 1), (2026, 12));
        assert_eq!(year_month_cst(e), (2027, 1));
    }
}
