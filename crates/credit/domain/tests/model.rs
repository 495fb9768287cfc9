//! The published model, scored by hand: a table of profiles with the score,
//! band and reasons each must get (the edges 350 and 950, every band edge,
//! the defaulter cap), and properties over random profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use yizhan_credit::{inputs_of, model::Better, Counted, Inputs, Kind, Model, Outcome, DEFAULTER_INPUT, INPUTS};

fn inputs(pairs: &[(&str, i64)]) -> Inputs {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// (name, inputs, score, band, reason codes). Each score is the sum of the
/// bins' points of `model/v1.json` added to 350, worked out by hand:
/// e.g. "two_late_30" = 600 − 60 (late_30 2) − 30 (late_any 2) + 35 (on_time 3)
/// + 35 (verification 1) + 35 (active months 3) = 615.
#[allow(clippy::type_complexity)]
const TABLE: &[(&str, &[(&str, i64)], i64, &str, &[&str])] = &[
    ("no_record", &[], 600, "good", &["active_months_12m", "on_time_24m", "kept_24m", "verification_level"]),
    (
        "best",
        &[
            ("on_time_24m", 12),
            ("kept_24m", 6),
            ("active_months_12m", 9),
            ("tenure_months", 24),
            ("verification_level", 2),
            ("address_verified", 1),
            ("education_verified", 1),
            ("contacts_good", 20),
        ],
        950,
        "excellent",
        &[],
    ),
    (
        "worst",
        &[("late_30_12m", 3), ("late_any_12m", 4), ("missed_12m", 3), ("paylater_overdue_12m", 2)],
        410,
        "low",
        &["active_months_12m", "late_30_12m", "on_time_24m", "kept_24m"],
    ),
    (
        "worst_listed",
        &[
            ("late_30_12m", 3),
            ("late_any_12m", 4),
            ("missed_12m", 3),
            ("paylater_overdue_12m", 2),
            (DEFAULTER_INPUT, 1),
        ],
        350,
        "low",
        &["defaulter", "active_months_12m", "late_30_12m", "on_time_24m"],
    ),
    (
        "best_listed",
        &[
            ("on_time_24m", 12),
            ("kept_24m", 6),
            ("active_months_12m", 9),
            ("tenure_months", 24),
            ("verification_level", 2),
            ("address_verified", 1),
            ("education_verified", 1),
            ("contacts_good", 20),
            (DEFAULTER_INPUT, 1),
        ],
        549,
        "low",
        &["defaulter"],
    ),
    (
        "fair_edge",
        &[("missed_12m", 1), ("late_any_12m", 2)],
        550,
        "fair",
        &["active_months_12m", "on_time_24m", "kept_24m", "verification_level"],
    ),
    (
        "good_edge",
        &[("on_time_24m", 1), ("late_any_12m", 1)],
        600,
        "good",
        &["active_months_12m", "on_time_24m", "kept_24m", "verification_level"],
    ),
    (
        "very_good_edge",
        &[("verification_level", 1), ("address_verified", 1)],
        650,
        "very_good",
        &["active_months_12m", "on_time_24m", "kept_24m", "tenure_months"],
    ),
    (
        "excellent_edge",
        &[("verification_level", 1), ("on_time_24m", 3), ("kept_24m", 1), ("active_months_12m", 1)],
        700,
        "excellent",
        &["active_months_12m", "kept_24m", "tenure_months", "on_time_24m"],
    ),
    (
        "product_trials_edge",
        &[("verification_level", 2), ("on_time_24m", 6), ("tenure_months", 24)],
        750,
        "excellent",
        &["active_months_12m", "kept_24m", "contacts_good", "on_time_24m"],
    ),
    (
        "two_late_30",
        &[
            ("late_30_12m", 2),
            ("late_any_12m", 2),
            ("on_time_24m", 3),
            ("verification_level", 1),
            ("active_months_12m", 3),
        ],
        615,
        "good",
        &["late_30_12m", "kept_24m", "active_months_12m", "tenure_months"],
    ),
];

#[test]
fn the_table_of_profiles_scores_as_worked_out_by_hand() {
    let m = Model::v1().unwrap();
    for (name, pairs, score, band, reasons) in TABLE {
        let s = m.score(&inputs(pairs));
        assert_eq!(s.score, *score, "{name}");
        assert_eq!(s.band, *band, "{name}");
        let codes: Vec<&str> = s.reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, *reasons, "{name}");
    }
}

#[test]
fn reasons_name_the_records_in_plain_words_with_their_counts() {
    let m = Model::v1().unwrap();
    let s = m.score(&inputs(TABLE[10].1));
    let r = &s.reasons[0];
    assert_eq!(r.code, "late_30_12m");
    assert_eq!(r.points_lost, 60);
    assert_eq!(r.msg.key, "credit.reason.late_30_12m");
    assert!(r.msg.args.iter().any(|(k, v)| k == "n" && *v == yizhan_core::Arg::Int(2)));
}

