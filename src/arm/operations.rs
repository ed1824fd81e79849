//! Every Azure Resource Manager request the client in this module can send,
//! in one list: HTTP method, the URL shape, and the RBAC action Azure checks
//! for it. The least-privilege custom role ([`custom_role`], printed by
//! `mlscaler config role --scope ...`, and the README's copy of it) is
//! generated from this list, and the test suite checks that every request
//! the ARM emulator saw maps to an entry here ([`find`]).
//!
//! When the client learns a new request, add it here: the role follows, and
//! the emulator check fails until it is listed.

/// One ARM operation the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// What it is for (shown in `mlscaler config role --list`).
    pub purpose: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// The URL path the client sends, `{name}` standing for one segment
    /// (ids, names, locations). The query (`api-version`, `$expand`) does
    /// not change the action Azure checks.
    pub path: &'static str,
    /// The Azure RBAC action the request needs.
    pub action: &'static str,
    /// The commands and modes that send it.
    pub used_by: &'static str,
}

const AKS_CLUSTER: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}";
const AKS_POOL: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}/agentPools/{agentPoolName}";
const VMSS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}";
const VMSS_VMS: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/virtualMachines";
const VMSS_VM: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/virtualMachines/{instanceId}";

/// Every request the ARM client can send (see the module docs).
pub const OPERATIONS: &[Operation] = &[
    // AKS agent pools (`scale --target <agent pool id>`).
    Operation {
        purpose: "read an AKS agent pool (count, autoscaler, state, ETag)",
        method: "GET",
        path: AKS_POOL,
        action: "Microsoft.ContainerService/managedClusters/agentPools/read",
        used_by: "scale (AKS agent pool)",
    },
    Operation {
        purpose: "set an AKS agent pool's count or minCount",
        method: "PUT",
        path: AKS_POOL,
        action: "Microsoft.ContainerService/managedClusters/agentPools/write",
        used_by: "scale (AKS agent pool)",
    },
    Operation {
        purpose: "read the AKS cluster of a pool",
        method: "GET",
        path: AKS_CLUSTER,
        action: "Microsoft.ContainerService/managedClusters/read",
        used_by: "ArmClient::get_managed_cluster (no command calls it today)",
    },
    Operation {
        purpose: "poll an AKS operation (Azure-AsyncOperation header)",
        method: "GET",
        path: "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operations/{operationId}",
        action: "Microsoft.ContainerService/locations/operations/read",
        used_by: "scale (AKS agent pool)",
    },
    Operation {
        purpose: "poll an AKS operation (Location header)",
        method: "GET",
        path: "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operationresults/{operationId}",
        action: "Microsoft.ContainerService/locations/operationresults/read",
        used_by: "scale (AKS agent pool)",
    },
    // VM scale sets (`scale --target <vmss id>`, `--policy jobs`, `--policy vertical`).
    Operation {
        purpose: "read a scale set (capacity, size, state, ETag)",
        method: "GET",
        path: VMSS,
        action: "Microsoft.Compute/virtualMachineScaleSets/read",
        used_by: "scale (scale set), scale --policy jobs, scale --policy vertical",
    },
    Operation {
        purpose: "set a scale set's capacity or VM size (PATCH sku)",
        method: "PATCH",
        path: VMSS,
        action: "Microsoft.Compute/virtualMachineScaleSets/write",
        used_by: "scale (scale set), scale --policy jobs, scale --policy vertical",
    },
    Operation {
        purpose: "list a scale set's instances (with their power state)",
        method: "GET",
        path: VMSS_VMS,
        action: "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        used_by: "scale --policy jobs, scale --policy vertical",
    },
    Operation {
        purpose: "read one instance of a scale set",
        method: "GET",
        path: VMSS_VM,
        action: "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        used_by: "scale --policy jobs",
    },
    Operation {
        purpose: "set an instance's scale-in protection",
        method: "PUT",
        path: VMSS_VM,
        action: "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write",
        used_by: "scale --policy jobs",
    },
    Operation {
        purpose: "start deallocated instances",
        method: "POST",
        path: "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/start",
        action: "Microsoft.Compute/virtualMachineScaleSets/start/action",
        used_by: "scale --policy jobs",
    },
    Operation {
        purpose: "deallocate idle instances",
        method: "POST",
        path: "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/deallocate",
        action: "Microsoft.Compute/virtualMachineScaleSets/deallocate/action",
        used_by: "scale --policy jobs",
    },
    Operation {
        purpose: "delete named idle instances",
        method: "POST",
        path: "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/delete",
        action: "Microsoft.Compute/virtualMachineScaleSets/delete/action",
        used_by: "scale --policy jobs",
    },
    Operation {
        purpose: "bring instances to the scale set's new VM size",
        method: "POST",
        path: "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}/manualupgrade",
        action: "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action",
        used_by: "scale --policy vertical",
    },
    Operation {
        purpose: "poll a compute operation (Azure-AsyncOperation and Location headers)",
        method: "GET",
        path: "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/operations/{operationId}",
        action: "Microsoft.Compute/locations/operations/read",
        used_by: "scale (scale set), scale --policy jobs, scale --policy vertical",
    },
];

