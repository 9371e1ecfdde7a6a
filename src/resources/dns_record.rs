//! The external URL's address record: an A record for its host pointing at
//! the Elastic IP. With `dns.route53_zone_id` glbox writes it to Route 53
//! (and waits until Route 53 has it on all its servers) before any
//! bootstrap, so Let's Encrypt can reach the box at the first install;
//! without a zone it prints the record for the user to publish.
//!
//! DNS records carry no tags, so a companion TXT record at `_glbox.<host>`
//! names the deployment that made the A record: glbox changes and deletes
//! only records it marked, and refuses to take over one it did not make.
//! Only an A record is made: the instances glbox launches have no IPv6
//! address.

use aws_sdk_route53::types::{Change as R53Change, ChangeAction, RrType};
use serde::Serialize;

use crate::aws::route53::{self, StoredSet};
use crate::config::{url_host, Settings};
use crate::error::{Error, Result};
use crate::resources::{Action, Ctx, PlanItem};

/// Short, so a new Elastic IP (after `down` and `up`) is seen soon.
const TTL_SECONDS: i64 = 300;

/// A record as the user would publish it, or as glbox made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    /// `route53` (glbox made it) or `manual` (the user publishes it).
    pub managed_by: &'static str,
}

impl Record {
    /// The record as one line of a zone file.
    pub fn zone_line(&self) -> String {
        format!(
            "{}. {TTL_SECONDS} IN {} {}",
            self.name, self.kind, self.value
        )
    }
}

/// The external URL's host when it is a DNS name (an IP address needs no
/// record).
pub fn host(settings: &Settings) -> Option<String> {
    let host = url_host(settings.gitlab.external_url.as_deref()?).to_ascii_lowercase();
    host.parse::<std::net::IpAddr>().is_err().then_some(host)
}

/// Where the ownership mark lives.
fn owner_name(host: &str) -> String {
    format!("_glbox.{host}")
}

/// What the hosted zone holds at the host's name.
#[derive(Debug, Clone)]
pub struct Observed {
    pub zone_id: String,
    pub zone_name: String,
    pub host: String,
    pub address: Option<StoredSet>,
    /// A CNAME at the name rules out an A record there.
    pub cname: Option<StoredSet>,
    pub owner: Option<StoredSet>,
}

impl Observed {
    /// The mark names this deployment.
    pub fn owned(&self, ctx: &Ctx<'_>) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|set| set.values.contains(&ctx.names.dns_owner()))
    }

    fn covers_host(&self) -> bool {
        self.host == self.zone_name || self.host.ends_with(&format!(".{}", self.zone_name))
    }
}

