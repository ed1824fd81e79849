//! Azure resource ids for the two scale targets: an AKS agent pool and a VM
//! Scale Set. Provider and segment names compare case-insensitively, as ARM
//! does; names keep the spelling they were given.

use std::fmt;

/// Why a string is not the resource id we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("resource id {id:?} is not {expected}: {reason}")]
    Invalid {
        id: String,
        expected: &'static str,
        reason: String,
    },
    #[error("missing setting {0} to build the agent pool id")]
    MissingEnv(&'static str),
}

const AKS_POOL_SHAPE: &str = "an AKS agent pool id (/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/C/agentPools/P)";
const VMSS_SHAPE: &str = "a VM scale set id (/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/N)";

/// `/subscriptions/S/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/C/agentPools/P`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentPoolId {
    pub subscription: String,
    pub resource_group: String,
    pub cluster: String,
    pub pool: String,
}

/// `/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/N`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VmssId {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

/// Splits `id` and checks the literal segments (`None` = a name) ignoring case.
fn match_segments<'a>(
    id: &'a str,
    pattern: &[Option<&str>],
    expected: &'static str,
) -> Result<Vec<&'a str>, IdError> {
    let err = |reason: String| IdError::Invalid {
        id: id.to_string(),
        expected,
        reason,
    };
    let trimmed = id.trim();
    let rest = trimmed
        .strip_prefix('/')
        .ok_or_else(|| err("it should start with '/'".into()))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != pattern.len() {
        return Err(err(format!(
            "it has {} path segments, expected {}",
            parts.len(),
            pattern.len()
        )));
    }
    let mut names = Vec::new();
    for (i, (part, want)) in parts.iter().zip(pattern).enumerate() {
        match want {
            Some(lit) if !part.eq_ignore_ascii_case(lit) => {
                return Err(err(format!(
                    "segment {} is {part:?}, expected {lit:?}",
                    i + 1
                )))
            }
            Some(_) => {}
            None => {
                if part.is_empty() {
                    return Err(err(format!("segment {} (a name) is empty", i + 1)));
                }
                if part
                    .chars()
                    .any(|c| c.is_whitespace() || c == '?' || c == '#')
                {
                    return Err(err(format!(
                        "segment {} ({part:?}) has a character not allowed in a name",
                        i + 1
                    )));
                }
                names.push(*part);
            }
        }
    }
    Ok(names)
}

impl AgentPoolId {
    pub fn parse(id: &str) -> Result<Self, IdError> {
        let n = match_segments(
            id,
            &[
                Some("subscriptions"),
                None,
                Some("resourceGroups"),
                None,
                Some("providers"),
                Some("Microsoft.ContainerService"),
                Some("managedClusters"),
                None,
                Some("agentPools"),
                None,
            ],
            AKS_POOL_SHAPE,
        )?;
        Ok(AgentPoolId {
            subscription: n[0].into(),
            resource_group: n[1].into(),
            cluster: n[2].into(),
            pool: n[3].into(),
        })
    }

    /// From the workshop's variables: `AZURE_SUBSCRIPTION_ID` (or
    /// `SUBSCRIPTION_ID`), `AKS_RG`, `AKS_NAME`, and the pool name given
    /// (or `AKS_POOL`/`AKS_NODEPOOL`).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        pool: Option<&str>,
    ) -> Result<Self, IdError> {
        let var = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|n| get(n).filter(|v| !v.trim().is_empty()))
                .ok_or(IdError::MissingEnv(names[0]))
        };
        let pool = match pool {
            Some(p) => p.to_string(),
            None => var(&["AKS_POOL", "AKS_NODEPOOL"])?,
        };
        let id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}/agentPools/{}",
            var(&["AZURE_SUBSCRIPTION_ID", "SUBSCRIPTION_ID"])?,
            var(&["AKS_RG"])?,
            var(&["AKS_NAME"])?,
            pool
        );
        Self::parse(&id)
    }

    /// As [`AgentPoolId::from_lookup`] with the process environment.
    pub fn from_env(pool: Option<&str>) -> Result<Self, IdError> {
        Self::from_lookup(|k| std::env::var(k).ok(), pool)
    }

    /// The managed cluster's id.
    pub fn cluster_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.subscription, self.resource_group, self.cluster
        )
    }
}

