//! What a deployment costs to run, from the bundled, dated price table
//! (`src/cost/prices.toml`): the instance, its root and data gp3 volumes
//! (with IOPS and throughput above gp3's free baseline) and its public IPv4
//! address. Nothing here calls AWS; a type or region the table lacks is
//! reported as such, never guessed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::config::Settings;

/// gp3 includes this many IOPS and MiB/s in the storage price.
const GP3_FREE_IOPS: i32 = 3_000;
const GP3_FREE_MIBPS: i32 = 125;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceTable {
    as_of: String,
    note: String,
    hours_per_month: f64,
    regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionPrices {
    public_ipv4_per_hour: f64,
    gp3_per_gib_month: f64,
    gp3_per_iops_month: f64,
    gp3_per_mibps_month: f64,
    snapshot_per_gib_month: f64,
    s3_standard_per_gib_month: f64,
    instances: BTreeMap<String, f64>,
}

fn table() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str(include_str!("cost/prices.toml"))
            .expect("the bundled price table is valid (checked by a unit test)")
    })
}

/// The date the bundled prices were last checked.
pub fn prices_as_of() -> &'static str {
    &table().as_of
}

/// The on-demand hourly price of `instance_type` in `region`, if the table
/// has it (the wizard shows it next to each offered type).
pub fn instance_hourly(region: &str, instance_type: &str) -> Option<f64> {
    table()
        .regions
        .get(region)?
        .instances
        .get(instance_type)
        .copied()
}

/// Hours in the month the estimate assumes (AWS's own convention).
pub fn hours_per_month() -> f64 {
    table().hours_per_month
}

/// One thing that is billed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineItem {
    /// `instance`, `root_volume`, `data_volume`, `data_volume_performance`,
    /// `public_ipv4`.
    pub item: &'static str,
    /// What is billed and at which rate, for people.
    pub detail: String,
    /// `None` when the table has no price for it (see `missing`).
    #[serde(serialize_with = "cents_option")]
    pub monthly_usd: Option<f64>,
    /// Why there is no figure: "no price in the table for X in Y".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// The monthly (730 h) and hourly cost of one deployment, line by line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub region: String,
    pub instance_type: String,
    pub prices_as_of: String,
    pub note: String,
    pub hours_per_month: f64,
    pub lines: Vec<LineItem>,
    /// With `[backup]` on: the snapshots and S3 backups, estimates that
    /// depend on how much data GitLab holds, and so not in the totals.
    pub backups: Vec<LineItem>,
    /// False when a line has no price: the totals then cover only the
    /// lines that have one.
    pub complete: bool,
    #[serde(rename = "monthly_usd", serialize_with = "cents")]
    monthly: f64,
    #[serde(rename = "hourly_usd", serialize_with = "tenth_cents")]
    hourly: f64,
}

impl Estimate {
    /// The sum of the priced lines for a month of 730 hours.
    pub fn monthly_usd(&self) -> f64 {
        self.monthly
    }

    /// The same per hour of running (storage spread over the month's hours),
    /// so that N boxes for H hours cost about N × H × this.
    pub fn hourly_usd(&self) -> f64 {
        self.hourly
    }

    /// "$263.85/month" or, with a line unpriced, "at least $15.65/month
    /// (incomplete: ...)".
    pub fn monthly_summary(&self) -> String {
        let total = format!("${:.2}/month", self.monthly);
        if self.complete {
            format!("about {total} on demand")
        } else {
            let missing: Vec<&str> = self
                .lines
                .iter()
                .filter_map(|l| l.missing.as_deref())
                .collect();
            format!("at least {total} (incomplete: {})", missing.join("; "))
        }
    }

