//! The DNS records SES needs: the `_amazonses` TXT record that verifies the
//! domain and the three Easy DKIM CNAMEs. glbox prints them (as a table and
//! as zone-file lines) and, given a Route 53 hosted zone, writes them there.

use aws_sdk_route53::types::{Change as R53Change, ChangeAction, ResourceRecordSet, RrType};
use serde::Serialize;

use crate::aws::route53;
use crate::config::EmailSettings;
use crate::email::identity::IdentityState;
use crate::error::{Error, Result};
use crate::resources::{Action, Ctx, PlanItem};

const TTL_SECONDS: i64 = 1800;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Fully qualified, without the final dot.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// As it goes into the zone (a TXT value with its quotes).
    pub value: String,
    pub purpose: &'static str,
}

/// The records for what SES reports; empty until the identity exists.
pub fn records(identity: &IdentityState) -> Vec<Record> {
    let mut out = Vec::new();
    if let Some(token) = &identity.token {
        out.push(Record {
            name: format!("_amazonses.{}", identity.domain),
            kind: "TXT",
            value: format!("\"{token}\""),
            purpose: "SES domain verification",
        });
    }
    for token in &identity.dkim_tokens {
        out.push(Record {
            name: format!("{token}._domainkey.{}", identity.domain),
            kind: "CNAME",
            value: format!("{token}.{}", identity.dkim_domain),
            purpose: "Easy DKIM",
        });
    }
    out
}

/// The records as a table for people.
pub fn table(records: &[Record]) -> String {
    let width = records.iter().map(|r| r.name.len()).max().unwrap_or(4);
    let mut out = format!("  {:<width$}  {:<5}  VALUE\n", "NAME", "TYPE");
    for record in records {
        out.push_str(&format!(
            "  {:<width$}  {:<5}  {}\n",
            record.name, record.kind, record.value
        ));
    }
    out
}

/// The records as BIND zone-file lines, ready to paste.
pub fn zone_file(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| {
            let value = match r.kind {
                "CNAME" => format!("{}.", r.value),
                _ => r.value.clone(),
            };
            format!("{}. {TTL_SECONDS} IN {} {value}\n", r.name, r.kind)
        })
        .collect()
}

/// What the hosted zone holds at the records' names.
#[derive(Debug, Clone)]
pub struct ZoneState {
    pub zone_id: String,
    pub zone_name: String,
    pub existing: Vec<ExistingSet>,
}

/// A record set the zone holds now. Route 53 deletes a set only when given
/// exactly its values and TTL, so both are kept.
#[derive(Debug, Clone)]
pub struct ExistingSet {
    pub name: String,
    pub kind: &'static str,
    pub values: Vec<String>,
    pub ttl: i64,
}

impl ZoneState {
    fn find(&self, record: &Record) -> Option<&ExistingSet> {
        self.existing
            .iter()
            .find(|set| set.name == record.name && set.kind == record.kind)
    }
}

fn rr_type(kind: &str) -> RrType {
    match kind {
        "TXT" => RrType::Txt,
        _ => RrType::Cname,
    }
}

/// Reads the zone's name and what it holds at each record's name.
pub async fn observe(ctx: &Ctx<'_>, zone_id: &str, wanted: &[Record]) -> Result<ZoneState> {
    let zone_name = route53::zone_name(ctx.aws, zone_id).await?;
    let mut existing = Vec::new();
    for record in wanted {
        let found = route53::find_set(ctx.aws, zone_id, &record.name, rr_type(record.kind)).await?;
        if let Some(set) = found {
            existing.push(ExistingSet {
                name: record.name.clone(),
                kind: record.kind,
                values: set.values,
                ttl: set.ttl.unwrap_or(TTL_SECONDS),
            });
        }
    }
    Ok(ZoneState {
        zone_id: zone_id.to_string(),
        zone_name,
        existing,
    })
}

/// The zone must be the domain's own or a parent's.
pub fn check_zone(email: &EmailSettings, zone: &ZoneState) -> Result<()> {
    let covers =
        email.domain == zone.zone_name || email.domain.ends_with(&format!(".{}", zone.zone_name));
    if covers {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "email.route53_zone_id {} is the zone for {}, which does not hold {}\n  fix: use the hosted zone of {} (or of a parent domain), or leave route53_zone_id empty and publish the records yourself",
            zone.zone_id, zone.zone_name, email.domain, email.domain
        )))
    }
}

/// One record set to write: the name, type and every value it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    pub name: String,
    pub kind: &'static str,
    pub values: Vec<String>,
    pub ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No hosted zone: the user publishes the records.
    Manual,
    Upsert {
        zone_id: String,
        sets: Vec<Upsert>,
    },
    NoChange,
}

/// What to write so the zone holds every record. A TXT record set at
/// `_amazonses` may hold other regions' tokens too: they are kept.
pub fn diff(wanted: &[Record], zone: Option<&ZoneState>) -> Change {
    let Some(zone) = zone else {
        return Change::Manual;
    };
    let mut sets = Vec::new();
    for record in wanted {
        let current = zone.find(record);
        if current.is_some_and(|set| set.values.contains(&record.value)) {
            continue;
        }
        let values = match (record.kind, current) {
            ("TXT", Some(set)) => set
                .values
                .iter()
                .cloned()
                .chain([record.value.clone()])
                .collect(),
            _ => vec![record.value.clone()],
        };
        sets.push(Upsert {
            name: record.name.clone(),
            kind: record.kind,
            values,
            // Another sender's set keeps its TTL.
            ttl: current.map_or(TTL_SECONDS, |set| set.ttl),
        });
    }
    if sets.is_empty() {
        Change::NoChange
    } else {
        Change::Upsert {
            zone_id: zone.zone_id.clone(),
            sets,
        }
    }
}

