//! Periodic full re-evaluation, report garbage collection, and the
//! ScanPolicy status.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::conditions;
use super::context::Context;
use super::report::MANAGER;
use super::snapshot;
use super::target::TargetKey;
use super::triggers;
use super::writer;
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
    let misnamed = namespaced
        .iter()
        .map(|r| (r.meta(), r.facts()))
        .chain(cluster.iter().map(|r| (r.meta(), r.facts())))
        .filter_map(|(meta, key)| misnamed_report(meta, key.as_ref()?))
        .filter(|(key, _)| ctx.scope.owns(key));
    for (key, name) in misnamed {
        delete_misnamed(ctx, key, name);
    }
    keys.retain(|k| ctx.scope.owns(k));
    let count = keys.len();
    for key in keys {
        ctx.queue.enqueue_in_pass(key);
    }
    ctx.metrics
        .last_full_resync
        .set(Timestamp::now().as_second());
    tracing::info!(targets = count, "full re-evaluation queued");
}

/// A report whose name is not its target's report name (written under an
/// older naming rule): its target and name, to delete it. The target gets
/// its report under the current name when it is evaluated.
fn misnamed_report(meta: &ObjectMeta, target: &TargetKey) -> Option<(TargetKey, String)> {
    let name = meta.name.as_deref()?;
    (name != target.report_name()).then(|| (target.clone(), name.to_owned()))
}

fn delete_misnamed(ctx: &Context, key: TargetKey, name: String) {
    let client = ctx.client.clone();
    let metrics = ctx.metrics.clone();
    let resource = if key.namespace.is_some() {
        "scanreports"
    } else {
        "clusterscanreports"
    };
    tokio::spawn(async move {
        metrics.write(resource, "delete");
        match writer::delete(&client, key.namespace.as_deref(), &name).await {
            Ok(()) => {
                tracing::info!(target = %key, report = %name, "report under an older name deleted")
            }
            Err(e) => {
                metrics.error("write");
                tracing::warn!(target = %key, report = %name, error = %e, "cannot delete a report under an older name");
            }
        }
    });
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

/// The longest single wait of the resync loop: a later deadline (a far
/// expiry) is waited for in steps, so no deadline is ever out of the
/// timer's range.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Runs a full resync every `interval` (or the ScanPolicy's
/// `rescanInterval`, when set), and also when a policy exception expires
/// (the engine has no clock, so expiry needs a re-evaluation). All time
/// arithmetic is checked: a deadline past what an `Instant` holds is never
/// reached rather than a panic.
pub async fn resync_loop(ctx: &Context, interval: Duration) {
    let mut last_full = tokio::time::Instant::now();
    loop {
        let policy = ctx.policy.active();
        let every = policy.compiled.rescan_interval().unwrap_or(interval);
        let next_full = last_full.checked_add(every);
        let now = tokio::time::Instant::now();
        let until_expiry = policy
            .at(Timestamp::now())
            .next_expiry()
            .and_then(|expiry| expiry_instant(expiry, Timestamp::now(), now));
        let deadline = match (next_full, until_expiry) {
            (Some(full), Some(expiry)) => Some(full.min(expiry)),
            (one, other) => one.or(other),
        };
        let wake = capped(now, deadline);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            // A new policy may bring an earlier expiry or another interval.
            () = ctx.policy.changed() => continue,
        }
        let now = tokio::time::Instant::now();
        if next_full.is_some_and(|full| now >= full) {
            last_full = now;
        } else if until_expiry.is_some_and(|expiry| now >= expiry) {
            tracing::info!("a policy exception expired");
        } else {
            // Woken by the cap: nothing is due yet.
            continue;
        }
        full_resync(ctx);
    }
}

/// The instant just after `expiry` (so the exception has expired then),
/// given that `wall_now` is `now`; `None` when it is beyond what an
/// `Instant` holds.
fn expiry_instant(
    expiry: Timestamp,
    wall_now: Timestamp,
    now: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    let ahead = expiry.duration_since(wall_now);
    let ahead = Duration::try_from(ahead).unwrap_or(Duration::ZERO);
    now.checked_add(ahead)?
        .checked_add(Duration::from_millis(50))
}

