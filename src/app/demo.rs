//! The demo, the README's first command (`scale` with no target and no
//! data): the trust flow of the README on the bundled sample. The first time
//! (no model yet), it tunes the scaling profile on the sample as `tune` with
//! every default does, trains the model and publishes the two together as
//! `train --publish-profile` does; every demo run then plans with that pair,
//! as `scale --published-profile` does ([`super::published`]). What a team is
//! asked to do on its own history, shown on ours: the demo plans with the
//! settings its history chose, not with the untuned defaults.

use crate::settings::train::TrainSettings;
use crate::settings::tune::TuneSettings;
use anyhow::{bail, Context, Result};
use chrono::Utc;

/// Tune on the bundled sample, train, and publish model and profile as one
/// version of the model `count` in `models`. A failed step publishes nothing.
pub fn publish_pair(models: &str, quiet: bool) -> Result<()> {
    let dir = scratch_dir()?;
    let result = tune_and_train(models, &dir.0, quiet);
    drop(dir);
    result
}

fn tune_and_train(models: &str, dir: &std::path::Path, quiet: bool) -> Result<()> {
    let profile = dir.join("profile.toml");
    let (_, tuned) = super::tune::run(&TuneSettings::sample(&profile)?, true)
        .context("the demo could not tune its profile on the bundled sample")?;
    if !quiet {
        let held = &tuned.held_back.chosen;
        eprintln!(
            "note: tune chose on the sample's first half: {}",
            tuned.choice.why.replace('\n', " ")
        );
        eprintln!(
            "note: on the second half, which tune did not see, it was under-provisioned {:.3}% of the time at {} the oracle's node-hours, with {} scale operations",
            held.under_provisioned_pct,
            held.node_hours_vs_oracle
                .map_or_else(|| "n/a x".to_string(), |r| format!("{r:.3}x")),
            held.actions
        );
    }
    let mut train = TrainSettings::sample(models)?;
    train.publish_profile = Some(profile);
    let (code, summary) = super::train::run(&train, Utc::now(), true)?;
    if code != super::exit::OK {
        bail!(
            "the demo model was not published: {}",
            summary.card.gate.reason
        );
    }
    Ok(())
}

/// A folder of this process's own for tune's profile, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> Result<Scratch> {
    let dir = std::env::temp_dir().join(format!(
        "mlscaler-demo-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("{}: cannot create a scratch folder", dir.display()))?;
    Ok(Scratch(dir))
}
