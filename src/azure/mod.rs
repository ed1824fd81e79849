//! Azure adapters.
//!
//! - [`credential`]: Entra ID credentials (client secret, workload identity,
//!   managed identity, Azure CLI) with an optional extra trusted root.
pub mod credential;