impl Change {
    pub fn item(&self, email: &EmailSettings, count: usize) -> PlanItem {
        let name = format!("{} records", email.domain);
        match self {
            Change::Manual => PlanItem::new(
                "dns_records",
                name,
                Some(email.domain.clone()),
                Action::NoChange,
            )
            .with_changes(vec![
                "published by you: `glbox email dns` prints them".into()
            ]),
            Change::Upsert { zone_id, sets } => {
                PlanItem::new("dns_records", name, Some(zone_id.clone()), Action::Update)
                    .with_changes(
                        sets.iter()
                            .map(|s| format!("write {} {} in Route 53", s.kind, s.name))
                            .collect(),
                    )
            }
            Change::NoChange => PlanItem::new(
                "dns_records",
                name,
                email.route53_zone_id.clone(),
                Action::NoChange,
            )
            .with_changes(vec![format!("{count} records in Route 53")]),
        }
    }
}

fn record_set(upsert: &Upsert) -> ResourceRecordSet {
    route53::record_set(
        &upsert.name,
        rr_type(upsert.kind),
        upsert.ttl,
        &upsert.values,
    )
}

pub async fn apply(ctx: &Ctx<'_>, change: &Change) -> Result<()> {
    let Change::Upsert { zone_id, sets } = change else {
        return Ok(());
    };
    let changes = sets
        .iter()
        .map(|set| {
            R53Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record_set(set))
                .build()
                .expect("action and record set are set")
        })
        .collect();
    route53::change(
        ctx.aws,
        zone_id,
        Some("glbox: SES verification and DKIM"),
        changes,
    )
    .await?;
    ctx.ui.info(&format!(
        "wrote {} DNS record set(s) in Route 53 zone {zone_id}",
        sets.len()
    ));
    Ok(())
}

/// Removes glbox's records from the zone, keeping any other value of a
/// shared TXT record set (for `down --delete-email-identity`).
pub async fn delete(ctx: &Ctx<'_>, wanted: &[Record], zone: &ZoneState) -> Result<()> {
    let mut changes = Vec::new();
    for record in wanted {
        let Some(set) = zone.find(record) else {
            continue;
        };
        if !set.values.contains(&record.value) {
            continue;
        }
        let current = Upsert {
            name: record.name.clone(),
            kind: record.kind,
            values: set.values.clone(),
            ttl: set.ttl,
        };
        let others: Vec<String> = set
            .values
            .iter()
            .filter(|v| **v != record.value)
            .cloned()
            .collect();
        let change = if others.is_empty() {
            R53Change::builder()
                .action(ChangeAction::Delete)
                .resource_record_set(record_set(&current))
        } else {
            R53Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record_set(&Upsert {
                    values: others,
                    ..current
                }))
        };
        changes.push(change.build().expect("action and record set are set"));
    }
    if changes.is_empty() {
        return Ok(());
    }
    route53::change(ctx.aws, &zone.zone_id, None, changes).await?;
    ctx.ui.info(&format!(
        "removed glbox's SES records from Route 53 zone {}",
        zone.zone_id
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> IdentityState {
        IdentityState {
            domain: "example.com".into(),
            verification: "Pending".into(),
            token: Some("abc+/=".into()),
            dkim_enabled: true,
            dkim_status: "Pending".into(),
            dkim_tokens: vec!["k1".into(), "k2".into(), "k3".into()],
            dkim_domain: "dkim.amazonses.com".into(),
        }
    }

    #[test]
    fn dkim_records_of_a_regional_signing_domain_point_there() {
        let identity = IdentityState {
            dkim_domain: crate::email::identity::dkim_signing_domain("af-south-1"),
            ..identity()
        };
        let records = records(&identity);
        assert_eq!(records[1].value, "k1.dkim.af-south-1.amazonses.com");
    }

    #[test]
    fn records_and_zone_lines_follow_the_tokens() {
        let records = records(&identity());
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].name, "_amazonses.example.com");
        assert_eq!(records[0].value, "\"abc+/=\"");
        assert_eq!(records[1].name, "k1._domainkey.example.com");
        assert_eq!(records[1].value, "k1.dkim.amazonses.com");
        let zone = zone_file(&records);
        assert!(zone.contains("_amazonses.example.com. 1800 IN TXT \"abc+/=\"\n"));
        assert!(zone.contains("k3._domainkey.example.com. 1800 IN CNAME k3.dkim.amazonses.com.\n"));
    }

    #[test]
    fn a_shared_txt_record_keeps_its_other_values() {
        let wanted = records(&identity());
        let zone = ZoneState {
            zone_id: "Z1".into(),
            zone_name: "example.com".into(),
            existing: vec![
                ExistingSet {
                    name: "_amazonses.example.com".into(),
                    kind: "TXT",
                    values: vec!["\"other-region\"".into()],
                    ttl: 300,
                },
                ExistingSet {
                    name: "k1._domainkey.example.com".into(),
                    kind: "CNAME",
                    values: vec!["k1.dkim.amazonses.com".into()],
                    ttl: 1800,
                },
            ],
        };
        let Change::Upsert { sets, .. } = diff(&wanted, Some(&zone)) else {
            panic!("expected an upsert");
        };
        assert_eq!(sets.len(), 3, "k1 is already right");
        assert_eq!(
            sets[0].values,
            vec!["\"other-region\"".to_string(), "\"abc+/=\"".to_string()]
        );
        assert_eq!(sets[0].ttl, 300, "the shared set keeps its TTL");
        assert_eq!(sets[1].ttl, TTL_SECONDS);
        assert_eq!(diff(&wanted, None), Change::Manual);
    }
}
