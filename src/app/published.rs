//! `--published-profile` of `scale` and `backtest`: the scaling profile that
//! `train --publish-profile` published with the model, read from the
//! registry once, before the settings are checked, and applied as a config
//! file is, under what the command line, the environment and `--config`
//! already set (flags > environment > `--config` > the published profile >
//! defaults). The version it came with is pinned (`--model-version`), so the
//! run loads the model it was published with even when a newer pair lands in
//! between. In loop mode ([`Follow`]) each round runs the newest pair.
//! The demo (`scale` with no target and no data) reads its published profile
//! without the flag, and publishes the pair first ([`super::demo`]).

use super::storage;
use crate::cli::{Cli, Command, PolicyName};
use crate::settings::data::StorageAccess;
use crate::settings::file::{self, ConfigFile};
use crate::settings::scale::is_demo_args;
use crate::settings::scale::ScaleSettings;
use crate::settings::Command as SettingsCommand;
use crate::store::registry::{Registry, RegistryError};
use anyhow::{bail, Result};
use std::ffi::OsString;
use std::path::PathBuf;

/// What the command asks of the registry.
struct Wanted<'a> {
    command: &'static str,
    models: &'a str,
    storage: StorageAccess,
    name: String,
    version: Option<&'a str>,
    /// Pin the model version the profile came with (the command loads a model).
    pin: bool,
    /// The demo ([`super::demo`]): the pair is published first when there
    /// is no model yet, and a model published without a profile runs the
    /// defaults.
    demo: bool,
}

/// The command line with the published profile applied under it and the
/// version pinned, and that version, when the command asks for it (`None`:
/// it does not).
pub fn resolve(
    cli: &Cli,
    argv: &[OsString],
    quiet: bool,
) -> Result<Option<(Vec<OsString>, String)>> {
    resolve_unless(cli, argv, quiet, None)
}

/// As [`resolve`]; `None` also when the latest version is `known` (its
/// profile is not read again).
fn resolve_unless(
    cli: &Cli,
    argv: &[OsString],
    quiet: bool,
    known: Option<&str>,
) -> Result<Option<(Vec<OsString>, String)>> {
    let Some(w) = wanted(cli)? else {
        return Ok(None);
    };
    let store = storage::open_models(w.models, &w.storage)?;
    let registry = Registry::new(store.as_ref());
    let pointer = match w.version {
        Some(v) => registry.load_version(&w.name, v)?.0,
        None => match registry.latest(&w.name) {
            Err(RegistryError::NoModel { .. }) if w.demo => {
                if !quiet {
                    eprintln!(
                        "note: no model '{}' in {} yet: tuning the scaling profile on the bundled sample, then training the model and publishing the two together (about a minute, once)",
                        w.name,
                        registry.location()
                    );
                }
                super::demo::publish_pair(w.models, quiet)?;
                registry.latest(&w.name)?
            }
            found => found?,
        },
    };
    if known == Some(pointer.id.as_str()) {
        return Ok(None);
    }
    if w.demo && pointer.profile.is_none() {
        if !quiet {
            eprintln!(
                "note: model '{}' version {} was published without a scaling profile: the demo plans with the default settings (`mlscaler tune` chooses them; `train --publish-profile` publishes them with the model)",
                w.name, pointer.id
            );
        }
        return Ok(None);
    }
    let text = registry.load_profile(&pointer)?;
    let object = pointer.profile.clone().unwrap_or_default();
    let origin = PathBuf::from(format!("{}/{object}", registry.location()));
    let profile = ConfigFile::from_text(&origin, &text)?;
    let mut out = file::apply(argv.to_vec(), &profile)?;
    if w.pin && w.version.is_none() {
        let at = out
            .iter()
            .position(|a| a.to_string_lossy() == w.command)
            .map_or(out.len(), |i| i + 1);
        out.splice(
            at..at,
            [OsString::from("--model-version"), pointer.id.clone().into()],
        );
    }
    tracing::info!(
        profile = %origin.display(),
        model = %w.name,
        version = %pointer.id,
        "using the published profile"
    );
    if !quiet {
        eprintln!(
            "profile: {} (published with model '{}' version {})",
            origin.display(),
            w.name,
            pointer.id
        );
    }
    Ok(Some((out, pointer.id)))
}

/// `scale --every --published-profile`: every round runs the newest pair
/// published, model and profile together. Before each round the registry's
/// pointer is read; when a newer version was published since, the settings
/// are built again from the same command line with that version's profile
/// under it (and its model pinned), exactly as a new process would build
/// them. A pointer that cannot be read, or a profile that does not check,
/// keeps the pair the loop runs (and says why).
pub struct Follow {
    /// The command line after the config file, before the published profile.
    argv: Vec<OsString>,
    config: Option<ConfigFile>,
    /// The version the loop runs.
    version: String,
}

impl Follow {
    /// The follower of a `scale --every --published-profile` command line
    /// whose pair `version` the first round runs (`None` for any other
    /// command, or when `--model-version` fixes the version).
    pub fn new(
        cli: &Cli,
        argv: &[OsString],
        config: Option<ConfigFile>,
        version: &str,
    ) -> Option<Follow> {
        match &cli.command {
            Command::Scale(a)
                if a.published_profile && a.every.is_some() && a.model_version.is_none() =>
            {
                Some(Follow {
                    argv: argv.to_vec(),
                    config,
                    version: version.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The version the loop runs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The settings of a newer published pair, if one was published since
    /// the last call (`None`: keep running the current one).
    pub fn newer(&mut self, quiet: bool) -> Result<Option<ScaleSettings>> {
        let cli = <Cli as clap::Parser>::try_parse_from(&self.argv)?;
        let Some((argv, id)) = resolve_unless(&cli, &self.argv, quiet, Some(&self.version))? else {
            return Ok(None);
        };
        let cli = <Cli as clap::Parser>::try_parse_from(argv)?;
        let Some(SettingsCommand::Scale(s)) =
            SettingsCommand::from_cli(&cli, self.config.as_ref())?
        else {
            bail!("--published-profile: the command is no longer a scale command");
        };
        self.version = id;
        Ok(Some(*s))
    }
}

/// The registry, name and version the command's `--published-profile` reads.
fn wanted(cli: &Cli) -> Result<Option<Wanted<'_>>> {
    let (command, input, model, models, version, pin, demo) = match &cli.command {
        Command::Scale(a)
            if a.published_profile
                || (is_demo_args(a)
                    && !matches!(a.policy, PolicyName::Jobs | PolicyName::Vertical)) =>
        {
            (
                "scale",
                &a.input,
                a.model.as_deref(),
                a.models.as_str(),
                a.model_version.as_deref(),
                true,
                !a.published_profile,
            )
        }
        Command::Backtest(a) if a.published_profile => (
            "backtest",
            &a.input,
            a.model.as_deref(),
            a.models.as_str(),
            a.model_version.as_deref(),
            a.model.is_some(),
            false,
        ),
        _ => return Ok(None),
    };
    // As `scale` names its model: --model, else the metric, else `count`
    // (the bundled sample's).
    let name = match (model, input.metric.as_deref(), input.data.as_deref()) {
        (Some(m), _, _) | (None, Some(m), _) => m.trim().to_string(),
        (None, None, None) => "count".to_string(),
        (None, None, Some(_)) => {
            bail!("--published-profile: whose profile? pass --model NAME (or --metric, the name `train` gave the model)")
        }
    };
    Ok(Some(Wanted {
        command,
        models,
        storage: StorageAccess::from_args(&input.storage),
        name,
        version: version.map(str::trim),
        pin,
        demo,
    }))
}
