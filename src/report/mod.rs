//! Output for people and pipelines: SVG plots and text tables.

pub mod plot;
pub mod table;
