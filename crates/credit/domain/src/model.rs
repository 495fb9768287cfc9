//! The published scorecard: characteristics in bins, each bin's points, the
//! groups' weights, the band edges and the perks' thresholds, read from a
//! file in the repository (`model/v1.json`). Scoring is a pure function of a
//! person's inputs and the model, so a stored score is recomputed exactly
//! from the inputs stored with it and the model its hash names.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use yizhan_core::{Arg, Error, Msg, Result};

/// The model every score is computed with now, as published in the repository.
pub const MODEL_V1: &str = include_str!("../model/v1.json");

/// Every input a model may use, and nothing else: counts of a person's own
/// records, their verification level and optional verified sources. No age,
/// sex, ethnicity, religion, party, place of birth or any other protected or
/// political attribute is among them (a test lists them).
pub const INPUTS: &[&str] = &[
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
];

/// Whether a person is on a court's list is an input too, applied as the
/// model's `defaulter` rule rather than as a characteristic.
pub const DEFAULTER_INPUT: &str = "defaulter_listed";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bin {
    /// The smallest input value in this bin (bins are sorted by it).
    pub from: i64,
    pub points: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Characteristic {
    pub key: String,
    pub group: String,
    pub better: Better,
    /// Something the person can change by acting (not time, not others).
    pub actionable: bool,
    pub bins: Vec<Bin>,
}

impl Characteristic {
    pub fn bin_index(&self, value: i64) -> usize {
        self.bins.iter().rposition(|b| b.from <= value).unwrap_or(0)
    }

    pub fn points(&self, value: i64) -> i64 {
        self.bins[self.bin_index(value)].points
    }

    pub fn max_points(&self) -> i64 {
        self.bins.iter().map(|b| b.points).max().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    pub weight_pct: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Band {
    pub key: String,
    pub from: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Perk {
    pub key: String,
    pub from: i64,
    /// A condition the asking organisation checks itself (e.g. a first-class ticket).
    #[serde(default)]
    pub also_needs: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Defaulter {
    /// Points taken off while listed.
    pub drop: i64,
    /// The highest score a listed person can have (the top of the low band).
    pub cap: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayLaterLimit {
    pub from: i64,
    pub limit_fen: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ModelFile {
    version: String,
    #[serde(default)]
    about: String,
    min_score: i64,
    max_score: i64,
    no_record_score: i64,
    groups: Vec<Group>,
    characteristics: Vec<Characteristic>,
    defaulter: Defaulter,
    bands: Vec<Band>,
    perks: Vec<Perk>,
    pay_later_limits: Vec<PayLaterLimit>,
}

/// A loaded, checked model with its content hash.
#[derive(Debug, Clone)]
pub struct Model {
    pub version: String,
    /// sha256 of the file's bytes, hex: stored with every score.
    pub hash: String,
    pub min_score: i64,
    pub max_score: i64,
    pub no_record_score: i64,
    pub groups: Vec<Group>,
    pub characteristics: Vec<Characteristic>,
    pub defaulter: Defaulter,
    pub bands: Vec<Band>,
    pub perks: Vec<Perk>,
    pub pay_later_limits: Vec<PayLaterLimit>,
}

/// A person's inputs, by name (only names of [`INPUTS`] and [`DEFAULTER_INPUT`]).
pub type Inputs = BTreeMap<String, i64>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CharScore {
    pub key: String,
    pub group: String,
    pub value: i64,
    pub points: i64,
    pub max: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupScore {
    pub key: String,
    pub weight_pct: i64,
    pub points: i64,
    pub max: i64,
}

/// Why a score is not higher: a characteristic and the points it lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The characteristic's key, or `defaulter`.
    pub code: String,
    pub points_lost: i64,
    pub msg: Msg,
}

pub const MAX_REASONS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scored {
    pub score: i64,
    pub band: String,
    pub groups: Vec<GroupScore>,
    pub characteristics: Vec<CharScore>,
    pub reasons: Vec<Reason>,
    pub defaulter_listed: bool,
}

/// One step that would raise the score: move a characteristic to a better bin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub code: String,
    /// How much the input must change (e.g. 3 more bills paid on time).
    pub more: i64,
    pub gain: i64,
    pub msg: Msg,
}

/// The smallest steps to reach a target score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// A band's key or a perk's key.
    pub target: String,
    pub target_score: i64,
    pub points_needed: i64,
    pub steps: Vec<Step>,
    /// Whether the steps reach the target (otherwise they are the most the person can do).
    pub reaches: bool,
}

fn invalid(what: &str) -> Error {
    Error::internal(anyhow::anyhow!("the credit model is not valid: {what}"))
}

impl Model {
    /// Read and check a model file: known inputs only, sorted bins, monotone
    /// points, group maxima matching their weights, and the no-record score.
    pub fn load(text: &str) -> Result<Model> {
        let f: ModelFile = serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?;
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        let range = f.max_score - f.min_score;
        if range <= 0 {
            return Err(invalid("max_score must be above min_score"));
        }
        let weights: i64 = f.groups.iter().map(|g| g.weight_pct).sum();
        if weights != 100 {
            return Err(invalid("group weights must add up to 100"));
        }
        let mut neutral = 0;
        for c in &f.characteristics {
            if !INPUTS.contains(&c.key.as_str()) {
                return Err(invalid(&format!("unknown input {}", c.key)));
            }
            if !f.groups.iter().any(|g| g.key == c.group) {
                return Err(invalid(&format!("{} names an unknown group", c.key)));
            }
            if c.bins.is_empty() || c.bins[0].from != 0 {
                return Err(invalid(&format!("{}: the first bin must start at 0", c.key)));
            }
            for w in c.bins.windows(2) {
                if w[0].from >= w[1].from {
                    return Err(invalid(&format!("{}: bins must be sorted", c.key)));
                }
                let monotone = match c.better {
                    Better::Higher => w[0].points <= w[1].points,
                    Better::Lower => w[0].points >= w[1].points,
                };
                if !monotone {
                    return Err(invalid(&format!("{}: points must be monotone", c.key)));
                }
            }
            if c.bins.iter().any(|b| b.points < 0) {
                return Err(invalid(&format!("{}: negative points", c.key)));
            }
            neutral += c.bins[0].points;
        }
        for g in &f.groups {
            let max: i64 = f.characteristics.iter().filter(|c| c.group == g.key).map(|c| c.max_points()).sum();
            if max * 100 != range * g.weight_pct {
                return Err(invalid(&format!("group {} has {max} points, not {}% of {range}", g.key, g.weight_pct)));
            }
        }
        if f.min_score + neutral != f.no_record_score {
            return Err(invalid("the first bins must add up to the no-record score"));
        }
        if f.bands.first().map(|b| b.from) != Some(f.min_score) || f.bands.windows(2).any(|w| w[0].from >= w[1].from) {
            return Err(invalid("bands must start at min_score and be sorted"));
        }
        let _ = f.about;
        Ok(Model {
            version: f.version,
            hash,
            min_score: f.min_score,
            max_score: f.max_score,
            no_record_score: f.no_record_score,
            groups: f.groups,
            characteristics: f.characteristics,
            defaulter: f.defaulter,
            bands: f.bands,
            perks: f.perks,
            pay_later_limits: f.pay_later_limits,
        })
    }

    /// The published model of this build.
    pub fn v1() -> Result<Model> {
        Model::load(MODEL_V1)
    }

    pub fn band_of(&self, score: i64) -> &str {
        self.bands.iter().rev().find(|b| b.from <= score).map(|b| b.key.as_str()).unwrap_or("low")
    }

    /// The next band above a score, if any.
    pub fn next_band(&self, score: i64) -> Option<&Band> {
        self.bands.iter().find(|b| b.from > score)
    }

    pub fn perk(&self, key: &str) -> Option<&Perk> {
        self.perks.iter().find(|p| p.key == key)
    }

    /// The pay-later limit a score allows (0 below the first threshold).
    pub fn pay_later_limit_fen(&self, score: i64) -> i64 {
        self.pay_later_limits.iter().rev().find(|l| l.from <= score).map(|l| l.limit_fen).unwrap_or(0)
    }

    /// The score of these inputs, explained: every characteristic's points
    /// against its maximum, the groups, and at most four reasons (the
    /// characteristics that lost the most points, the model's order breaking ties).
    pub fn score(&self, inputs: &Inputs) -> Scored {
        let value = |k: &str| inputs.get(k).copied().unwrap_or(0);
        let characteristics: Vec<CharScore> = self
            .characteristics
            .iter()
            .map(|c| {
                let v = value(&c.key);
                CharScore {
                    key: c.key.clone(),
                    group: c.group.clone(),
                    value: v,
                    points: c.points(v),
                    max: c.max_points(),
                }
            })
            .collect();
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let (points, max) = characteristics
                    .iter()
                    .filter(|c| c.group == g.key)
                    .fold((0, 0), |(p, m), c| (p + c.points, m + c.max));
                GroupScore { key: g.key.clone(), weight_pct: g.weight_pct, points, max }
            })
            .collect();
        let sum: i64 = characteristics.iter().map(|c| c.points).sum();
        let raw = (self.min_score + sum).clamp(self.min_score, self.max_score);
        let listed = value(DEFAULTER_INPUT) > 0;
        let score = if listed { (raw - self.defaulter.drop).min(self.defaulter.cap).max(self.min_score) } else { raw };
        let mut lost: Vec<(usize, &CharScore)> =
            characteristics.iter().enumerate().filter(|(_, c)| c.points < c.max).collect();
        lost.sort_by(|a, b| (b.1.max - b.1.points).cmp(&(a.1.max - a.1.points)).then(a.0.cmp(&b.0)));
        let mut reasons = Vec::new();
        if listed {
            reasons.push(Reason {
                code: "defaulter".into(),
                points_lost: raw - score,
                msg: Msg::new("credit.reason.defaulter"),
            });
        }
        for (i, c) in lost {
            if reasons.len() >= MAX_REASONS {
                break;
            }
            reasons.push(Reason {
                code: c.key.clone(),
                points_lost: c.max - c.points,
                msg: self.reason_msg(&self.characteristics[i], c.value),
            });
        }
        Scored {
            score,
            band: self.band_of(score).to_string(),
            groups,
            characteristics,
            reasons,
            defaulter_listed: listed,
        }
    }

    fn reason_msg(&self, c: &Characteristic, value: i64) -> Msg {
        // The input value that gives the most points, for "12 or more give the most".
        let best = match c.better {
            Better::Higher => c.bins.last().map(|b| b.from).unwrap_or(0),
            Better::Lower => 0,
        };
        Msg::new(format!("credit.reason.{}", c.key)).arg("n", Arg::Int(value)).arg("best", Arg::Int(best))
    }

    /// The smallest actionable changes that lift the score to `target_score`:
    /// one characteristic's smallest sufficient step if one is enough,
    /// otherwise the biggest steps of several, largest gain first.
    pub fn plan(&self, inputs: &Inputs, target: &str, target_score: i64) -> Plan {
        let now = self.score(inputs);
        let needed = target_score - now.score;
        let value = |k: &str| inputs.get(k).copied().unwrap_or(0);
        // Every actionable step: (characteristic index, more, gain in score).
        let mut options: Vec<(usize, i64, i64)> = Vec::new();
        for (i, c) in self.characteristics.iter().enumerate() {
            if !c.actionable || c.better != Better::Higher {
                continue;
            }
            let v = value(&c.key);
            let here = c.bin_index(v);
            for b in &c.bins[here + 1..] {
                let mut changed = inputs.clone();
                changed.insert(c.key.clone(), b.from);
                let gain = self.score(&changed).score - now.score;
                if gain > 0 {
                    options.push((i, b.from - v, gain));
                }
            }
        }
        let step = |(i, more, gain): (usize, i64, i64)| {
            let c = &self.characteristics[i];
            Step {
                code: c.key.clone(),
                more,
                gain,
                msg: Msg::new(format!("credit.improve.{}", c.key)).arg("more", Arg::Int(more)),
            }
        };
        let single = options.iter().filter(|o| o.2 >= needed).min_by_key(|o| (o.1, -o.2)).copied();
        let (steps, reaches) = match single {
            Some(o) => (vec![step(o)], true),
            None => {
                // The best bin of each characteristic, biggest gains first, until enough.
                let mut best: Vec<(usize, i64, i64)> = Vec::new();
                for o in &options {
                    match best.iter_mut().find(|b| b.0 == o.0) {
                        Some(b) if o.2 > b.2 => *b = *o,
                        Some(_) => {}
                        None => best.push(*o),
                    }
                }
                best.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
                let mut changed = inputs.clone();
                let mut chosen = Vec::new();
                let mut reached = false;
                for o in best {
                    let c = &self.characteristics[o.0];
                    let to = value(&c.key) + o.1;
                    changed.insert(c.key.clone(), to);
                    chosen.push(o);
                    if self.score(&changed).score >= target_score {
                        reached = true;
                        break;
                    }
                }
                (chosen.into_iter().map(step).collect(), reached)
            }
        };
        Plan { target: target.to_string(), target_score, points_needed: needed.max(0), steps, reaches }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_model_loads() {
        let m = Model::v1().unwrap();
        assert_eq!(m.version, "v1");
        assert_eq!(m.hash.len(), 64);
        assert_eq!(m.score(&Inputs::new()).score, 600);
    }

    #[test]
    fn a_model_with_unsorted_or_non_monotone_bins_is_refused() {
        let bad = MODEL_V1.replacen("{ \"from\": 1, \"points\": 30 }", "{ \"from\": 1, \"points\": 75 }", 1);
        assert!(Model::load(&bad).is_err());
        let unknown = MODEL_V1.replacen("\"late_30_12m\"", "\"religion\"", 1);
        assert!(Model::load(&unknown).is_err());
    }
}