impl fmt::Display for AgentPoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/agentPools/{}", self.cluster_id(), self.pool)
    }
}

impl std::str::FromStr for AgentPoolId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl VmssId {
    pub fn parse(id: &str) -> Result<Self, IdError> {
        let n = match_segments(
            id,
            &[
                Some("subscriptions"),
                None,
                Some("resourceGroups"),
                None,
                Some("providers"),
                Some("Microsoft.Compute"),
                Some("virtualMachineScaleSets"),
                None,
            ],
            VMSS_SHAPE,
        )?;
        Ok(VmssId {
            subscription: n[0].into(),
            resource_group: n[1].into(),
            name: n[2].into(),
        })
    }
}

impl fmt::Display for VmssId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachineScaleSets/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

impl std::str::FromStr for VmssId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

/// A scale target: either kind of id, told apart by its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetId {
    AgentPool(AgentPoolId),
    Vmss(VmssId),
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetId::AgentPool(id) => id.fmt(f),
            TargetId::Vmss(id) => id.fmt(f),
        }
    }
}

impl TargetId {
    pub fn parse(id: &str) -> Result<Self, IdError> {
        if id.to_ascii_lowercase().contains("/microsoft.compute/") {
            VmssId::parse(id).map(TargetId::Vmss)
        } else if id
            .to_ascii_lowercase()
            .contains("/microsoft.containerservice/")
        {
            AgentPoolId::parse(id).map(TargetId::AgentPool)
        } else {
            Err(IdError::Invalid {
                id: id.to_string(),
                expected: "an AKS agent pool id or a VM scale set id",
                reason: "its provider is neither Microsoft.ContainerService nor Microsoft.Compute"
                    .into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1/agentPools/agentpool1";

    #[test]
    fn agent_pool_id_round_trips() {
        let id = AgentPoolId::parse(POOL).unwrap();
        assert_eq!(id.resource_group, "rg1");
        assert_eq!(id.cluster, "clustername1");
        assert_eq!(id.pool, "agentpool1");
        assert_eq!(id.to_string(), POOL);
    }

    #[test]
    fn provider_and_segment_names_are_case_insensitive() {
        let id = AgentPoolId::parse(&POOL.to_ascii_lowercase().replace("rg1", "RG1")).unwrap();
        assert_eq!(id.resource_group, "RG1", "names keep their spelling");
        let v = VmssId::parse(
            "/SUBSCRIPTIONS/s/resourcegroups/rg/providers/microsoft.compute/VIRTUALMACHINESCALESETS/vmss1/",
        )
        .unwrap();
        assert_eq!(v.name, "vmss1");
    }

    #[test]
    fn wrong_provider_or_shape_is_a_clear_error() {
        let e =
            AgentPoolId::parse(&POOL.replace("Microsoft.ContainerService", "Microsoft.Compute"))
                .unwrap_err();
        assert!(e.to_string().contains("segment 6"), "{e}");
        let e = VmssId::parse("/subscriptions/s/resourceGroups/rg").unwrap_err();
        assert!(e.to_string().contains("path segments"), "{e}");
        let e = VmssId::parse("subscriptions/s").unwrap_err();
        assert!(e.to_string().contains("start with '/'"), "{e}");
        let e = AgentPoolId::parse(&POOL.replace("/rg1/", "//")).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(TargetId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x"
        )
        .is_err());
    }

    #[test]
    fn target_id_tells_the_kinds_apart() {
        assert!(matches!(TargetId::parse(POOL), Ok(TargetId::AgentPool(_))));
        assert!(matches!(
            TargetId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/v"),
            Ok(TargetId::Vmss(_))
        ));
    }

    #[test]
    fn pool_id_from_workshop_variables() {
        let get = |k: &str| match k {
            "AZURE_SUBSCRIPTION_ID" => Some("sub".to_string()),
            "AKS_RG" => Some("rg".to_string()),
            "AKS_NAME" => Some("aks1".to_string()),
            _ => None,
        };
        let id = AgentPoolId::from_lookup(get, Some("user1")).unwrap();
        assert_eq!(id.to_string(), "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/user1");
        assert_eq!(
            AgentPoolId::from_lookup(get, None).unwrap_err(),
            IdError::MissingEnv("AKS_POOL")
        );
    }
}
