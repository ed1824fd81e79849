//! `mlscaler config check`: validate the config file against every command
//! and print each command's effective settings and where each comes from.

use super::exit;
use crate::settings::file::{effective, ConfigFile};
use crate::settings::Output;
use anyhow::Result;

/// Print the effective settings (secrets masked) as text or JSON.
pub fn run(file: Option<&ConfigFile>, out: Output) -> Result<i32> {
    let eff = effective(file)?;
    if out.json {
        let v: serde_json::Map<String, serde_json::Value> = eff
            .iter()
            .map(|(c, rows)| {
                let r: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(k, v, src)| (k.clone(), serde_json::json!({"value": v, "source": src})))
                    .collect();
                (c.clone(), serde_json::Value::Object(r))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    match file {
        Some(f) => println!("config file {}: valid", f.path.display()),
        None => {
            println!("no config file (--config / MLSCALER_CONFIG): defaults and environment only")
        }
    }
    for (command, rows) in &eff {
        println!("\n[{command}]");
        for (k, v, src) in rows {
            println!("  {k:<24} {v:<40} ({src})");
        }
    }
    Ok(exit::OK)
}
