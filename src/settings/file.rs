//! The TOML config file: every flag of every command can be set there, under
//! the flags and the environment (flags > environment > file > defaults).
//!
//! ```toml
//! # settings for every command that has them
//! models = "https://acct.blob.core.windows.net/models/web/"
//! metric = "requests"
//!
//! [train]
//! data = "https://acct.blob.core.windows.net/metrics/web/"
//! lead-time = "10m"
//!
//! [scale]
//! target = "/subscriptions/.../agentPools/web"
//! capacity-per-node = 4000
//! max-nodes = 60
//! ```
//!
//! Keys are the long flag names (`capacity-per-node`, or `capacity_per_node`);
//! values are strings, numbers, booleans (a flag that is set when `true`) or
//! arrays (joined with commas, or, for a flag given once per value such as
//! `filter`, the flag repeated). A key no command knows is an error naming the
//! file and the key. The file is applied by turning its settings into flags
//! that the command line and the environment did not already set, so clap
//! checks every value exactly as it checks flags.

use super::profile::ScalingProfile;
use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Commands whose flags a config file may set.
pub const COMMANDS: [&str; 5] = ["train", "backtest", "scale", "tune", "inspect"];

/// Errors reading a config file; each names the file (and key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("{path}: unknown setting '{key}'{hint}")]
    UnknownKey {
        path: String,
        key: String,
        hint: String,
    },
    #[error("{path}: '{key}' is not a setting of the scaling profile; a profile to publish holds only the profile's settings and `policy` (what `mlscaler tune --out` writes), not where data, models or targets are")]
    NotProfile { path: String, key: String },
    #[error("{path}: '{key}' and '{other}' contradict each other (one turns off what the other sets): keep one")]
    Conflict {
        path: String,
        key: String,
        other: String,
    },
    #[error("{path}: setting '{key}': {message}")]
    BadValue {
        path: String,
        key: String,
        message: String,
    },
}

/// A parsed config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    /// Read and check a config file: every key must be a flag of some command
    /// (top level) or of its section's command.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        ConfigFile::from_text(path, &text)
    }

    /// Check a config file's text read from elsewhere (a profile published in
    /// the model registry); `origin` names it in messages.
    pub fn from_text(origin: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let path = origin;
        let p = path.display().to_string();
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml {
                path: p.clone(),
                message: e.message().to_string(),
            })?;
        let cfg = ConfigFile {
            path: path.to_path_buf(),
            table,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let root = crate::cli::Cli::command();
        let p = self.path.display().to_string();
        for (key, value) in &self.table {
            if let (Some(sub), toml::Value::Table(t)) = (root.find_subcommand(key), value) {
                for (k, v) in t {
                    let arg = find_arg(sub, &root, k).ok_or_else(|| ConfigError::UnknownKey {
                        path: p.clone(),
                        key: format!("{key}.{k}"),
                        hint: suggest(sub, k),
                    })?;
                    flag_values(&p, &format!("{key}.{k}"), arg, v)?;
                }
                continue;
            }
            let known = COMMANDS
                .iter()
                .filter_map(|c| root.find_subcommand(c))
                .find_map(|sub| find_arg(sub, &root, key));
            let Some(arg) = known else {
                return Err(ConfigError::UnknownKey {
                    path: p,
                    key: key.clone(),
                    hint: String::new(),
                });
            };
            flag_values(&p, key, arg, value)?;
        }
        Ok(())
    }

    /// The file's settings for `command` as flags: its section over the top
    /// level, only keys the command has.
    fn settings_for(&self, command: &str) -> Vec<(String, toml::Value)> {
        let root = crate::cli::Cli::command();
        let Some(sub) = root.find_subcommand(command) else {
            return Vec::new();
        };
        let mut out: Vec<(String, toml::Value)> = Vec::new();
        for (key, value) in &self.table {
            if matches!(value, toml::Value::Table(_)) && root.find_subcommand(key).is_some() {
                continue;
            }
            if let Some(arg) = find_arg(sub, &root, key) {
                out.push((arg.get_id().to_string(), value.clone()));
            }
        }
        if let Some(toml::Value::Table(t)) = self.table.get(command) {
            for (k, v) in t {
                if let Some(arg) = find_arg(sub, &root, k) {
                    let id = arg.get_id().to_string();
                    out.retain(|(i, _)| *i != id);
                    out.push((id, v.clone()));
                }
            }
        }
        out
    }
}

