//! Whether the account's quotas leave room for what `up` and `lab up` are
//! about to make, asked before any mutating call (and shown by `doctor`).
//!
//! A new account holds 5 Elastic IPs per region (Amazon VPC quotas,
//! https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html)
//! and few vCPUs: Running On-Demand and Spot instances of the Standard
//! families (A, C, D, H, I, M, R, T, Z) share one vCPU quota per market
//! (https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html,
//! https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html).
//! Without this check a 25-seat lab got 5 addresses and 20 failed seats, or
//! failed as a whole with `VcpuLimitExceeded`, on every run.
//!
//! The judgement ([`judge`]) is a pure function of looked-up numbers; the
//! lookups ([`lookup`]) read Service Quotas, DescribeAddresses,
//! DescribeInstances and DescribeInstanceTypes. A quota that cannot be read
//! (no `servicequotas:GetServiceQuota`) is said and not enforced.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::resources::Ctx;

/// Service Quotas (service code `ec2`): "EC2-VPC Elastic IPs".
pub const ELASTIC_IP_QUOTA: &str = "L-0263D0A3";
/// "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", vCPUs.
pub const ON_DEMAND_VCPU_QUOTA: &str = "L-1216C47A";
/// "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", vCPUs.
pub const SPOT_VCPU_QUOTA: &str = "L-34B43A08";

/// Whether the type belongs to the Standard families, which share the
/// quotas above: the letters before the generation's digit are one of
/// A, C, D, H, I (with Im and Is), M, R, T, Z. Inf, Trn, DL, HPC, Mac, G,
/// P, X, U... have quotas of their own.
pub fn is_standard_family(instance_type: &str) -> bool {
    let family: String = instance_type
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    matches!(
        family.as_str(),
        "a" | "c" | "d" | "h" | "i" | "im" | "is" | "m" | "r" | "t" | "z"
    )
}

/// What a plan will add, and what it stops first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Elastic IPs to allocate.
    pub addresses: u32,
    /// Instances of the configured type to launch or start.
    pub instances: u32,
    /// Whether the instances are asked for on spot first (labs: whatever
    /// spot refuses is launched on-demand).
    pub spot: bool,
    /// Running instances of the deployment that are terminated or stopped
    /// before the launch: (type, on spot). They free their vCPUs.
    pub freed: Vec<(String, bool)>,
    /// The lab's seats, for the "fewer seats" advice; `None` for one box.
    pub lab_seats: Option<u16>,
}

/// A quota as Service Quotas answered it.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    Known(u32),
    /// Why it could not be read (AWS's code and message).
    Unreadable(String),
}

/// The account, as looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub region: String,
    pub instance_type: String,
    /// `None` when no address is needed (not looked up).
    pub addresses: Option<(Limit, u32)>,
    /// On-demand quota and the Standard vCPUs running on-demand; `None`
    /// when not looked up (no instance needed, or not a Standard type).
    pub on_demand: Option<(Limit, u32)>,
    pub spot: Option<(Limit, u32)>,
    /// vCPUs of each type involved (the configured one, freed ones).
    pub vcpus: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Fits,
    Short,
    /// The quota could not be read, or the type has a quota glbox does
    /// not check: said, not enforced.
    Unknown,
}

/// One quota's verdict, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Headroom {
    /// "elastic ip quota" or "vcpu quota".
    pub check: &'static str,
    pub state: State,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn increase(code: &str, desired: u32, region: &str) -> String {
    format!(
        "aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} --desired-value {desired} --region {region}"
    )
}

/// Judges every quota the needs touch. Pure: the numbers are looked up
/// elsewhere.
pub fn judge(needs: &Needs, account: &Account) -> Vec<Headroom> {
    let mut verdicts = Vec::new();
    if let Some((limit, in_use)) = &account.addresses {
        verdicts.push(judge_addresses(needs, account, limit, *in_use));
    }
    if needs.instances > 0 || account.on_demand.is_some() {
        verdicts.push(judge_vcpus(needs, account));
    }
    verdicts
}