/// Reads the zone at the host's name; `None` without a zone.
pub async fn observe(ctx: &Ctx<'_>) -> Result<Option<Observed>> {
    let (Some(zone_id), Some(host)) = (&ctx.settings.dns_zone_id, host(ctx.settings)) else {
        return Ok(None);
    };
    let aws = ctx.aws;
    let owner = owner_name(&host);
    let (zone_name, address, cname, owner) = tokio::try_join!(
        route53::zone_name(aws, zone_id),
        route53::find_set(aws, zone_id, &host, RrType::A),
        route53::find_set(aws, zone_id, &host, RrType::Cname),
        route53::find_set(aws, zone_id, &owner, RrType::Txt),
    )?;
    Ok(Some(Observed {
        zone_id: zone_id.clone(),
        zone_name,
        host,
        address,
        cname,
        owner,
    }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No name to point anywhere (no external URL with a DNS name, or no
    /// Elastic IP).
    Absent,
    /// No hosted zone: the user publishes the record.
    Manual { host: String },
    /// Write the A record (and its mark) for the Elastic IP. `from`: what
    /// glbox's record holds now, if it exists.
    Upsert {
        zone_id: String,
        host: String,
        from: Option<Vec<String>>,
    },
    NoChange {
        zone_id: String,
        host: String,
        address: String,
    },
}

/// Compares the zone with the Elastic IP the deployment keeps (`None`
/// when one is about to be allocated).
pub fn diff(ctx: &Ctx<'_>, observed: Option<&Observed>, address: Option<&str>) -> Result<Change> {
    let Some(observed) = observed else {
        return Ok(match host(ctx.settings) {
            Some(host) if ctx.settings.elastic_ip => Change::Manual { host },
            _ => Change::Absent,
        });
    };
    if !observed.covers_host() {
        return Err(Error::Refused(format!(
            "dns.route53_zone_id {} is the zone for {}, which does not hold {}\n  fix: use the hosted zone of {} (or of a parent domain), or remove dns.route53_zone_id and publish the record yourself",
            observed.zone_id, observed.zone_name, observed.host, observed.host
        )));
    }
    let owned = observed.owned(ctx);
    if !owned {
        refuse_foreign(observed)?;
    }
    let current = observed.address.as_ref().map(|set| set.values.clone());
    match (current.as_deref(), address) {
        (Some([value]), Some(address)) if owned && value == address => Ok(Change::NoChange {
            zone_id: observed.zone_id.clone(),
            host: observed.host.clone(),
            address: address.to_string(),
        }),
        _ => Ok(Change::Upsert {
            zone_id: observed.zone_id.clone(),
            host: observed.host.clone(),
            from: current.filter(|_| owned),
        }),
    }
}

/// A record at the name that glbox did not mark is someone else's.
fn refuse_foreign(observed: &Observed) -> Result<()> {
    let found = [("A", &observed.address), ("CNAME", &observed.cname)]
        .into_iter()
        .find_map(|(kind, set)| set.as_ref().map(|set| (kind, set.values.join(", "))));
    let Some((kind, values)) = found else {
        return Ok(());
    };
    Err(Error::Refused(format!(
        "Route 53 zone {} already has a {kind} record for {} ({values}) that glbox did not make (no {} TXT record naming this deployment): glbox does not take over someone else's record\n  fix: delete that record if nothing needs it, use another name in gitlab.external_url, or remove dns.route53_zone_id and point the name at the box yourself",
        observed.zone_id,
        observed.host,
        owner_name(&observed.host)
    )))
}

impl Change {
    pub fn is_noop(&self) -> bool {
        !matches!(self, Change::Upsert { .. })
    }

    pub fn item(&self, address: Option<&str>) -> Option<PlanItem> {
        let target = address.map_or("the new Elastic IP".to_string(), str::to_string);
        let item = match self {
            Change::Absent => return None,
            Change::Manual { host } => {
                PlanItem::new("dns_record", host.clone(), None, Action::NoChange).with_changes(
                    vec![format!(
                        "published by you: {host} A {target} (glbox up prints it)"
                    )],
                )
            }
            Change::Upsert {
                zone_id,
                host,
                from,
            } => {
                let (action, change) = match from {
                    None => (Action::Create, format!("A {target} in Route 53")),
                    Some(values) => (
                        Action::Update,
                        format!("A {} -> {target}", values.join(", ")),
                    ),
                };
                PlanItem::new("dns_record", host.clone(), Some(zone_id.clone()), action)
                    .with_changes(vec![change])
            }
            Change::NoChange {
                zone_id,
                host,
                address,
            } => PlanItem::new(
                "dns_record",
                host.clone(),
                Some(zone_id.clone()),
                Action::NoChange,
            )
            .with_changes(vec![format!("A {address} in Route 53")]),
        };
        Some(item)
    }
}

/// Writes the record for `address` (the Elastic IP) and waits until Route
/// 53 reports it INSYNC; returns the record, as made or to publish.
pub async fn apply(
    ctx: &Ctx<'_>,
    change: &Change,
    address: Option<&str>,
) -> Result<Option<Record>> {
    let (host, managed_by) = match change {
        Change::Absent => return Ok(None),
        Change::Manual { host } => (host, "manual"),
        Change::Upsert { host, .. } | Change::NoChange { host, .. } => (host, "route53"),
    };
    let Some(address) = address else {
        return Ok(None);
    };
    if let Change::Upsert { zone_id, host, .. } = change {
        let upsert = |name: &str, kind, value: String| {
            R53Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(route53::record_set(name, kind, TTL_SECONDS, &[value]))
                .build()
                .expect("action and record set are set")
        };
        // One batch: the record and its mark exist together or not at all.
        let changes = vec![
            upsert(host, RrType::A, address.to_string()),
            upsert(&owner_name(host), RrType::Txt, ctx.names.dns_owner()),
        ];
        let comment = format!("glbox: {host} for deployment {}", ctx.settings.name);
        let change_id = route53::change(ctx.aws, zone_id, Some(&comment), changes).await?;
        route53::wait_insync(ctx.aws, ctx.ui, &change_id).await?;
        ctx.ui.info(&format!(
            "{host} A {address} is in Route 53 zone {zone_id} (INSYNC)"
        ));
    }
    Ok(Some(Record {
        name: host.clone(),
        kind: "A",
        value: address.to_string(),
        managed_by,
    }))
}

/// Removes glbox's record and its mark (for `down`); a record glbox did
/// not mark stays.
pub async fn delete(ctx: &Ctx<'_>, observed: &Observed) -> Result<bool> {
    if !observed.owned(ctx) {
        return Ok(false);
    }
    let owner = owner_name(&observed.host);
    let sets = [
        (observed.host.as_str(), RrType::A, &observed.address),
        (owner.as_str(), RrType::Txt, &observed.owner),
    ];
    let changes = sets
        .into_iter()
        .filter_map(|(name, kind, set)| {
            let set = set.as_ref()?;
            let ttl = set.ttl.unwrap_or(TTL_SECONDS);
            Some(
                R53Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(route53::record_set(name, kind, ttl, &set.values))
                    .build()
                    .expect("action and record set are set"),
            )
        })
        .collect();
    route53::change(ctx.aws, &observed.zone_id, None, changes).await?;
    ctx.ui.info(&format!(
        "removed glbox's record for {} from Route 53 zone {}",
        observed.host, observed.zone_id
    ));
    Ok(true)
}

/// The record's line in `glbox status`.
pub fn status(
    ctx: &Ctx<'_>,
    observed: Option<&Observed>,
    address: Option<&str>,
) -> Option<(String, String)> {
    let Some(observed) = observed else {
        let host = host(ctx.settings).filter(|_| ctx.settings.elastic_ip)?;
        let value = address.unwrap_or("the Elastic IP");
        return Some((host.clone(), format!("published by you: {host} A {value}")));
    };
    let values = observed.address.as_ref().map(|set| set.values.join(", "));
    let state = match (values, observed.owned(ctx)) {
        (None, _) => "missing".to_string(),
        (Some(values), false) => format!("A {values}, not glbox's"),
        (Some(values), true) if address.is_some_and(|a| a != values) => {
            format!("A {values}, not the Elastic IP (run glbox up)")
        }
        (Some(values), true) => format!("A {values} in Route 53"),
    };
    Some((observed.host.clone(), state))
}

// ------------------------------------------- without a zone, and for verify

/// Let's Encrypt without a Route 53 zone: the user publishes the record,
/// and the install waits until public DNS has it.
pub fn needs_public_dns(settings: &Settings) -> bool {
    settings.gitlab.letsencrypt && settings.dns_zone_id.is_none()
}

/// `up --no-wait-dns` while public DNS does not answer the external URL's
/// name with the Elastic IP: the settings with Let's Encrypt off, for this
/// run only (an install with it on would fail). `None`: keep it as set.
pub async fn letsencrypt_deferred(
    ctx: &Ctx<'_>,
    addresses: &[crate::resources::elastic_ip::Address],
    no_wait: bool,
) -> Option<Settings> {
    if !no_wait || !needs_public_dns(ctx.settings) {
        return None;
    }
    let host = host(ctx.settings)?;
    let address = addresses.first().and_then(|a| a.public_ip.parse().ok());
    let seen = match address {
        Some(address) => match crate::public_dns::points_at(&host, address).await {
            Ok(()) => return None,
            Err(seen) => seen,
        },
        None => "no Elastic IP yet".to_string(),
    };
    ctx.ui.warn(&format!(
        "public DNS does not point {host} at the box yet ({seen}): installing with Let's Encrypt off; run glbox up once it does"
    ));
    let mut settings = ctx.settings.clone();
    settings.gitlab.letsencrypt = false;
    Some(settings)
}

/// With Let's Encrypt on, the certificate depends on the external URL's
/// name answering with the box's address: when it does not, the report
/// says so, as the cause. With a zone, Route 53's record is what counts
/// (glbox waited for it to be INSYNC); without, public DNS.
pub async fn check_dns(
    ctx: &Ctx<'_>,
    observed: Option<&Observed>,
    address: Option<&str>,
    report: &mut crate::verify::Report,
) {
    let Some(host) = host(ctx.settings) else {
        return;
    };
    let Some(address) = address.filter(|_| ctx.settings.gitlab.letsencrypt) else {
        return;
    };
    let elsewhere = match observed {
        Some(zone) => {
            let values = zone.address.as_ref().map(|set| set.values.clone());
            match values.as_deref() {
                Some([value]) if value == address => None,
                Some(values) => Some(format!(
                    "Route 53 zone {} answers {}",
                    zone.zone_id,
                    values.join(", ")
                )),
                None => Some(format!("Route 53 zone {} has no A record", zone.zone_id)),
            }
        }
        None => match address.parse() {
            Ok(ip) => crate::public_dns::points_elsewhere(&host, ip).await,
            Err(_) => None,
        },
    };
    if let Some(seen) = elsewhere {
        crate::verify::add_dns_mismatch(report, &format!("{host} should be {address}; {seen}"));
    }
}

/// Waits until public DNS answers with the record; an install with Let's
/// Encrypt before that would fail.
pub async fn wait_for_public_dns(
    ctx: &Ctx<'_>,
    record: &Record,
    deadline: std::time::Duration,
) -> Result<()> {
    let address = record
        .value
        .parse()
        .map_err(|_| Error::Refused(format!("{} is not an IPv4 address", record.value)))?;
    crate::public_dns::wait_points_at(ctx.ui, &record.name, address, deadline)
        .await
        .map_err(|e| match e {
            Error::Timeout { .. } => Error::Refused(format!(
                "{e}\n  fix: publish {} A {} at your DNS provider (or set dns.route53_zone_id to let glbox do it), then run glbox up again; glbox up --no-wait-dns installs now with Let's Encrypt off",
                record.name, record.value
            )),
            other => other,
        })
}
