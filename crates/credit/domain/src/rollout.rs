//! A new model version, rolled out by an operator: staged (checked by
//! [`Model::load`] and stored by its content hash), compared (both scores
//! side by side for a sample of people, the shift per band), then activated.
//! Until activation the old model scores; the staged one is only shown
//! beside it. Every model ever staged stays stored, so every past score is
//! explained with the model its hash names.

use crate::{Credit, Inputs, Model};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use yizhan_core::{Arg, Error, Result};

/// A model as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StoredModel {
    pub hash: String,
    pub version: String,
    /// staged, active, retired or withdrawn
    pub state: String,
    pub staged_at_ms: i64,
    pub activated_at_ms: Option<i64>,
}

/// What the staged model would give a person (it counts for nothing yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedScore {
    pub model_version: String,
    pub model_hash: String,
    pub score: i64,
    pub band: String,
}

/// The shift of the people whose current score is in one band.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BandShift {
    pub band: String,
    pub people: u64,
    /// Sum of (new − old), for the mean.
    pub total_shift: i64,
    pub min_shift: i64,
    pub max_shift: i64,
    /// People the new model puts in a higher band, a lower band.
    pub up_a_band: u64,
    pub down_a_band: u64,
}

impl BandShift {
    pub fn mean_shift(&self) -> f64 {
        if self.people == 0 {
            0.0
        } else {
            self.total_shift as f64 / self.people as f64
        }
    }
}

/// Both models over a sample of people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub from_version: String,
    pub from_hash: String,
    pub to_version: String,
    pub to_hash: String,
    pub people: u64,
    /// By the current model's band, lowest band first.
    pub bands: Vec<BandShift>,
}

fn model_error(e: Error) -> Error {
    let problem = e.source.as_ref().map_or_else(|| e.msg.key.clone(), |s| format!("{s:#}"));
    Error::new(crate::codes::MODEL_INVALID, "credit.model.invalid").with("problem", Arg::Text(problem))
}