fn judge_addresses(needs: &Needs, account: &Account, limit: &Limit, in_use: u32) -> Headroom {
    const CHECK: &str = "elastic ip quota";
    let region = &account.region;
    let limit = match limit {
        Limit::Known(limit) => *limit,
        Limit::Unreadable(why) => {
            return Headroom {
                check: CHECK,
                state: State::Unknown,
                detail: format!(
                    "could not read the Elastic IP quota ({why}); {in_use} address(es) in use in {region}, {} more needed",
                    needs.addresses
                ),
                fix: Some("allow servicequotas:GetServiceQuota, or check Service Quotas (EC2, EC2-VPC Elastic IPs) yourself".into()),
            }
        }
    };
    let free = limit.saturating_sub(in_use);
    let detail = format!(
        "{} new Elastic IP(s) needed; {in_use} of the account's {limit} in use in {region} ({free} free)",
        needs.addresses
    );
    if needs.addresses <= free {
        return Headroom {
            check: CHECK,
            state: State::Fits,
            detail,
            fix: None,
        };
    }
    let mut ways = vec![
        format!(
            "request {} Elastic IPs: {}",
            in_use + needs.addresses,
            increase(ELASTIC_IP_QUOTA, in_use + needs.addresses, region)
        ),
        "release addresses you no longer use".to_string(),
    ];
    if let Some(seats) = needs.lab_seats {
        let fitting = u32::from(seats).saturating_sub(needs.addresses - free);
        ways.push(format!("or set lab.seats = {fitting}"));
    }
    ways.push(
        "or set network.elastic_ip = false (each box gets a public IPv4 at launch, at the same price)"
            .into(),
    );
    Headroom {
        check: CHECK,
        state: State::Short,
        detail,
        fix: Some(ways.join("; ")),
    }
}

/// The vCPUs a market has free: its quota, minus what runs, plus what the
/// plan stops first.
fn free_vcpus(limit: u32, used: u32, freed: u32) -> u32 {
    (limit + freed).saturating_sub(used)
}

fn judge_vcpus(needs: &Needs, account: &Account) -> Headroom {
    const CHECK: &str = "vcpu quota";
    let kind = &account.instance_type;
    let region = &account.region;
    if !is_standard_family(kind) {
        return Headroom {
            check: CHECK,
            state: State::Unknown,
            detail: format!("{kind} is not a Standard family; its vCPU quota is not checked"),
            fix: Some(
                "check Service Quotas (EC2) for the family's Running On-Demand instances quota"
                    .into(),
            ),
        };
    }
    let per_instance = account.vcpus.get(kind).copied().unwrap_or(0);
    let wanted = needs.instances * per_instance;
    let freed_on = |spot: bool| -> u32 {
        needs
            .freed
            .iter()
            .filter(|(t, s)| *s == spot && is_standard_family(t))
            .map(|(t, _)| account.vcpus.get(t).copied().unwrap_or(0))
            .sum()
    };
    let market = |quota: &Option<(Limit, u32)>, spot: bool| match quota {
        Some((Limit::Known(limit), used)) => {
            Ok((*limit, *used, free_vcpus(*limit, *used, freed_on(spot))))
        }
        Some((Limit::Unreadable(why), used)) => Err((why.clone(), *used)),
        None => Err(("not looked up".to_string(), 0)),
    };
    let what = match needs.instances {
        0 => format!("no new {kind} needed"),
        1 => format!("{kind} needs {wanted} vCPUs"),
        n => format!("{n} × {kind} need {wanted} vCPUs"),
    };
    let on_demand = market(&account.on_demand, false);
    let spot = needs.spot.then(|| market(&account.spot, true));
    // A lab asks spot first and launches on-demand what spot refuses: either
    // market holding all of it is enough.
    let fits_spot = matches!(&spot, Some(Ok((_, _, free))) if wanted <= *free);
    let mut parts = Vec::new();
    match &on_demand {
        Ok((limit, used, _)) => parts.push(format!(
            "{used} of the account's {limit} standard vCPUs are in use in {region}"
        )),
        Err((why, used)) => parts.push(format!(
            "could not read the On-Demand vCPU quota ({why}); {used} standard vCPUs run in {region}"
        )),
    }
    if let Some(spot) = &spot {
        match spot {
            Ok((limit, used, _)) => parts.push(format!("spot: {used} of {limit} in use")),
            Err((why, _)) => parts.push(format!("could not read the Spot vCPU quota ({why})")),
        }
    }
    let detail = format!("{what}; {}", parts.join("; "));
    let (state, fix) = match &on_demand {
        _ if fits_spot => (State::Fits, None),
        Ok((_, _, free)) if wanted <= *free => (State::Fits, None),
        Err(_) => (
            State::Unknown,
            Some(
                "allow servicequotas:GetServiceQuota, or check Service Quotas (EC2) yourself"
                    .to_string(),
            ),
        ),
        Ok((_, used, free)) => {
            let desired = used + wanted - freed_on(false);
            let mut ways = vec![format!(
                "request {desired} vCPUs (Running On-Demand Standard instances): {}",
                increase(ON_DEMAND_VCPU_QUOTA, desired, region)
            )];
            if let Some(Ok((_, spot_used, _))) = &spot {
                let desired = (spot_used + wanted).saturating_sub(freed_on(true));
                ways.push(format!(
                    "or {desired} Spot vCPUs: {}",
                    increase(SPOT_VCPU_QUOTA, desired, region)
                ));
            }
            if let (Some(seats), true) = (needs.lab_seats, per_instance > 0) {
                let short_by = (wanted - free).div_ceil(per_instance);
                ways.push(format!(
                    "or set lab.seats = {}",
                    u32::from(seats).saturating_sub(short_by)
                ));
            }
            ways.push("or stop other instances, or choose a smaller instance.type".into());
            (State::Short, Some(ways.join("; ")))
        }
    };
    Headroom {
        check: CHECK,
        state,
        detail,
        fix,
    }
}