#[test]
fn every_threshold_is_exactly_where_the_model_says() {
    let m = Model::v1().unwrap();
    let edges: Vec<(i64, &str)> = vec![
        (350, "low"),
        (549, "low"),
        (550, "fair"),
        (599, "fair"),
        (600, "good"),
        (649, "good"),
        (650, "very_good"),
        (699, "very_good"),
        (700, "excellent"),
        (950, "excellent"),
    ];
    for (s, band) in edges {
        assert_eq!(m.band_of(s), band, "{s}");
    }
    let perk = |k: &str| m.perk(k).unwrap().from;
    assert_eq!(perk("library_card"), 550);
    assert_eq!(perk("wheelchair"), 600);
    assert_eq!(perk("deposit_free_rentals"), 650);
    assert_eq!(perk("pay_after_treatment"), 650);
    assert_eq!(perk("station_lounge"), 650);
    assert_eq!(perk("try_before_buy"), 700);
    assert_eq!(perk("product_trials"), 750);
    assert_eq!(m.pay_later_limit_fen(649), 0);
    assert_eq!(m.pay_later_limit_fen(650), 100_000);
    assert_eq!(m.pay_later_limit_fen(750), 2_000_000);
    // Group maxima are the weights of the 600 points.
    let maxima: Vec<(String, i64)> = m.score(&Inputs::new()).groups.iter().map(|g| (g.key.clone(), g.max)).collect();
    assert_eq!(
        maxima,
        vec![
            ("history".to_string(), 210),
            ("capacity".to_string(), 150),
            ("behaviour".to_string(), 120),
            ("identity".to_string(), 90),
            ("connections".to_string(), 30)
        ]
    );
}

#[test]
fn the_inputs_are_these_and_none_is_a_protected_attribute() {
    let m = Model::v1().unwrap();
    let used: Vec<&str> = m.characteristics.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        used,
        vec![
            "late_30_12m",
            "late_any_12m",
            "on_time_24m",
            "missed_12m",
            "kept_24m",
            "paylater_overdue_12m",
            "active_months_12m",
            "tenure_months",
            "verification_level",
            "address_verified",
            "education_verified",
            "contacts_good",
        ]
    );
    assert_eq!(used, INPUTS);
    let computed: Vec<String> = inputs_of(&[], 0, false, false, false, 0).keys().cloned().collect();
    for k in &computed {
        assert!(INPUTS.contains(&k.as_str()) || k == DEFAULTER_INPUT, "{k}");
    }
    for banned in ["age", "sex", "gender", "ethnic", "religion", "party", "birth", "province", "nation", "marital"] {
        assert!(computed.iter().all(|k| !k.contains(banned)), "{banned}");
    }
}

#[test]
fn the_plan_reaches_the_next_band_with_the_smallest_step() {
    let m = Model::v1().unwrap();
    // 600, next band at 650: verifying the real name (+35) is not enough alone,
    // paying 3 bills on time (+35) neither; 6 bills on time give +55.
    let p = m.plan(&Inputs::new(), "very_good", 650);
    assert_eq!(p.points_needed, 50);
    assert!(p.reaches);
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.steps[0].code, "verification_level");
    assert_eq!(p.steps[0].more, 2);
    assert_eq!(p.steps[0].gain, 55);
    // Nothing actionable is a time window, another's standing or age.
    for s in &m.plan(&Inputs::new(), "excellent", 950).steps {
        assert!(!["tenure_months", "contacts_good", "late_30_12m"].contains(&s.code.as_str()), "{}", s.code);
    }
}

fn record() -> impl Strategy<Value = Counted> {
    (0usize..7, 0usize..3, 0i64..90, 0i64..900).prop_map(|(k, o, days, age_days)| {
        let kind = Kind::ALL[k];
        let outcomes = kind.outcomes();
        let outcome = outcomes[o % outcomes.len()];
        let days_late = if matches!(outcome, Outcome::Late | Outcome::Overdue) { days + 1 } else { 0 };
        Counted { kind, outcome, days_late, occurred_at_ms: 1_000 * 86_400_000 - age_days * 86_400_000 }
    })
}

const NOW: i64 = 1_000 * 86_400_000;