/// When to wake up for `deadline`: at most [`MAX_WAIT`] after `now`.
fn capped(
    now: tokio::time::Instant,
    deadline: Option<tokio::time::Instant>,
) -> tokio::time::Instant {
    let cap = now.checked_add(MAX_WAIT).unwrap_or(now);
    deadline.map_or(cap, |d| d.min(cap))
}

/// Keeps the ScanPolicy's status current: whether it is valid, and the
/// cluster totals. Writes only when something changed.
pub async fn policy_status_loop(ctx: &Context, every: Duration) {
    let frameworks: BTreeSet<String> = crate::checks::catalog()
        .iter()
        .flat_map(|c| c.frameworks.iter().map(|f| (*f).to_owned()))
        .collect();
    // The status last written on a policy that does not decode (its own
    // status cannot be read back to tell whether it changed).
    let mut written_undecodable = None;
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = write_policy_status(ctx, &frameworks, &mut written_undecodable).await {
            ctx.metrics.error("policy-status");
            tracing::warn!(error = %e, "cannot update the ScanPolicy status");
        }
    }
}

async fn write_policy_status(
    ctx: &Context,
    frameworks: &BTreeSet<String>,
    written_undecodable: &mut Option<ScanPolicyStatus>,
) -> Result<(), kube::Error> {
    let name = &ctx.policy.name;
    let (generation, previous) = match ctx.stores.scan_policies.get(None, name) {
        Some(policy) => {
            *written_undecodable = None;
            (
                policy.metadata.generation,
                policy.status.clone().unwrap_or_default(),
            )
        }
        None => match ctx
            .stores
            .undecodable
            .generation("scanpolicies", None, name)
        {
            Some(generation) => (generation, written_undecodable.clone().unwrap_or_default()),
            None => return Ok(()),
        },
    };
    let undecodable = policy_is_undecodable(ctx);
    if !ctx.queue.is_idle() {
        // Totals move while evaluations run; write once they settle.
        return Ok(());
    }
    let (totals, rates) = ctx.totals.lock().expect("totals lock").totals(frameworks);
    let problem = ctx.policy.problem();
    let (status, reason, message) = match &problem {
        None => ("True", "Accepted", "the policy is in force".to_owned()),
        Some(p) => (
            "False",
            "Invalid",
            format!("{p}; the last valid policy stays in force"),
        ),
    };
    let last_transition_time =
        conditions::transition_time(&previous.conditions, "Valid", status, Timestamp::now());
    let mut conditions = vec![Condition {
        type_: "Valid".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: generation,
    }];
    conditions.push(
        ctx.stores
            .custom
            .condition(&previous.conditions, Timestamp::now()),
    );
    if let Some(openreports) = &ctx.openreports {
        conditions.push(super::openreports::condition(
            &openreports.availability(),
            &previous.conditions,
            Timestamp::now(),
        ));
    }
    let desired = ScanPolicyStatus {
        conditions,
        observed_generation: generation,
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
    if undecodable {
        *written_undecodable = Some(desired);
    }
    Ok(())
}

/// Whether the policy in use is one the watch cannot decode.
fn policy_is_undecodable(ctx: &Context) -> bool {
    ctx.stores
        .undecodable
        .generation("scanpolicies", None, &ctx.policy.name)
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::target::TargetKind;

    #[test]
    fn a_report_under_an_older_name_is_misnamed() {
        let key = TargetKey::new(TargetKind::Role, Some("a"), "Admin");
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        };
        assert_eq!(misnamed_report(&meta(&key.report_name()), &key), None);
        assert_eq!(
            misnamed_report(&meta("role-admin"), &key),
            Some((key.clone(), "role-admin".to_owned()))
        );
    }

    #[test]
    fn far_expiries_and_intervals_neither_panic_nor_oversleep() {
        let now = tokio::time::Instant::now();
        let wall = Timestamp::from_second(1_800_000_000).unwrap();
        let far = Timestamp::MAX;
        let expiry = expiry_instant(far, wall, now);
        let wake = capped(now, expiry);
        assert!(wake <= now + MAX_WAIT);
        // An expiry in the past is due at once.
        let past = expiry_instant(Timestamp::UNIX_EPOCH, wall, now).unwrap();
        assert!(past <= now + Duration::from_millis(50));
        assert_eq!(capped(now, None), now + MAX_WAIT);
        assert!(now.checked_add(Duration::MAX).is_none());
        assert_eq!(capped(now, now.checked_add(Duration::MAX)), now + MAX_WAIT);
    }
}
