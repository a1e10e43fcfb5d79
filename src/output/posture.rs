//! The namespace posture section of `palisade scan`: for each namespace of
//! the input, the Pod Security level its workloads meet and what its
//! admission labels say, so a repository can be checked before a label
//! change. The JSON report carries the same fields as the ClusterScanReport's
//! `status.posture`, plus the namespace's name.

use std::io::{self, Write};

use serde::Serialize;

use crate::crd::cluster_scan_report::{NamespacePosture, PodSecurityMode};

/// One namespace's posture in the JSON report.
#[derive(Serialize)]
pub struct JsonPosture<'a> {
    pub namespace: &'a str,
    #[serde(flatten)]
    pub posture: &'a NamespacePosture,
}

/// The postures of `report` as JSON records, in namespace order.
pub fn json(postures: &[(String, NamespacePosture)]) -> Vec<JsonPosture<'_>> {
    postures
        .iter()
        .map(|(namespace, posture)| JsonPosture { namespace, posture })
        .collect()
}

/// The table section; nothing when the input has no namespace.
pub fn write_table(postures: &[(String, NamespacePosture)], out: &mut dyn Write) -> io::Result<()> {
    if postures.is_empty() {
        return Ok(());
    }
    writeln!(out, "Namespace posture (Pod Security Standards)")?;
    let width = postures
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max("NAMESPACE".len());
    writeln!(
        out,
        "  {:<width$}  {:<10}  {:<22}  {:>9}  BLOCKING",
        "NAMESPACE", "PSS", "ENFORCED", "WORKLOADS"
    )?;
    for (name, posture) in postures {
        let blocking = match posture.next_level {
            Some(next) => format!("{} for {next}", posture.blocking_total),
            None => "-".to_owned(),
        };
        writeln!(
            out,
            "  {name:<width$}  {:<10}  {:<22}  {:>9}  {blocking}",
            posture.level_met.as_str(),
            match posture.labels_unknown {
                true => "(not in input)".to_owned(),
                false => mode_text(&posture.enforce),
            },
            posture.workloads,
        )?;
    }
    for (name, posture) in postures {
        write_details(name, posture, out)?;
    }
    writeln!(out)
}

/// `restricted@v1.35`, or `privileged (unlabelled)`.
fn mode_text(mode: &PodSecurityMode) -> String {
    if mode.labelled {
        format!("{}@{}", mode.level, mode.version)
    } else {
        format!("{} (unlabelled)", mode.level)
    }
}

fn write_details(name: &str, posture: &NamespacePosture, out: &mut dyn Write) -> io::Result<()> {
    let blocking = posture.next_level.filter(|_| !posture.blocking.is_empty());
    if posture.warnings.is_empty() && blocking.is_none() && posture.frameworks.is_empty() {
        return Ok(());
    }
    writeln!(out, "  {name}:")?;
    for warning in &posture.warnings {
        writeln!(out, "    ! {}: {}", warning.reason, warning.message)?;
    }
    if let Some(next) = blocking {
        for workload in &posture.blocking {
            writeln!(
                out,
                "    blocks {next}: {}/{} ({})",
                workload.kind,
                workload.name,
                workload.failing.join(", ")
            )?;
        }
        let unlisted = (posture.blocking_total as usize).saturating_sub(posture.blocking.len());
        if unlisted > 0 {
            writeln!(out, "    blocks {next}: {unlisted} more")?;
        }
    }
    if !posture.frameworks.is_empty() {
        let rates: Vec<String> = posture
            .frameworks
            .iter()
            .map(|r| {
                let accepted = if r.suppressed > 0 {
                    format!(", {} accepted risk", r.suppressed)
                } else {
                    String::new()
                };
                format!(
                    "{} {}% ({}/{}{accepted})",
                    r.framework, r.pass_percent, r.passing, r.total
                )
            })
            .collect();
        writeln!(out, "    frameworks: {}", rates.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::output::testing::fixture_with_posture as fixture;
    use crate::output::{Format, Options};

    #[test]
    fn the_table_shows_each_namespace_with_its_blocking_workloads() {
        let text = fixture().render(Format::Table, Options::default());
        let section = text
            .split("Namespace posture (Pod Security Standards)\n")
            .nth(1)
            .expect("a posture section");
        let row = section
            .lines()
            .find(|l| l.trim_start().starts_with("shop"))
            .expect("a row for shop");
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            columns,
            [
                "shop",
                "privileged",
                "(not",
                "in",
                "input)",
                "3",
                "2",
                "for",
                "baseline"
            ]
        );
        assert!(section.contains("blocks baseline: Deployment/web (privileged-container)"));
        assert!(section.contains("blocks baseline: Pod/debug (privileged-container)"));
        assert!(
            section.contains("pss 33% (1/3, 1 accepted risk)"),
            "{section}"
        );
        // The section comes before the summary line.
        assert!(
            text.trim_end()
                .lines()
                .last()
                .unwrap()
                .contains("scanned in")
        );
    }

    #[test]
    fn json_carries_the_posture_of_each_namespace() {
        let text = fixture().render(Format::Json, Options::default());
        let doc: Value = serde_json::from_str(&text).unwrap();
        let namespaces = doc["namespaces"].as_array().expect("namespaces");
        assert_eq!(namespaces.len(), 1);
        let shop = &namespaces[0];
        assert_eq!(shop["namespace"], "shop");
        assert_eq!(shop["levelMet"], "privileged");
        assert_eq!(shop["nextLevel"], "baseline");
        assert_eq!(shop["workloads"], 3);
        assert_eq!(shop["enforce"]["level"], "privileged");
        assert_eq!(shop["enforce"]["labelled"], false);
        assert_eq!(
            shop["labelsUnknown"], true,
            "no Namespace object in the input"
        );
        assert_eq!(shop["blockingTotal"], 2);
        assert_eq!(shop["blocking"][0]["name"], "web");
        assert_eq!(shop["blocking"][0]["failing"][0], "privileged-container");
        let pss = shop["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["framework"] == "pss")
            .expect("pss rate");
        assert_eq!(pss["suppressed"], 1);
        assert_eq!(pss["passPercent"], 33);
    }
}
