//! Splitting a red packet's total into shares.
//!
//! Lucky packets use the "double mean" method the big apps use: each share is
//! drawn uniformly from 1 fen to twice the mean of what is left, so every share
//! has the same expected value whatever its position, no share is empty, and
//! the last share takes exactly what remains.

use serde::{Deserialize, Serialize};
use yizhan_core::{Error, Fen, Msg, Random, Result};

/// Most shares one packet may have.
pub const MAX_SHARES: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    /// Every share the same; the total must divide evenly.
    Fixed,
    /// Random shares of at least 1 fen each.
    Lucky,
}

impl SplitMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SplitMode::Fixed => "fixed",
            SplitMode::Lucky => "lucky",
        }
    }

    pub fn parse(s: &str) -> Result<SplitMode> {
        match s {
            "fixed" => Ok(SplitMode::Fixed),
            "lucky" => Ok(SplitMode::Lucky),
            _ => Err(Error::field("mode", "pay.packet.mode")),
        }
    }
}

fn check(total_fen: i64, count: i64) -> Result<()> {
    yizhan_ledger::amount_check("total_fen", total_fen)?;
    if !(1..=MAX_SHARES).contains(&count) {
        return Err(Error::field_msg("count", Msg::new("pay.packet.count").int("max", MAX_SHARES)));
    }
    if total_fen < count {
        return Err(Error::field_msg(
            "total_fen",
            Msg::new("pay.packet.too_small").int("count", count).fen("min", count),
        ));
    }
    Ok(())
}

/// The total for `count` equal shares of `per_share_fen` (what a sender means by
/// "8.88 each to 10 people").
pub fn fixed_total(per_share_fen: i64, count: i64) -> Result<i64> {
    yizhan_ledger::amount_check("per_share_fen", per_share_fen)?;
    if !(1..=MAX_SHARES).contains(&count) {
        return Err(Error::field_msg("count", Msg::new("pay.packet.count").int("max", MAX_SHARES)));
    }
    let total = per_share_fen.checked_mul(count).filter(|t| *t <= Fen::MAX_AMOUNT).ok_or_else(|| {
        Error::field_msg("per_share_fen", Msg::new("pay.packet.total_too_large").fen("max", Fen::MAX_AMOUNT))
    })?;
    Ok(total)
}

/// Equal shares; a total that does not divide evenly is refused with the nearest totals that would.
pub fn split_fixed(total_fen: i64, count: i64) -> Result<Vec<i64>> {
    check(total_fen, count)?;
    if total_fen % count != 0 {
        let per = total_fen / count;
        return Err(Error::field_msg(
            "total_fen",
            Msg::new("pay.packet.uneven")
                .fen("total", total_fen)
                .int("count", count)
                .fen("lower", per * count)
                .fen("higher", (per + 1) * count),
        ));
    }
    let per = total_fen / count;
    Ok((0..count).map(|_| per).collect())
}

/// Random shares by the double-mean method, repeatable with a seeded [`Random`].
pub fn split_lucky(total_fen: i64, count: i64, rng: &dyn Random) -> Result<Vec<i64>> {
    check(total_fen, count)?;
    let mut remaining = total_fen;
    let mut shares = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for left in (2..=count).rev() {
        // remaining >= left holds throughout: every later share still gets 1 fen.
        let double_mean = (2 * remaining) / left;
        let hi = (double_mean - 1).max(1).min(remaining - (left - 1));
        let share = 1 + i64::try_from(rng.below(u64::try_from(hi).unwrap_or(1))).unwrap_or(0);
        shares.push(share);
        remaining -= share;
    }
    shares.push(remaining);
    Ok(shares)
}

/// Split by mode.
pub fn split(mode: SplitMode, total_fen: i64, count: i64, rng: &dyn Random) -> Result<Vec<i64>> {
    match mode {
        SplitMode::Fixed => split_fixed(total_fen, count),
        SplitMode::Lucky => split_lucky(total_fen, count, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use yizhan_core::{Code, SeededRandom};

    #[test]
    fn fixed_splits_evenly_or_says_how() {
        assert_eq!(split_fixed(1000, 4).unwrap(), vec![250; 4]);
        let e = split_fixed(1000, 3).unwrap_err();
        assert_eq!(e.code, Code::ValidationFailed);
        assert_eq!(
            e.msg,
            Msg::new("pay.packet.uneven").fen("total", 1000).int("count", 3).fen("lower", 999).fen("higher", 1002)
        );
        assert_eq!(fixed_total(888, 10).unwrap(), 8880);
        assert!(fixed_total(Fen::MAX_AMOUNT, 2).is_err());
        assert!(fixed_total(0, 2).is_err());
    }

    #[test]
    fn refuses_bad_totals_and_counts() {
        let rng = SeededRandom::new(1);
        assert!(split_lucky(0, 1, &*rng).is_err());
        assert!(split_lucky(-5, 1, &*rng).is_err());
        assert!(split_lucky(5, 0, &*rng).is_err());
        assert!(split_lucky(5, -1, &*rng).is_err());
        assert!(split_lucky(5, 6, &*rng).is_err());
        assert!(split_lucky(Fen::MAX_AMOUNT + 1, 2, &*rng).is_err());
        assert!(split_lucky(1000, MAX_SHARES + 1, &*rng).is_err());
        assert_eq!(split_lucky(5, 5, &*rng).unwrap(), vec![1; 5]);
        assert_eq!(split_lucky(77, 1, &*rng).unwrap(), vec![77]);
    }

    #[test]
    fn lucky_is_repeatable_with_a_seed() {
        let a = split_lucky(10_000, 10, &*SeededRandom::new(42)).unwrap();
        let b = split_lucky(10_000, 10, &*SeededRandom::new(42)).unwrap();
        assert_eq!(a, b);
        let c = split_lucky(10_000, 10, &*SeededRandom::new(43)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn lucky_shares_average_the_mean_in_every_position() {
        // Double mean keeps each position's expectation at total/count.
        let rng = SeededRandom::new(9);
        let mut sums = [0i64; 5];
        let rounds = 4000;
        for _ in 0..rounds {
            for (i, s) in split_lucky(1000, 5, &*rng).unwrap().into_iter().enumerate() {
                sums[i] += s;
            }
        }
        for s in sums {
            let mean = s / rounds;
            assert!((180..=220).contains(&mean), "{sums:?}");
        }
    }

    proptest! {
        #[test]
        fn lucky_shares_sum_to_the_total_and_are_at_least_one_fen(
            count in 1i64..=MAX_SHARES, extra in 0i64..2_000_000, seed in any::<u64>()
        ) {
            let total = count + extra;
            let shares = split_lucky(total, count, &*SeededRandom::new(seed)).unwrap();
            prop_assert_eq!(shares.len() as i64, count);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().all(|s| *s >= 1));
        }

        #[test]
        fn fixed_shares_are_equal_and_sum(count in 1i64..=MAX_SHARES, per in 1i64..100_000) {
            let total = fixed_total(per, count).unwrap();
            let shares = split_fixed(total, count).unwrap();
            prop_assert_eq!(shares.len() as i64, count);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().all(|s| *s == per));
        }
    }
}