    /// The estimate as a small table, with the date and what it leaves out.
    pub fn table(&self) -> String {
        let mut out = format!(
            "Estimated cost ({} in {}, {} hours a month):\n",
            self.instance_type, self.region, self.hours_per_month
        );
        for line in &self.lines {
            let amount = match line.monthly_usd {
                Some(usd) => format!("${usd:>9.2}"),
                None => format!("{:>10}", "?"),
            };
            let detail = line.missing.as_deref().unwrap_or(&line.detail);
            out.push_str(&format!("  {amount}  {:<24} {detail}\n", line.item));
        }
        out.push_str(&format!(
            "  ${:>9.2}  per month{} (${:.4} per hour)\n",
            self.monthly,
            if self.complete {
                ""
            } else {
                ", INCOMPLETE: the lines marked ? have no price in the table"
            },
            self.hourly
        ));
        if !self.backups.is_empty() {
            out.push_str("  Backups (estimates: they depend on how much data GitLab holds; not in the total):\n");
            for line in &self.backups {
                let amount = match line.monthly_usd {
                    Some(usd) => format!("${usd:>9.2}"),
                    None => format!("{:>10}", "?"),
                };
                let detail = line.missing.as_deref().unwrap_or(&line.detail);
                out.push_str(&format!("  {amount}  {:<24} {detail}\n", line.item));
            }
        }
        out.push_str(&format!("  {}\n", self.note));
        out
    }
}

/// What a nightly GitLab backup is assumed to take, as a share of the data
/// volume (repositories compress little; the database and uploads vary).
const BACKUP_SHARE_OF_DATA: f64 = 0.25;

/// The snapshot and S3 lines of the estimate (see [`Estimate::backups`]).
fn backup_lines(settings: &Settings, region: Option<&RegionPrices>) -> Vec<LineItem> {
    let backup = &settings.backup;
    let data_gib = f64::from(settings.data_volume.size_gib);
    let mut lines = Vec::new();
    let priced = |item, detail: String, price: Option<f64>, gib: f64| LineItem {
        item,
        detail,
        monthly_usd: price.map(|p| p * gib),
        missing: price
            .is_none()
            .then(|| format!("no price in the table for {item} in {}", settings.region)),
    };
    if let Some(schedule) = backup.snapshots {
        let price = region.map(|r| r.snapshot_per_gib_month);
        let copies = if backup.copy_to_region.is_some() {
            2.0
        } else {
            1.0
        };
        lines.push(priced(
            "snapshots",
            format!(
                "estimate: {} snapshots, keep {}: EBS stores a full copy of the used blocks once (at most the volume's {} GiB{}), then only what changed{}",
                schedule.as_str(),
                backup.snapshot_keep,
                settings.data_volume.size_gib,
                price.map_or(String::new(), |p| format!(" x ${p}/GiB-month")),
                if copies > 1.0 { "; x2 with the copy in another region" } else { "" }
            ),
            price,
            data_gib * copies,
        ));
    }
    if let Some(s3) = backup.s3 {
        let price = region.map(|r| r.s3_standard_per_gib_month);
        let gib = data_gib * BACKUP_SHARE_OF_DATA * f64::from(s3.keep_days);
        lines.push(priced(
            "s3_backups",
            format!(
                "estimate: {} nightly backups kept, each assumed a quarter of the data volume ({:.0} GiB in all{})",
                s3.keep_days,
                gib,
                price.map_or(String::new(), |p| format!(" x ${p}/GiB-month"))
            ),
            price,
            gib,
        ));
    }
    lines
}

/// "12.3 GiB", "640 KiB": a size for people.
pub fn bytes_label(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// What keeping `snapshot_gib` of snapshots (their volumes' sizes: the most
/// they can take up) and `bucket_bytes` in S3 costs a month, for `down`.
pub fn kept_backups_line(region: &str, snapshot_gib: i64, bucket_bytes: u64) -> String {
    let Some(prices) = table().regions.get(region) else {
        return format!("Keeping them costs money every month (no price in the table for {region}: see https://aws.amazon.com/ebs/pricing/ and https://aws.amazon.com/s3/pricing/).");
    };
    let bucket_gib = bucket_bytes as f64 / f64::from(1u32 << 30);
    let snapshots = snapshot_gib as f64 * prices.snapshot_per_gib_month;
    let s3 = bucket_gib * prices.s3_standard_per_gib_month;
    format!(
        "Keeping them costs at most about ${:.2}/month (estimate: snapshots up to {snapshot_gib} GiB x ${}/GiB-month, since EBS stores only changed blocks; S3 {} x ${}/GiB-month; prices as of {}).",
        snapshots + s3,
        prices.snapshot_per_gib_month,
        bytes_label(bucket_bytes),
        prices.s3_standard_per_gib_month,
        prices_as_of()
    )
}

fn cents<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((value * 100.0).round() / 100.0)
}

fn tenth_cents<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((value * 10_000.0).round() / 10_000.0)
}