/// The refusal when a quota is short (exit status 2), with the numbers and
/// the fixes; unreadable quotas are warned about through `ui`.
pub fn enforce(ctx: &Ctx<'_>, verdicts: &[Headroom]) -> Result<()> {
    for unknown in verdicts.iter().filter(|v| v.state == State::Unknown) {
        ctx.ui.warn(&format!(
            "{}: {}; going on without it",
            unknown.check, unknown.detail
        ));
    }
    let short: Vec<String> = verdicts
        .iter()
        .filter(|v| v.state == State::Short)
        .map(|v| {
            format!(
                "  {}: {}\n    fix: {}",
                v.check,
                v.detail,
                v.fix.as_deref().unwrap_or_default()
            )
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(Error::Quota(format!(
        "the account's quotas are too small for this plan; nothing was changed:\n{}",
        short.join("\n")
    )))
}

/// Checks `needs` against the account and refuses when it does not fit:
/// the one check `up` and `lab up` share.
pub async fn check(ctx: &Ctx<'_>, needs: &Needs) -> Result<()> {
    if needs.addresses == 0 && needs.instances == 0 {
        return Ok(());
    }
    let account = lookup(ctx, needs, false).await?;
    enforce(ctx, &judge(needs, &account))
}

/// What a single box's plan adds: an Elastic IP when one is allocated, an
/// instance when one is launched or started. The instance a plan replaces
/// (or stops to change its type) and duplicates are stopped first.
pub fn box_needs(plan: &crate::deploy::plan::Plan) -> Needs {
    use crate::resources::{elastic_ip, instance::Change};
    let running = |i: &crate::resources::instance::Instance| {
        matches!(i.state.as_str(), "pending" | "running")
    };
    let mut freed: Vec<(String, bool)> = plan
        .instance
        .duplicates
        .iter()
        .filter(|i| running(i))
        .map(|i| (i.instance_type.clone(), false))
        .collect();
    let instances = match &plan.instance.change {
        Change::Create => 1,
        Change::Replace { old, .. } => {
            if running(old) {
                freed.push((old.instance_type.clone(), false));
            }
            1
        }
        Change::Update { update, .. } => match (&update.new_type, update.start) {
            // Running: stopped, changed, started again.
            (Some((from, _)), false) => {
                freed.push((from.clone(), false));
                1
            }
            (_, true) => 1,
            (None, false) => 0,
        },
        Change::NoChange { .. } => 0,
    };
    Needs {
        addresses: u32::from(matches!(plan.elastic_ip.change, elastic_ip::Change::Create)),
        instances,
        spot: false,
        freed,
        lab_seats: None,
    }
}

/// Service Quotas' value for an EC2 quota, or why it could not be read.
async fn quota(ctx: &Ctx<'_>, code: &str) -> Limit {
    let quotas = ctx.aws.service_quotas();
    match crate::aws::service_quotas::applied_value(&quotas, "ec2", code).await {
        Ok(value) => Limit::Known(value.unwrap_or(0.0).max(0.0) as u32),
        Err(e) => Limit::Unreadable(match e.code {
            Some(code) => code,
            None => e.message.chars().take(80).collect(),
        }),
    }
}

/// Addresses of the region: each counts against the quota, associated or
/// not.
async fn addresses_in_use(ctx: &Ctx<'_>) -> Result<u32> {
    let addresses = crate::aws::ec2::addresses::describe(&ctx.aws.ec2, Vec::new()).await?;
    Ok(addresses.len() as u32)
}

/// Pending and running Standard instances of the region, by (type, spot).
async fn standard_running(ctx: &Ctx<'_>) -> Result<Vec<(String, bool, Option<u32>)>> {
    let filters = vec![crate::aws::ec2::filter(
        "instance-state-name",
        &["pending", "running"],
    )];
    let instances = crate::aws::ec2::instances::describe(&ctx.aws.ec2, filters).await?;
    let mut running = Vec::new();
    for instance in &instances {
        let Some(kind) = instance.instance_type().map(|t| t.as_str().to_string()) else {
            continue;
        };
        if !is_standard_family(&kind) {
            continue;
        }
        let spot = instance
            .instance_lifecycle()
            .is_some_and(|l| l.as_str() == "spot");
        // As configured (CPU options), else the type's default.
        let vcpus = instance
            .cpu_options()
            .and_then(|c| Some(c.core_count()? * c.threads_per_core()?))
            .and_then(|v| u32::try_from(v).ok());
        running.push((kind, spot, vcpus));
    }
    Ok(running)
}

/// Each type's default vCPUs.
async fn vcpus_of(ctx: &Ctx<'_>, types: &[String]) -> Result<BTreeMap<String, u32>> {
    if types.is_empty() {
        return Ok(BTreeMap::new());
    }
    let described = crate::aws::ec2::lookups::instance_types(&ctx.aws.ec2, types).await?;
    Ok(described
        .iter()
        .filter_map(|t| {
            let name = t.instance_type()?.as_str().to_string();
            let vcpus = t.v_cpu_info()?.default_v_cpus()?;
            Some((name, u32::try_from(vcpus).ok()?))
        })
        .collect())
}

/// Looks up what `judge` needs for `needs`; with `everything` (doctor),
/// both quotas whatever is needed.
pub async fn lookup(ctx: &Ctx<'_>, needs: &Needs, everything: bool) -> Result<Account> {
    let instance_type = ctx.settings.instance_type.clone();
    let mut account = Account {
        region: ctx.settings.region.clone(),
        instance_type: instance_type.clone(),
        addresses: None,
        on_demand: None,
        spot: None,
        vcpus: BTreeMap::new(),
    };
    if needs.addresses > 0 || everything {
        let (limit, in_use) = tokio::join!(quota(ctx, ELASTIC_IP_QUOTA), addresses_in_use(ctx));
        account.addresses = Some((limit, in_use?));
    }
    if (needs.instances == 0 && !everything) || !is_standard_family(&instance_type) {
        return Ok(account);
    }
    let running = standard_running(ctx).await?;
    let mut types: Vec<String> = running
        .iter()
        .filter(|(_, _, v)| v.is_none())
        .map(|(t, _, _)| t.clone())
        .chain(needs.freed.iter().map(|(t, _)| t.clone()))
        .chain([instance_type])
        .collect();
    types.sort();
    types.dedup();
    account.vcpus = vcpus_of(ctx, &types).await?;
    let used = |spot: bool| -> u32 {
        running
            .iter()
            .filter(|(_, s, _)| *s == spot)
            .map(|(t, _, v)| v.unwrap_or_else(|| account.vcpus.get(t).copied().unwrap_or(1)))
            .sum()
    };
    let (on_demand_used, spot_used) = (used(false), used(true));
    account.on_demand = Some((quota(ctx, ON_DEMAND_VCPU_QUOTA).await, on_demand_used));
    if needs.spot {
        account.spot = Some((quota(ctx, SPOT_VCPU_QUOTA).await, spot_used));
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(addresses: Option<(Limit, u32)>, on_demand: Option<(Limit, u32)>) -> Account {
        Account {
            region: "eu-west-1".into(),
            instance_type: "c5.2xlarge".into(),
            addresses,
            on_demand,
            spot: None,
            vcpus: [("c5.2xlarge".to_string(), 8), ("m5.large".to_string(), 2)]
                .into_iter()
                .collect(),
        }
    }

    fn lab(seats: u16, addresses: u32, instances: u32) -> Needs {
        Needs {
            addresses,
            instances,
            lab_seats: Some(seats),
            ..Needs::default()
        }
    }

    #[test]
    fn standard_families_share_one_quota() {
        for standard in [
            "c5.2xlarge",
            "m7g.2xlarge",
            "t3.large",
            "im4gn.large",
            "z1d.large",
        ] {
            assert!(is_standard_family(standard), "{standard}");
        }
        for other in [
            "g5.xlarge",
            "p4d.24xlarge",
            "inf1.xlarge",
            "trn1.2xlarge",
            "mac1.metal",
            "dl1.24xlarge",
            "hpc6a.48xlarge",
            "x2idn.large",
        ] {
            assert!(!is_standard_family(other), "{other}");
        }
    }

    #[test]
    fn twenty_five_addresses_do_not_fit_a_five_address_quota() {
        let verdicts = judge(&lab(25, 25, 0), &account(Some((Limit::Known(5), 0)), None));
        assert_eq!(verdicts.len(), 1);
        let v = &verdicts[0];
        assert_eq!(v.state, State::Short);
        assert!(
            v.detail
                .contains("25 new Elastic IP(s) needed; 0 of the account's 5"),
            "{}",
            v.detail
        );
        let fix = v.fix.as_deref().unwrap();
        assert!(
            fix.contains("--quota-code L-0263D0A3 --desired-value 25 --region eu-west-1"),
            "{fix}"
        );
        assert!(
            fix.contains("lab.seats = 5") && fix.contains("network.elastic_ip = false"),
            "{fix}"
        );
    }

    #[test]
    fn addresses_in_use_count_against_the_quota() {
        let fits = judge(&lab(2, 2, 0), &account(Some((Limit::Known(5), 3)), None));
        assert_eq!(fits[0].state, State::Fits);
        let short = judge(&lab(3, 3, 0), &account(Some((Limit::Known(5), 3)), None));
        assert_eq!(short[0].state, State::Short);
        assert!(short[0].fix.as_deref().unwrap().contains("lab.seats = 2"));
    }

    #[test]
    fn vcpus_are_quota_minus_what_runs_plus_what_the_plan_stops() {
        // 8 of 64 in use: 7 more c5.2xlarge fit, 8 do not.
        let running = Some((Limit::Known(64), 8));
        assert_eq!(
            judge(&lab(7, 0, 7), &account(None, running.clone()))[0].state,
            State::Fits
        );
        let short = &judge(&lab(8, 0, 8), &account(None, running.clone()))[0];
        assert_eq!(short.state, State::Short);
        assert!(
            short
                .detail
                .contains("8 × c5.2xlarge need 64 vCPUs; 8 of the account's 64"),
            "{}",
            short.detail
        );
        let fix = short.fix.as_deref().unwrap();
        assert!(
            fix.contains("--quota-code L-1216C47A --desired-value 72"),
            "{fix}"
        );
        assert!(fix.contains("lab.seats = 7"), "{fix}");
        // The box being replaced frees its own vCPUs first.
        let replace = Needs {
            instances: 1,
            freed: vec![("c5.2xlarge".into(), false)],
            ..Needs::default()
        };
        assert_eq!(
            judge(&replace, &account(None, Some((Limit::Known(8), 8))))[0].state,
            State::Fits
        );
    }

    #[test]
    fn a_spot_lab_fits_when_either_market_holds_it() {
        let mut a = account(None, Some((Limit::Known(5), 0)));
        a.spot = Some((Limit::Known(64), 0));
        let needs = Needs {
            spot: true,
            ..lab(4, 0, 4)
        };
        assert_eq!(judge(&needs, &a)[0].state, State::Fits);
        a.spot = Some((Limit::Known(5), 0));
        let short = &judge(&needs, &a)[0];
        assert_eq!(short.state, State::Short);
        assert!(short.fix.as_deref().unwrap().contains("L-34B43A08"));
    }

    #[test]
    fn an_unreadable_quota_is_said_not_enforced() {
        let denied = || Limit::Unreadable("AccessDeniedException".into());
        let verdicts = judge(
            &lab(25, 25, 25),
            &account(Some((denied(), 0)), Some((denied(), 0))),
        );
        assert_eq!(verdicts.len(), 2);
        for v in &verdicts {
            assert_eq!(v.state, State::Unknown, "{v:?}");
            assert!(v.detail.contains("AccessDeniedException"), "{}", v.detail);
        }
    }

    #[test]
    fn other_families_are_not_judged() {
        let mut a = account(None, None);
        a.instance_type = "g5.xlarge".into();
        let v = &judge(&lab(2, 0, 2), &a)[0];
        assert_eq!(v.state, State::Unknown);
    }
}