/// The role's name in [`custom_role`].
pub const ROLE_NAME: &str = "mlscaler node scaler";

/// The entry of [`OPERATIONS`] that a request with this method and path
/// (no query) is, if any. Literal segments compare without regard to case,
/// as ARM does; `{name}` matches any one non-empty segment.
pub fn find(method: &str, path: &str) -> Option<&'static Operation> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    OPERATIONS.iter().find(|op| {
        if !op.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let shape: Vec<&str> = op.path.trim_matches('/').split('/').collect();
        shape.len() == segs.len()
            && shape.iter().zip(&segs).all(|(want, got)| {
                if want.starts_with('{') && want.ends_with('}') {
                    !got.is_empty()
                } else {
                    want.eq_ignore_ascii_case(got)
                }
            })
    })
}

/// The RBAC actions of [`OPERATIONS`], sorted, each once.
pub fn actions() -> Vec<&'static str> {
    let mut a: Vec<&'static str> = OPERATIONS.iter().map(|o| o.action).collect();
    a.sort_unstable_by_key(|s| s.to_ascii_lowercase());
    a.dedup();
    a
}

/// A custom role definition, in the format `az role definition create
/// --role-definition` takes (fields in this order when serialised).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleDefinition {
    pub name: &'static str,
    pub is_custom: bool,
    pub description: &'static str,
    pub actions: Vec<&'static str>,
    pub not_actions: Vec<&'static str>,
    pub data_actions: Vec<&'static str>,
    pub not_data_actions: Vec<&'static str>,
    pub assignable_scopes: Vec<String>,
}

/// The least-privilege custom role for the identity mlscaler runs as:
/// exactly the actions of [`OPERATIONS`]. `scopes` are the role's assignable
/// scopes: the resource groups holding the targets. Assign it on the
/// resource group, not on the pool or scale set: the URL that reports an
/// operation's status is not under the resource, and ARM lets an identity
/// read it only with a role at resource group level (an assignment on the
/// resource alone can start a write but not follow it).
pub fn custom_role(scopes: &[String]) -> RoleDefinition {
    RoleDefinition {
        name: ROLE_NAME,
        is_custom: true,
        description: "Read and resize AKS agent pools and VM scale sets, start, deallocate, delete and upgrade scale set instances, and follow those operations: exactly the requests mlscaler sends (generated by `mlscaler config role`).",
        actions: actions(),
        not_actions: Vec::new(),
        data_actions: Vec::new(),
        not_data_actions: Vec::new(),
        assignable_scopes: scopes.to_vec(),
    }
}

/// The scope placeholder of the README's copy of the role.
pub const README_SCOPE: &str = "/subscriptions/<subscription id>/resourceGroups/<resource group>";

/// The README's text between its `generated` markers: the role for
/// [`README_SCOPE`] and a table of [`OPERATIONS`] (a test checks that the
/// README has exactly this).
pub fn readme_text() -> String {
    let role = custom_role(&[README_SCOPE.to_string()]);
    let mut s = String::from("```json\n");
    s.push_str(&serde_json::to_string_pretty(&role).expect("a role is JSON"));
    s.push_str("\n```\n\n");
    s.push_str("| request (`{rg}`: `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}`) | what for | RBAC action | sent by |\n");
    s.push_str("|---|---|---|---|\n");
    for op in OPERATIONS {
        let path = op.path.replace(
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
            "{rg}",
        );
        s.push_str(&format!(
            "| `{} {}` | {} | `{}` | {} |\n",
            op.method, path, op.purpose, op.action, op.used_by
        ));
    }
    s
}

/// Why a role scope is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("role scope {scope:?}: {reason}")]
pub struct ScopeError {
    pub scope: String,
    pub reason: &'static str,
}