/// A scaling profile to publish with a model (`train --publish-profile`):
/// only the profile's settings and `policy` (what `tune --out` writes), each
/// value checked as `scale` and `backtest` check it. The profile as `scale`
/// reads it.
pub fn scaling_profile(origin: &Path, text: &str) -> Result<ScalingProfile, ConfigError> {
    let f = ConfigFile::from_text(origin, text)?;
    let p = origin.display().to_string();
    let profile_args = <crate::cli::ProfileArgs as clap::Args>::augment_args(Command::new("p"));
    for key in f.table.keys() {
        let long = key.replace('_', "-");
        let known = long == "policy"
            || profile_args
                .get_arguments()
                .any(|a| a.get_long() == Some(long.as_str()));
        if !known {
            return Err(ConfigError::NotProfile {
                path: p,
                key: key.clone(),
            });
        }
    }
    let mut scale = None;
    for command in ["scale", "backtest"] {
        let bad = |message: String| ConfigError::BadValue {
            path: p.clone(),
            key: format!("(as `{command}` reads it)"),
            message,
        };
        let argv = apply(vec!["mlscaler".into(), command.into()], &f)?;
        let cli = crate::cli::Cli::command()
            .try_get_matches_from(&argv)
            .and_then(|m| <crate::cli::Cli as clap::FromArgMatches>::from_arg_matches(&m))
            .map_err(|e| bad(e.to_string().lines().next().unwrap_or_default().into()))?;
        match &cli.command {
            crate::cli::Command::Scale(a) => {
                let s =
                    super::scale::ScaleSettings::from_args(a).map_err(|e| bad(e.to_string()))?;
                scale = Some(s.profile);
            }
            crate::cli::Command::Backtest(a) => {
                super::backtest::BacktestSettings::from_args(a).map_err(|e| bad(e.to_string()))?;
            }
            _ => {}
        }
    }
    Ok(scale.expect("scale read the profile"))
}

/// A flag of `sub` (or a global flag of the root) by its long name, accepting
/// `snake_case` for `kebab-case`.
fn find_arg<'a>(sub: &'a Command, root: &'a Command, key: &str) -> Option<&'a clap::Arg> {
    let long = key.replace('_', "-");
    sub.get_arguments().chain(root.get_arguments()).find(|a| {
        a.get_long() == Some(long.as_str())
            && a.get_id() != "config"
            && a.get_id() != "help"
            && a.get_id() != "version"
    })
}

fn suggest(sub: &Command, key: &str) -> String {
    let key = key.replace('_', "-");
    let close = sub
        .get_arguments()
        .filter_map(|a| a.get_long())
        .find(|l| l.contains(key.as_str()) || key.contains(l));
    match close {
        Some(l) => format!(" for `{}` (did you mean '{l}'?)", sub.get_name()),
        None => format!(" for `{}`", sub.get_name()),
    }
}