impl Credit {
    /// Load the stored models (at start, and by the server's sweep, so an
    /// activation by the command reaches a running server).
    pub async fn load_models(&self) -> Result<()> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT hash, body, state FROM credit_models ORDER BY staged_at_ms")
                .fetch_all(&self.ctx().db.pool)
                .await?;
        let mut active = self.inner.builtin.clone();
        let mut staged = None;
        let mut loaded = Vec::new();
        for (hash, body, state) in rows {
            let m = match self.model_by_hash(&hash) {
                Some(m) => m,
                None => Arc::new(Model::load(&body)?),
            };
            match state.as_str() {
                "active" => active = m.clone(),
                "staged" => staged = Some(m.clone()),
                _ => {}
            }
            loaded.push(m);
        }
        {
            let mut models = self.inner.models.write().unwrap_or_else(|e| e.into_inner());
            for m in loaded {
                models.insert(m.hash.clone(), m);
            }
        }
        *self.inner.model.write().unwrap_or_else(|e| e.into_inner()) = active;
        *self.inner.staged.write().unwrap_or_else(|e| e.into_inner()) = staged;
        Ok(())
    }

    /// The staged model, if a rollout is under way.
    pub fn staged_model(&self) -> Option<Arc<Model>> {
        self.inner.staged.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn staged_score(&self, inputs: &Inputs) -> Option<StagedScore> {
        let m = self.staged_model()?;
        let s = m.score(inputs);
        Some(StagedScore { model_version: m.version.clone(), model_hash: m.hash.clone(), score: s.score, band: s.band })
    }

    /// Stage a model file: checked, stored by its hash (staging the same file
    /// again is a no-op), replacing any other staged one. The active model
    /// keeps scoring. Staging the active model is refused.
    pub async fn stage_model(&self, text: &str) -> Result<StoredModel> {
        let m = Model::load(text).map_err(model_error)?;
        if m.hash == self.model().hash {
            return Err(Error::new(crate::codes::MODEL_INVALID, "credit.model.already_active"));
        }
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE credit_models SET state = 'withdrawn' WHERE state = 'staged' AND hash <> $1")
            .bind(&m.hash)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "INSERT INTO credit_models (hash, version, body, state, staged_at_ms) VALUES ($1, $2, $3, 'staged', $4)
             ON CONFLICT (hash) DO UPDATE SET state = 'staged'",
        )
        .bind(&m.hash)
        .bind(&m.version)
        .bind(text)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.load_models().await?;
        self.stored_model(&m.hash).await
    }

    async fn stored_model(&self, hash: &str) -> Result<StoredModel> {
        sqlx::query_as("SELECT hash, version, state, staged_at_ms, activated_at_ms FROM credit_models WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.ctx().db.pool)
            .await?
            .ok_or_else(|| Error::not_found("credit_model"))
    }

    /// Every stored model, oldest first.
    pub async fn stored_models(&self) -> Result<Vec<StoredModel>> {
        Ok(sqlx::query_as(
            "SELECT hash, version, state, staged_at_ms, activated_at_ms FROM credit_models ORDER BY staged_at_ms",
        )
        .fetch_all(&self.ctx().db.pool)
        .await?)
    }

    /// Activate a stored model by its hash (or the build's own, to roll
    /// back): it scores from now on; scores already stored keep theirs.
    pub async fn activate_model(&self, hash: &str) -> Result<StoredModel> {
        let hash = hash.trim();
        let now = self.ctx().now_ms();
        let builtin = self.inner.builtin.clone();
        let mut tx = self.ctx().db.begin().await?;
        if hash == builtin.hash {
            sqlx::query(
                "INSERT INTO credit_models (hash, version, body, state, staged_at_ms) VALUES ($1, $2, $3, 'retired', $4)
                 ON CONFLICT (hash) DO NOTHING",
            )
            .bind(&builtin.hash)
            .bind(&builtin.version)
            .bind(crate::MODEL_V1)
            .bind(now)
            .execute(tx.conn())
            .await?;
        }
        let found: Option<(String,)> = sqlx::query_as("SELECT state FROM credit_models WHERE hash = $1")
            .bind(hash)
            .fetch_optional(tx.conn())
            .await?;
        if found.is_none() {
            return Err(Error::not_found("credit_model"));
        }
        sqlx::query("UPDATE credit_models SET state = 'retired' WHERE state = 'active'").execute(tx.conn()).await?;
        sqlx::query("UPDATE credit_models SET state = 'active', activated_at_ms = $1 WHERE hash = $2")
            .bind(now)
            .bind(hash)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.load_models().await?;
        tracing::info!(hash, "credit model activated");
        self.stored_model(hash).await
    }

    /// Both scores for up to `sample` opted-in people (in id order): the
    /// active model's and the staged one's, from the same current inputs.
    pub async fn compare_models(&self, sample: u64, mut progress: impl FnMut(u64)) -> Result<Comparison> {
        let to =
            self.staged_model().ok_or_else(|| Error::new(crate::codes::MODEL_INVALID, "credit.model.none_staged"))?;
        let from = self.model();
        let mut bands: BTreeMap<i64, BandShift> = BTreeMap::new();
        let mut after = String::new();
        let mut people = 0u64;
        while people < sample {
            let page = self.people_after(&after, 500.min((sample - people) as i64)).await?;
            let Some(last) = page.last().cloned() else { break };
            for u in &page {
                let Some(inputs) = self.current_inputs(u).await? else { continue };
                let (a, b) = (from.score(&inputs), to.score(&inputs));
                let from_band = from.bands.iter().rev().find(|x| x.from <= a.score).map_or(0, |x| x.from);
                let rank = |m: &Model, s: i64| m.bands.iter().filter(|x| x.from <= s).count();
                let e = bands.entry(from_band).or_insert_with(|| BandShift {
                    band: a.band.clone(),
                    min_shift: i64::MAX,
                    max_shift: i64::MIN,
                    ..Default::default()
                });
                let shift = b.score - a.score;
                e.people += 1;
                e.total_shift += shift;
                e.min_shift = e.min_shift.min(shift);
                e.max_shift = e.max_shift.max(shift);
                let (ra, rb) = (rank(&from, a.score), rank(&to, b.score));
                if rb > ra {
                    e.up_a_band += 1;
                } else if rb < ra {
                    e.down_a_band += 1;
                }
                people += 1;
            }
            progress(page.len() as u64);
            after = last;
        }
        Ok(Comparison {
            from_version: from.version.clone(),
            from_hash: from.hash.clone(),
            to_version: to.version.clone(),
            to_hash: to.hash.clone(),
            people,
            bands: bands.into_values().collect(),
        })
    }
}
