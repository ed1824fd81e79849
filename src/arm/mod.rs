//! A thin, typed, hand-written client for the few Azure Resource Manager
//! operations mlscaler needs: AKS agent pools and VM Scale Sets.
//!
//! - [`ArmClient`] (async): bearer token from any `azure_core`
//!   `TokenCredential`, a retry layer (429 honours `Retry-After`; 5xx and
//!   timeouts: bounded exponential backoff with jitter; 409 busy: wait and
//!   retry, one write in flight; 412 surfaced), long-running operations
//!   polled through `Azure-AsyncOperation` (else `Location`) until they end;
//!   every wait capped, a run deadline and a stop flag ([`RunLimits`]), the
//!   writes of a run noted ([`Journal`]).
//! - Writes are tied to the read they were planned from (`If-Match` with
//!   that read's ETag); a conditional write whose answer is lost is read
//!   back, never blindly resent.
//! - The one target interface ([`crate::core::group::NodeGroup`], a sync
//!   facade over a small tokio runtime, [`Blocking`]): [`AksPoolGroup`] and
//!   [`VmssGroup`] by count, [`VmssInstances`] instance by instance,
//!   [`VmssSize`] along a ladder of VM sizes.
//! - Typed errors: [`ArmError`], each carrying ARM's code and message.
//! - [`operations`]: every request the client can send, with the RBAC action
//!   it needs; the least-privilege custom role is generated from it.

pub mod aks;
pub mod client;
pub mod error;
pub mod group;
pub mod id;
pub mod instances;
pub mod operations;
pub mod size;
pub mod vmss;

pub use aks::{AgentPool, AgentPoolProperties, ManagedCluster};
pub use client::{
    ArmClient, ArmConfig, Jitter, Journal, RetryPolicy, RunLimits, Sleeper, TokioSleeper,
    WriteEvent, XorShiftJitter,
};
pub use error::{ArmError, ArmErrorBody, QuotaNumbers};
pub use group::{open_group, AksPoolGroup, AutoscalerMode, Blocking, SetOutcome, VmssGroup};
pub use id::{AgentPoolId, IdError, TargetId, VmssId};
pub use instances::VmssInstances;
pub use size::VmssSize;
pub use vmss::{InstanceAction, ProtectionPolicy, Vmss, VmssVm};