/// Checks that `scope` is a subscription, resource group or management
/// group id (what a role's AssignableScopes may hold).
pub fn check_scope(scope: &str) -> Result<(), ScopeError> {
    let err = |reason| {
        Err(ScopeError {
            scope: scope.to_string(),
            reason,
        })
    };
    let segs: Vec<&str> = scope.trim_end_matches('/').split('/').collect();
    if segs.first() != Some(&"") || segs.iter().skip(1).any(|s| s.is_empty()) {
        return err("expected an id such as /subscriptions/<id>/resourceGroups/<name>");
    }
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["", "subscriptions", _] | ["", "subscriptions", _, "resourcegroups", _] => Ok(()),
        ["", "providers", "microsoft.management", "managementgroups", _] => Ok(()),
        ["", "subscriptions", _, "resourcegroups", _, ..] => err(
            "assign the role on the target's resource group, not on the resource: ARM lets only a resource group level role read an operation's status",
        ),
        _ => err("expected /subscriptions/<id>, /subscriptions/<id>/resourceGroups/<name> or a management group id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::{AgentPoolId, VmssId};

    #[test]
    fn every_operation_is_listed_once_with_an_action_of_its_provider() {
        for (i, a) in OPERATIONS.iter().enumerate() {
            for b in &OPERATIONS[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path.eq_ignore_ascii_case(b.path)),
                    "{} {} is listed twice",
                    a.method,
                    a.path
                );
            }
            let provider = a
                .path
                .split('/')
                .skip_while(|s| *s != "providers")
                .nth(1)
                .unwrap();
            assert!(
                a.action.starts_with(&format!("{provider}/")),
                "{} is not an action of {provider}",
                a.action
            );
            let read = a.method == "GET";
            assert_eq!(
                a.action.ends_with("/read"),
                read,
                "{} {}: a GET needs a read action, a write a write or an action",
                a.method,
                a.action
            );
            assert_eq!(find(a.method, a.path), Some(a));
        }
    }

    #[test]
    fn the_paths_are_the_shapes_of_the_ids_the_client_formats() {
        let pool: AgentPoolId = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1".parse().unwrap();
        let vmss: VmssId = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/v1".parse().unwrap();
        let cases = [
            ("GET", pool.to_string(), "agentPools/read"),
            ("PUT", pool.to_string(), "agentPools/write"),
            ("GET", pool.cluster_id(), "managedClusters/read"),
            ("GET", vmss.to_string(), "virtualMachineScaleSets/read"),
            ("PATCH", vmss.to_string(), "virtualMachineScaleSets/write"),
            (
                "GET",
                format!("{vmss}/virtualMachines"),
                "virtualMachines/read",
            ),
            (
                "PUT",
                format!("{vmss}/virtualMachines/3"),
                "virtualMachines/write",
            ),
            (
                "POST",
                format!("{vmss}/manualupgrade"),
                "manualUpgrade/action",
            ),
            (
                "POST",
                format!("{vmss}/delete"),
                "virtualMachineScaleSets/delete/action",
            ),
        ];
        for (method, path, action) in cases {
            let op = find(method, &path).unwrap_or_else(|| panic!("{method} {path} is not listed"));
            assert!(
                op.action.ends_with(action),
                "{method} {path}: {}",
                op.action
            );
        }
        assert!(find("DELETE", &vmss.to_string()).is_none());
        assert!(find("GET", &format!("{vmss}/virtualMachines/3/instanceView")).is_none());
        assert!(find("GET", "/subscriptions/s1/providers/Microsoft.Compute/locations/westus/operations/x?api-version=1").is_some());
    }

    #[test]
    fn the_role_lists_each_action_once_for_the_scopes_given() {
        let role =
            serde_json::to_value(custom_role(
                &["/subscriptions/s1/resourceGroups/rg1".into()],
            ))
            .unwrap();
        let actions: Vec<&str> = role["Actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(actions.len(), 14, "{actions:?}");
        for needed in [
            "Microsoft.Compute/virtualMachineScaleSets/start/action",
            "Microsoft.Compute/virtualMachineScaleSets/deallocate/action",
            "Microsoft.Compute/virtualMachineScaleSets/delete/action",
            "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action",
            "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        ] {
            assert!(actions.contains(&needed), "{needed}");
        }
        assert!(!actions.iter().any(|a| a.contains('*')), "no wildcards");
        assert_eq!(
            role["AssignableScopes"][0],
            "/subscriptions/s1/resourceGroups/rg1"
        );
    }

    #[test]
    fn scopes_are_subscriptions_resource_groups_or_management_groups() {
        for ok in [
            "/subscriptions/s1",
            "/subscriptions/s1/resourceGroups/rg1",
            "/subscriptions/s1/resourcegroups/rg1/",
            "/providers/Microsoft.Management/managementGroups/mg1",
        ] {
            assert_eq!(check_scope(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "subscriptions/s1",
            "/subscriptions//resourceGroups/rg1",
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/v1",
            "/tenants/t1",
        ] {
            assert!(check_scope(bad).is_err(), "{bad}");
        }
    }
}