fn cents_option<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => cents(v, s),
        None => s.serialize_none(),
    }
}

/// Why `network.elastic_ip` is no cost decision (labs leave it off: a new
/// account holds only 5 Elastic IPs per region).
pub const SAME_PRICE_EITHER_WAY: &str = "the same price with or without an Elastic IP";

/// What a box's public IPv4 address is, for the cost lines.
pub fn public_ipv4_item(elastic_ip: bool) -> &'static str {
    if elastic_ip {
        "Elastic IP (public IPv4)"
    } else {
        "public IPv4 assigned at launch"
    }
}

/// The cost of running the deployment `settings` describes.
pub fn estimate(settings: &Settings) -> Estimate {
    let table = table();
    let hours = table.hours_per_month;
    let region = table.regions.get(&settings.region);
    let no_region = |what: &str| {
        format!(
            "no price in the table for {what} in {} (priced regions: {})",
            settings.region,
            table
                .regions
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let line = |item, detail: String, monthly: Result<f64, String>| match monthly {
        Ok(usd) => LineItem {
            item,
            detail,
            monthly_usd: Some(usd),
            missing: None,
        },
        Err(why) => LineItem {
            item,
            detail,
            monthly_usd: None,
            missing: Some(why),
        },
    };
    let mut lines = Vec::new();

    let instance_type = &settings.instance_type;
    let hourly_instance = region.map(|r| r.instances.get(instance_type).copied());
    lines.push(line(
        "instance",
        match hourly_instance {
            Some(Some(per_hour)) => {
                format!("{instance_type} on demand, Linux: ${per_hour}/hour x {hours} hours")
            }
            _ => format!("{instance_type} on demand, Linux"),
        },
        match hourly_instance {
            Some(Some(per_hour)) => Ok(per_hour * hours),
            Some(None) => Err(format!(
                "no price in the table for {instance_type} in {}",
                settings.region
            )),
            None => Err(no_region(instance_type)),
        },
    ));

    let storage = |item, what: &str, gib: i32| {
        let fixed = match region {
            Some(r) => Ok(r.gp3_per_gib_month * f64::from(gib)),
            None => Err(no_region("gp3")),
        };
        let rate = region.map_or(String::new(), |r| {
            format!(" x ${}/GiB-month", r.gp3_per_gib_month)
        });
        line(item, format!("{what}: {gib} GiB gp3{rate}"), fixed)
    };
    lines.push(storage(
        "root_volume",
        "root volume",
        settings.root_volume_gib,
    ));
    lines.push(storage(
        "data_volume",
        "data volume",
        settings.data_volume.size_gib,
    ));

    let extra_iops = (settings.data_volume.iops - GP3_FREE_IOPS).max(0);
    let extra_mibps = (settings.data_volume.throughput_mibps - GP3_FREE_MIBPS).max(0);
    lines.push(line(
        "data_volume_performance",
        match region {
            _ if extra_iops == 0 && extra_mibps == 0 => {
                "3,000 IOPS and 125 MiB/s: included in gp3's price".to_string()
            }
            Some(r) => format!(
                "{extra_iops} IOPS above 3,000 x ${} + {extra_mibps} MiB/s above 125 x ${} per month",
                r.gp3_per_iops_month, r.gp3_per_mibps_month
            ),
            None => format!("{extra_iops} IOPS above 3,000, {extra_mibps} MiB/s above 125"),
        },
        match region {
            Some(r) => Ok(f64::from(extra_iops) * r.gp3_per_iops_month
                + f64::from(extra_mibps) * r.gp3_per_mibps_month),
            None => Err(no_region("gp3 IOPS and throughput")),
        },
    ));

    // One public IPv4 address either way: the Elastic IP, or the address
    // assigned at launch. Both are billed by the hour at the same price
    // (Amazon VPC pricing, https://aws.amazon.com/vpc/pricing/).
    let address = public_ipv4_item(settings.elastic_ip);
    lines.push(line(
        "public_ipv4",
        match region {
            Some(r) => format!(
                "{address}: ${}/hour x {hours} hours, {}",
                r.public_ipv4_per_hour, SAME_PRICE_EITHER_WAY
            ),
            None => format!("{address}, {SAME_PRICE_EITHER_WAY}"),
        },
        match region {
            Some(r) => Ok(r.public_ipv4_per_hour * hours),
            None => Err(no_region("public IPv4 addresses")),
        },
    ));

    let backups = backup_lines(settings, region);
    let complete = lines.iter().all(|l| l.monthly_usd.is_some());
    let monthly: f64 = lines.iter().filter_map(|l| l.monthly_usd).sum();
    Estimate {
        region: settings.region.clone(),
        instance_type: instance_type.clone(),
        prices_as_of: table.as_of.clone(),
        note: table.note.clone(),
        hours_per_month: hours,
        lines,
        backups,
        complete,
        monthly,
        hourly: monthly / hours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::settings;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_bundled_table_parses_and_is_dated() {
        let table = table();
        assert!(table.as_of.len() == 10 && table.as_of.starts_with("20"));
        assert!(table.note.contains("prices change"));
        assert!(table.note.contains("data transfer"));
        for region in [
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-2",
        ] {
            let prices = &table.regions[region];
            // Every region prices the ladder the wizard offers for x86.
            for t in ["t3.xlarge", "m6i.xlarge", "c5.2xlarge", "c5.4xlarge"] {
                assert!(prices.instances.contains_key(t), "{t} in {region}");
            }
        }
    }

    #[test]
    fn defaults_in_us_east_1_match_the_hand_computed_figure() {
        // c5.2xlarge   0.34 $/h x 730 h          = 248.20
        // root 50 GiB  x 0.08 $/GiB-month         =   4.00
        // data 100 GiB x 0.08 $/GiB-month         =   8.00
        // IOPS 3000, 125 MiB/s: the free baseline =   0.00
        // Elastic IP   0.005 $/h x 730 h          =   3.65
        // total                                   = 263.85 a month
        // per hour: 263.85 / 730                  =   0.361438...
        let estimate = estimate(&settings("t"));
        assert!(estimate.complete);
        let monthly: Vec<f64> = estimate
            .lines
            .iter()
            .map(|l| l.monthly_usd.unwrap())
            .collect();
        let expected = [248.2, 4.0, 8.0, 0.0, 3.65];
        for (got, want) in monthly.iter().zip(expected) {
            assert!(close(*got, want), "{monthly:?}");
        }
        assert!(close(estimate.monthly_usd(), 263.85));
        assert!(close(estimate.hourly_usd(), 263.85 / 730.0));
        assert!(estimate.monthly_summary().contains("$263.85/month"));
    }

    #[test]
    fn graviton_in_frankfurt_has_no_instance_price_but_storage_is_priced() {
        // eu-central-1 has no c7g price in the table: that line is missing,
        // the rest is priced and the totals say they are incomplete.
        let mut s = settings("t");
        s.region = "eu-central-1".into();
        s.instance_type = "c7g.2xlarge".into();
        let estimate = estimate(&s);
        assert!(!estimate.complete);
        assert_eq!(estimate.lines[0].monthly_usd, None);
        assert_eq!(
            estimate.lines[0].missing.as_deref(),
            Some("no price in the table for c7g.2xlarge in eu-central-1")
        );
        // root 50 x 0.0952 = 4.76, data 100 x 0.0952 = 9.52, IPv4 3.65
        assert!(close(estimate.monthly_usd(), 4.76 + 9.52 + 3.65));
        assert!(estimate.table().contains("INCOMPLETE"));
        assert!(estimate
            .monthly_summary()
            .starts_with("at least $17.93/month"));
    }

    #[test]
    fn an_unknown_region_prices_nothing() {
        let mut s = settings("t");
        s.region = "ap-east-1".into();
        let estimate = estimate(&s);
        assert!(!estimate.complete);
        assert!(estimate.lines.iter().all(|l| l.monthly_usd.is_none()));
        assert!(close(estimate.monthly_usd(), 0.0));
        assert!(estimate.lines[0]
            .missing
            .as_deref()
            .unwrap()
            .contains("ap-east-1"));
    }

    #[test]
    fn json_rounds_to_cents_and_marks_missing_prices() {
        let mut s = settings("t");
        s.instance_type = "x9.huge".into();
        let json = serde_json::to_value(estimate(&s)).unwrap();
        assert_eq!(json["complete"], false);
        assert_eq!(json["lines"][0]["monthly_usd"], serde_json::Value::Null);
        assert_eq!(json["monthly_usd"], 15.65);
        assert_eq!(json["prices_as_of"], prices_as_of());
    }
}