/// The flags a TOML value stands for. An array is one flag with its items
/// joined by commas, or, for a flag given once per value (`--filter`,
/// `--series-column`), the flag once per item.
fn flag_values(
    path: &str,
    key: &str,
    arg: &clap::Arg,
    v: &toml::Value,
) -> Result<Vec<OsString>, ConfigError> {
    let long = arg.get_long().unwrap_or(key);
    let bad = |m: &str| ConfigError::BadValue {
        path: path.to_string(),
        key: key.to_string(),
        message: m.to_string(),
    };
    let scalar = |v: &toml::Value| -> Result<String, ConfigError> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Datetime(d) => Ok(d.to_string()),
            _ => Err(bad("expected a string, number or boolean")),
        }
    };
    Ok(match v {
        toml::Value::Boolean(true) => vec![format!("--{long}").into()],
        toml::Value::Boolean(false) => vec![],
        toml::Value::Array(items) => {
            let parts = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            let repeated = matches!(arg.get_action(), clap::ArgAction::Append)
                && arg.get_value_delimiter().is_none();
            if repeated {
                parts
                    .into_iter()
                    .flat_map(|v| [format!("--{long}").into(), v.into()])
                    .collect()
            } else {
                vec![format!("--{long}").into(), parts.join(",").into()]
            }
        }
        toml::Value::Table(_) => {
            return Err(bad(
                "a table is only allowed as a command section ([train], [scale], ...)",
            ))
        }
        other => vec![format!("--{long}").into(), scalar(other)?.into()],
    })
}

/// The command line with the config file (`--config` / `MLSCALER_CONFIG`)
/// applied under it, and the file.
pub fn with_config(
    argv: Vec<OsString>,
) -> Result<(Vec<OsString>, Option<ConfigFile>), ConfigError> {
    match config_path(&argv) {
        None => Ok((argv, None)),
        Some(p) => {
            let f = ConfigFile::load(&p)?;
            Ok((apply(argv, &f)?, Some(f)))
        }
    }
}

