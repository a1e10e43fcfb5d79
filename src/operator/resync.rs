//! Periodic full re-evaluation, report garbage collection, and the
//! ScanPolicy status.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::context::Context;
use super::report::MANAGER;
use super::snapshot;
use super::target::TargetKey;
use super::triggers;
use crate::crd::{ScanPolicy, ScanPolicyStatus};

/// Queues every target, and the target of every report (a report whose
/// target is gone is deleted when its key is evaluated).
pub fn full_resync(ctx: &Context) {
    tell_rbac_the_workloads(ctx);
    let mut keys: BTreeSet<TargetKey> = triggers::all_targets(ctx).into_iter().collect();
    let namespaced = ctx.stores.scan_reports.all();
    let cluster = ctx.stores.cluster_scan_reports.all();
    keys.extend(namespaced.iter().filter_map(|r| r.facts().clone()));
    keys.extend(cluster.iter().filter_map(|r| r.facts().clone()));
    keys.retain(|k| ctx.scope.owns(k));
    let count = keys.len();
    for key in keys {
        ctx.queue.enqueue_now(key);
    }
    ctx.metrics
        .last_full_resync
        .set(Timestamp::now().as_second());
    tracing::info!(targets = count, "full re-evaluation queued");
}

/// Hands the RBAC analysis the account of every cached workload. It learns
/// them from watch events, but the events of a watch's initial list arrive
/// before the cache holds the objects (the reflector swaps its contents in
/// when the list ends), so they cannot tell it; without this the analysis
/// would miss every workload that did not change since the start, and each
/// first change after the start would rebuild it. An unchanged account does
/// not invalidate the analysis, so an idle resync costs no rebuild.
fn tell_rbac_the_workloads(ctx: &Context) {
    snapshot::for_each_workload(&ctx.stores, None, &mut |key, workload| {
        ctx.rbac.workload_changed(&key, workload.facts());
    });
}

/// Runs a full resync every `interval` (or the ScanPolicy's
/// `rescanInterval`, when set), and also when a policy exception expires
/// (the engine has no clock, so expiry needs a re-evaluation).
pub async fn resync_loop(ctx: &Context, interval: Duration) {
    let mut last_full = tokio::time::Instant::now();
    loop {
        let policy = ctx.policy.active();
        let every = policy
            .spec
            .rescan_interval
            .as_deref()
            .and_then(|s| super::parse_duration(s).ok())
            .unwrap_or(interval);
        let next_full = last_full + every;
        let now = Timestamp::now();
        let until_expiry = policy.at(now).next_expiry().map(|t| {
            let ms = t.duration_since(now).as_millis().max(0) as u64;
            // Just after the expiry instant, so the exception is expired then.
            tokio::time::Instant::now() + Duration::from_millis(ms + 50)
        });
        let wake = until_expiry.map_or(next_full, |e| e.min(next_full));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            // A new policy may bring an earlier expiry or another interval.
            () = ctx.policy.changed() => continue,
        }
        if tokio::time::Instant::now() >= next_full {
            last_full = tokio::time::Instant::now();
        } else {
            tracing::info!("a policy exception expired");
        }
        full_resync(ctx);
    }
}

/// Keeps the ScanPolicy's status current: whether it is valid, and the
/// cluster totals. Writes only when something changed.
pub async fn policy_status_loop(ctx: &Context, every: Duration) {
    let frameworks: BTreeSet<String> = crate::checks::catalog()
        .iter()
        .flat_map(|c| c.frameworks.iter().map(|f| (*f).to_owned()))
        .collect();
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = write_policy_status(ctx, &frameworks).await {
            ctx.metrics.error("policy-status");
            tracing::warn!(error = %e, "cannot update the ScanPolicy status");
        }
    }
}

async fn write_policy_status(
    ctx: &Context,
    frameworks: &BTreeSet<String>,
) -> Result<(), kube::Error> {
    let Some(policy) = ctx.stores.scan_policies.get(None, &ctx.policy.name) else {
        return Ok(());
    };
    if !ctx.queue.is_idle() {
        // Totals move while evaluations run; write once they settle.
        return Ok(());
    }
    let (totals, rates) = ctx.metrics.totals(frameworks);
    let problem = ctx.policy.problem();
    let previous = policy.status.clone().unwrap_or_default();
    let (status, reason, message) = match &problem {
        None => ("True", "Accepted", "the policy is in force".to_owned()),
        Some(p) => (
            "False",
            "Invalid",
            format!("{p}; the last valid policy stays in force"),
        ),
    };
    let last_transition_time = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Valid" && c.status == status)
        .map_or(Time(Timestamp::now()), |c| c.last_transition_time.clone());
    let mut conditions = vec![Condition {
        type_: "Valid".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: policy.metadata.generation,
    }];
    if let Some(openreports) = &ctx.openreports {
        conditions.push(super::openreports::condition(
            &openreports.availability(),
            &previous.conditions,
            Timestamp::now(),
        ));
    }
    let desired = ScanPolicyStatus {
        conditions,
        observed_generation: policy.metadata.generation,
        totals: Some(totals),
        frameworks: rates,
    };
    if desired == previous {
        return Ok(());
    }
    let api: Api<ScanPolicy> = Api::all(ctx.client.clone());
    let body = json!({
        "apiVersion": "palisade.dev/v1alpha1",
        "kind": "ScanPolicy",
        "metadata": {"name": ctx.policy.name},
        "status": desired,
    });
    ctx.metrics.write("scanpolicies", "apply-status");
    api.patch_status(
        &ctx.policy.name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}