proptest! {
    #[test]
    fn improving_any_single_record_never_lowers_the_score(
        records in proptest::collection::vec(record(), 0..25),
        level in 0i64..3,
        which in 0usize..25,
        better_days in 0i64..90,
        to_better in 1usize..3,
    ) {
        let m = Model::v1().unwrap();
        let before = m.score(&inputs_of(&records, level, true, true, false, NOW)).score;
        if records.is_empty() { return Ok(()); }
        let i = which % records.len();
        let mut improved = records.clone();
        let r = &mut improved[i];
        let outcomes = r.kind.outcomes();
        let at = outcomes.iter().position(|o| *o == r.outcome).unwrap();
        if r.days_late > 0 && better_days < r.days_late && to_better == 1 {
            // Fewer days late, same outcome.
            r.days_late = better_days.max(1);
        } else if at + 1 < outcomes.len() {
            let to = (at + to_better).min(outcomes.len() - 1);
            r.outcome = outcomes[to];
            if !matches!(r.outcome, Outcome::Late | Outcome::Overdue) { r.days_late = 0; }
            else { r.days_late = r.days_late.min(better_days.max(1)); }
        }
        let after = m.score(&inputs_of(&improved, level, true, true, false, NOW)).score;
        prop_assert!(after >= before, "{before} -> {after}: {:?} to {:?}", records[i], improved[i]);
        // A higher verification level never lowers it either.
        let verified = m.score(&inputs_of(&records, (level + 1).min(2), true, true, false, NOW)).score;
        prop_assert!(verified >= before);
    }

    #[test]
    fn the_reasons_are_the_characteristics_with_the_most_points_lost(
        records in proptest::collection::vec(record(), 0..25),
        level in 0i64..3,
    ) {
        let m = Model::v1().unwrap();
        let s = m.score(&inputs_of(&records, level, true, false, false, NOW));
        prop_assert!(s.reasons.len() <= 4);
        let lost = |k: &str| { let c = s.characteristics.iter().find(|c| c.key == k).unwrap(); c.max - c.points };
        let least_named = s.reasons.iter().map(|r| r.points_lost).min().unwrap_or(i64::MAX);
        for r in &s.reasons { prop_assert_eq!(r.points_lost, lost(&r.code)); prop_assert!(r.points_lost > 0); }
        for c in &s.characteristics {
            if !s.reasons.iter().any(|r| r.code == c.key) {
                let l = c.max - c.points;
                prop_assert!(l <= least_named || s.reasons.len() < 4 && l == 0, "{} lost {l}", c.key);
            }
        }
        // Points never leave their range, and the score is 350 + the sum.
        let sum: i64 = s.characteristics.iter().map(|c| c.points).sum();
        prop_assert_eq!(s.score, 350 + sum);
        prop_assert!((350..=950).contains(&s.score));
    }
}

proptest! {
    /// What the pages list behind a factor group is right: adding one record
    /// to any others moves only the inputs its kind says it feeds.
    #[test]
    fn a_record_moves_only_the_inputs_its_kind_feeds(
        records in proptest::collection::vec(record(), 0..25),
        extra in record(),
    ) {
        let before = inputs_of(&records, 1, true, true, false, NOW);
        let mut more = records.clone();
        more.push(extra.clone());
        let after = inputs_of(&more, 1, true, true, false, NOW);
        for (k, v) in &after {
            if before.get(k) != Some(v) {
                prop_assert!(extra.kind.feeds().contains(&k.as_str()), "{:?} moved {k}", extra);
            }
        }
    }
}

#[test]
fn every_input_counted_from_records_is_fed_by_some_kind() {
    let m = Model::v1().unwrap();
    for c in &m.characteristics {
        let fed = Kind::ALL.iter().any(|k| k.feeds().contains(&c.key.as_str()));
        // The verification level comes from the identity room, connections from no one.
        let elsewhere = ["verification_level", "contacts_good"].contains(&c.key.as_str());
        assert!(fed != elsewhere, "{}", c.key);
    }
    for k in Kind::ALL {
        for f in k.feeds() {
            assert!(INPUTS.contains(f), "{f}");
        }
        // Each kind moves its own count when it is the only record.
        let worst = Counted { kind: *k, outcome: k.outcomes()[0], days_late: 40, occurred_at_ms: NOW - 86_400_000 };
        let with = inputs_of(&[worst], 1, true, true, false, NOW);
        let without = inputs_of(&[], 1, true, true, false, NOW);
        assert!(k.feeds().iter().any(|f| with[*f] != without[*f]), "{k:?}");
    }
}

#[test]
fn the_model_bins_are_monotone_in_the_direction_they_say() {
    let m = Model::v1().unwrap();
    for c in &m.characteristics {
        for w in c.bins.windows(2) {
            match c.better {
                Better::Higher => assert!(w[0].points <= w[1].points, "{}", c.key),
                Better::Lower => assert!(w[0].points >= w[1].points, "{}", c.key),
            }
        }
    }
}