/// The config file named by `--config` or `MLSCALER_CONFIG`, if any.
pub fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
        if s == "--" {
            break;
        }
    }
    std::env::var_os("MLSCALER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The command line with the config file's settings added as flags where the
/// command line and the environment left them at their defaults.
pub fn apply(argv: Vec<OsString>, file: &ConfigFile) -> Result<Vec<OsString>, ConfigError> {
    let Ok(matches) = crate::cli::Cli::command().try_get_matches_from(&argv) else {
        // Let clap report the usage error on the original arguments.
        return Ok(argv);
    };
    let Some((command, sub)) = matches.subcommand() else {
        return Ok(argv);
    };
    let p = file.path.display().to_string();
    let root = crate::cli::Cli::command();
    let Some(cmd) = root.find_subcommand(command) else {
        return Ok(argv);
    };
    let from_user = |id: &str| [sub, &matches].iter().any(|m| is_from_user(m, id));
    let mut extra: Vec<OsString> = Vec::new();
    let mut applied: Vec<&clap::Arg> = Vec::new();
    for (id, value) in file.settings_for(command) {
        let arg = cmd
            .get_arguments()
            .chain(root.get_arguments())
            .find(|a| a.get_id() == id.as_str());
        // settings_for only returns ids of the command's (or global) flags.
        let Some(arg) = arg else { continue };
        // A flag the user gave wins over the file's setting, and so over a
        // file setting that contradicts it (`--calibration-quantile` over
        // the file's `no-calibration`).
        let conflicts = cmd.get_arg_conflicts_with(arg);
        if from_user(&id) || conflicts.iter().any(|c| from_user(c.get_id().as_str())) {
            continue;
        }
        if let Some(other) = applied
            .iter()
            .find(|a| conflicts.iter().any(|c| c.get_id() == a.get_id()))
        {
            return Err(ConfigError::Conflict {
                path: p,
                key: other.get_long().unwrap_or_default().to_string(),
                other: arg.get_long().unwrap_or_default().to_string(),
            });
        }
        extra.extend(flag_values(&p, &id, arg, &value)?);
        applied.push(arg);
    }
    // Insert right after the subcommand's name.
    let pos = argv
        .iter()
        .position(|a| a.to_string_lossy() == command)
        .map_or(argv.len(), |i| i + 1);
    let mut out = argv;
    out.splice(pos..pos, extra);
    Ok(out)
}

fn is_from_user(m: &ArgMatches, id: &str) -> bool {
    // Ask only for ids this level knows (value_source panics on others).
    m.try_get_raw(id).ok().flatten().is_some()
        && matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
}

/// Settings whose values are never shown.
const SECRET_IDS: [&str; 2] = ["account_key", "connection_string"];

/// One effective setting: (flag name, value as shown, source).
pub type Setting = (String, String, &'static str);

/// Every command's effective settings, with where each value comes from
/// (flag, env, file, default), secrets masked: what `config check` prints.
pub fn effective(file: Option<&ConfigFile>) -> Result<Vec<(String, Vec<Setting>)>, ConfigError> {
    let profile_defaults: toml::Table = super::profile::ScalingProfile::default()
        .to_toml()
        .parse()
        .expect("the profile writes valid TOML");
    let mut out = Vec::new();
    for command in ["train", "backtest", "scale"] {
        let base: Vec<OsString> = vec!["mlscaler".into(), command.into()];
        let argv = match file {
            Some(f) => apply(base.clone(), f)?,
            None => base.clone(),
        };
        let from_file: Vec<String> = file
            .map(|f| {
                f.settings_for(command)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect()
            })
            .unwrap_or_default();
        let matches = crate::cli::Cli::command()
            .try_get_matches_from(&argv)
            .map_err(|e| ConfigError::BadValue {
                path: file.map_or("(no file)".into(), |f| f.path.display().to_string()),
                key: command.to_string(),
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?;
        let Some((_, sub)) = matches.subcommand() else {
            continue;
        };
        let root = crate::cli::Cli::command();
        let cmd = root.find_subcommand(command).expect("a known command");
        let mut rows = Vec::new();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let Some(values) = sub.try_get_raw(id).ok().flatten() else {
                // The scaling profile's defaults live in one place: the checked profile.
                let long = arg.get_long().unwrap_or(id);
                if let Some(v) = profile_defaults.get(long) {
                    let shown = match v {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(i) => i.to_string(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|x| match x {
                                toml::Value::String(s) => s.clone(),
                                toml::Value::Float(f) => f.to_string(),
                                _ => String::new(),
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                        _ => String::new(),
                    };
                    rows.push((long.to_string(), shown, "default"));
                }
                continue;
            };
            let value: Vec<String> = values.map(|v| v.to_string_lossy().into_owned()).collect();
            let source = match sub.value_source(id) {
                Some(ValueSource::CommandLine) if from_file.iter().any(|f| f == id) => "file",
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "env",
                _ => "default",
            };
            let shown = if SECRET_IDS.contains(&id) || arg.is_hide_env_values_set() {
                "<redacted>".to_string()
            } else {
                value.join(",")
            };
            let shown = crate::store::Redacted(&shown).to_string();
            rows.push((arg.get_long().unwrap_or(id).to_string(), shown, source));
        }
        out.push((command.to_string(), rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, ConfigFile) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mlscaler.toml");
        std::fs::write(&p, text).unwrap();
        let f = ConfigFile::load(&p).unwrap();
        (dir, f)
    }

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_settings_fill_what_the_command_line_left_at_defaults() {
        let (_d, f) = file("models = \"m\"\n[scale]\ncapacity-per-node = 4000\nmax_nodes = 60\ndry-run = true\nmin-nodes = 2\n");
        let out = apply(argv(&["mlscaler", "scale", "--min-nodes", "3"]), &f).unwrap();
        let s: Vec<String> = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = s.join(" ");
        assert!(joined.contains("--capacity-per-node 4000"), "{joined}");
        assert!(joined.contains("--max-nodes 60"), "{joined}");
        assert!(joined.contains("--dry-run"), "{joined}");
        assert!(joined.contains("--models m"), "{joined}");
        // The flag wins: the file's min-nodes is not added.
        assert_eq!(
            s.iter().filter(|a| *a == "--min-nodes").count(),
            1,
            "{joined}"
        );
        assert!(joined.ends_with("--min-nodes 3"), "{joined}");
    }

    #[test]
    fn a_flag_wins_over_a_file_setting_that_contradicts_it_and_a_file_may_not_hold_both() {
        let (_d, f) = file("no-calibration = true\n");
        let out = apply(
            argv(&["mlscaler", "backtest", "--calibration-quantile", "0.9"]),
            &f,
        )
        .unwrap();
        let joined = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(!joined.contains("--no-calibration"), "{joined}");
        // Without the flag the file's setting applies.
        let out = apply(argv(&["mlscaler", "backtest"]), &f).unwrap();
        assert!(out.iter().any(|a| a == "--no-calibration"), "{out:?}");
        // Both in one file: an error naming the file and both keys.
        let (_d, f) = file("no-calibration = true\ncalibration-window = \"7d\"\n");
        let e = apply(argv(&["mlscaler", "scale"]), &f)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mlscaler.toml")
                && e.contains("'no-calibration'")
                && e.contains("'calibration-window'"),
            "{e}"
        );
    }

    #[test]
    fn arrays_repeat_flags_given_once_per_value_and_join_the_others() {
        let (_d, f) = file(
            "[train]\nfilter = [\"metricName=Percentage CPU\", \"a=b,c\"]\nrolling = [\"1h\", \"1d\"]\n",
        );
        let out = apply(argv(&["mlscaler", "train"]), &f).unwrap();
        let s: Vec<String> = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = s.join(" ");
        assert!(
            joined.contains("--filter metricName=Percentage CPU --filter a=b,c"),
            "{joined}"
        );
        assert!(joined.contains("--rolling 1h,1d"), "{joined}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "[scale]\ncapacity = 3\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("bad.toml")
                && e.contains("'scale.capacity'")
                && e.contains("capacity-per-node"),
            "{e}"
        );
        std::fs::write(&p, "frobnicate = 1\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("unknown setting 'frobnicate'"), "{e}");
        std::fs::write(&p, "[scale\n").unwrap();
        assert!(ConfigFile::load(&p)
            .unwrap_err()
            .to_string()
            .contains("not valid TOML"));
    }

    #[test]
    fn a_profile_to_publish_holds_only_profile_settings_with_values_scale_accepts() {
        let origin = Path::new("tonight.toml");
        let p = scaling_profile(
            origin,
            "policy = \"target-tracking\"\ncapacity-per-node = 40.0\nlead-time = \"10m\"\nalarm-cooldown = \"5m\"\n",
        )
        .unwrap();
        assert_eq!(
            p.pool.lead_time.map(|d| d.to_string()).as_deref(),
            Some("10m")
        );
        for (text, says) in [
            (
                "models = \"m\"\n",
                "'models' is not a setting of the scaling profile",
            ),
            ("[scale]\nmax-nodes = 3\n", "'scale' is not a setting"),
            ("quantile = 1.5\n", "quantile"),
            ("policy = \"jobs\"\n", "jobs"),
        ] {
            let e = scaling_profile(origin, text).unwrap_err().to_string();
            assert!(
                e.contains("tonight.toml") && e.contains(says),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn effective_settings_say_where_each_value_comes_from_and_hide_secrets() {
        let (_d, f) = file("account-key = \"c2VjcmV0LWtleQ==\"\n[scale]\nmax-nodes = 60\n");
        let eff = effective(Some(&f)).unwrap();
        let scale = &eff.iter().find(|(c, _)| c == "scale").unwrap().1;
        let row = |name: &str| scale.iter().find(|(n, _, _)| n == name).cloned().unwrap();
        assert_eq!(row("max-nodes"), ("max-nodes".into(), "60".into(), "file"));
        assert_eq!(row("min-nodes").2, "default");
        assert_eq!(row("account-key").1, "<redacted>");
        let text = format!("{eff:?}");
        assert!(!text.contains("c2VjcmV0LWtleQ=="), "{text}");
    }
}
