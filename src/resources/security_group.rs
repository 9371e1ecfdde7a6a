//! The deployment's security group: HTTP(S) from `http_cidrs`, SSH only in
//! SSH mode and only from `ssh_cidrs`. Ingress rules converge exactly:
//! missing ones are added and any other ingress rule is removed.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use ipnet::IpNet;

use crate::aws::ec2::security_groups::{self as gateway, Authorized};
use crate::config::Settings;
use crate::error::Result;
use crate::names::Role;
use crate::resources::{Action, Ctx, PlanItem};

/// Where an ingress rule lets traffic in from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Cidr(IpNet),
    /// Rules glbox never makes; kept so that they can be revoked exactly.
    Group(String),
    PrefixList(String),
}

/// One ingress rule, flattened to a single source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: Source,
}

impl Rule {
    fn tcp(port: i32, cidr: IpNet) -> Self {
        Rule {
            protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            source: Source::Cidr(cidr),
        }
    }

    fn describe(&self) -> String {
        let ports = if self.protocol == "-1" {
            "all traffic".to_string()
        } else if self.from_port == self.to_port {
            format!("{}/{}", self.protocol, self.from_port)
        } else {
            format!("{}/{}-{}", self.protocol, self.from_port, self.to_port)
        };
        let source = match &self.source {
            Source::Cidr(net) => net.to_string(),
            Source::Group(id) => id.clone(),
            Source::PrefixList(id) => id.clone(),
        };
        format!("{ports} from {source}")
    }

    fn permission(&self) -> IpPermission {
        let builder = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .from_port(self.from_port)
            .to_port(self.to_port);
        match &self.source {
            Source::Cidr(IpNet::V4(net)) => {
                builder.ip_ranges(IpRange::builder().cidr_ip(net.to_string()).build())
            }
            Source::Cidr(IpNet::V6(net)) => {
                builder.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(net.to_string()).build())
            }
            Source::Group(id) => {
                builder.user_id_group_pairs(UserIdGroupPair::builder().group_id(id).build())
            }
            Source::PrefixList(id) => {
                builder.prefix_list_ids(PrefixListId::builder().prefix_list_id(id).build())
            }
        }
        .build()
    }
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: String,
    pub rules: BTreeSet<Rule>,
    /// A lab's expiry (`glbox:expires-at`); single boxes have none.
    pub expires_at: Option<String>,
}

/// The ingress rules the settings call for.
pub fn desired_rules(settings: &Settings) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for cidr in &settings.http_cidrs {
        rules.insert(Rule::tcp(80, *cidr));
        rules.insert(Rule::tcp(443, *cidr));
    }
    if let Some(ssh) = settings.ssh_access() {
        for cidr in &ssh.cidrs {
            rules.insert(Rule::tcp(22, *cidr));
        }
    }
    rules
}

fn rules_of(permissions: &[IpPermission]) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from_port, to_port) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let rule = |source| Rule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            source,
        };
        let cidrs = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()));
        for cidr in cidrs {
            if let Ok(net) = cidr.parse::<IpNet>() {
                rules.insert(rule(Source::Cidr(net)));
            }
        }
        for pair in p.user_id_group_pairs() {
            rules.insert(rule(Source::Group(
                pair.group_id().unwrap_or_default().to_string(),
            )));
        }
        for list in p.prefix_list_ids() {
            rules.insert(rule(Source::PrefixList(
                list.prefix_list_id().unwrap_or_default().to_string(),
            )));
        }
    }
    rules
}

pub async fn observe(ctx: &Ctx<'_>) -> Result<Option<SecurityGroup>> {
    let found =
        gateway::describe(&ctx.aws.ec2, ctx.names.owned_filters(Role::SecurityGroup)).await?;
    Ok(found.first().map(|g| SecurityGroup {
        id: g.group_id().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        rules: rules_of(g.ip_permissions()),
        expires_at: crate::names::ec2_tag(g.tags(), crate::names::TAG_EXPIRES_AT)
            .map(str::to_string),
    }))
}

#[derive(Debug, Clone)]
pub enum Change {
    Create,
    Update {
        id: String,
        add: Vec<Rule>,
        remove: Vec<Rule>,
    },
    NoChange {
        id: String,
    },
}

pub fn diff(settings: &Settings, observed: Option<&SecurityGroup>) -> Change {
    let Some(group) = observed else {
        return Change::Create;
    };
    let desired = desired_rules(settings);
    let add: Vec<Rule> = desired.difference(&group.rules).cloned().collect();
    let remove: Vec<Rule> = group.rules.difference(&desired).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        Change::NoChange {
            id: group.id.clone(),
        }
    } else {
        Change::Update {
            id: group.id.clone(),
            add,
            remove,
        }
    }
}

impl Change {
    pub fn item(&self, ctx: &Ctx<'_>) -> PlanItem {
        let name = ctx.names.name_of(Role::SecurityGroup);
        match self {
            Change::Create => PlanItem::new("security_group", name, None, Action::Create)
                .with_changes(
                    desired_rules(ctx.settings)
                        .iter()
                        .map(|r| format!("allow {}", r.describe()))
                        .collect(),
                ),
            Change::Update { id, add, remove } => {
                let changes = add
                    .iter()
                    .map(|r| format!("add rule {}", r.describe()))
                    .chain(
                        remove
                            .iter()
                            .map(|r| format!("remove rule {}", r.describe())),
                    )
                    .collect();
                PlanItem::new("security_group", name, Some(id.clone()), Action::Update)
                    .with_changes(changes)
            }
            Change::NoChange { id } => {
                PlanItem::new("security_group", name, Some(id.clone()), Action::NoChange)
            }
        }
    }
}

/// Makes the group match the settings; returns its id.
pub async fn apply(ctx: &Ctx<'_>, change: &Change, vpc_id: &str) -> Result<String> {
    match change {
        Change::NoChange { id } => Ok(id.clone()),
        Change::Create => {
            let id = match create(ctx, vpc_id).await {
                Ok(id) => id,
                // The SDK retried a create whose answer was lost: the group
                // is there, with the deployment's tags.
                Err(e) if e.code.as_deref() == Some("InvalidGroup.Duplicate") => {
                    match observe(ctx).await?.filter(|g| g.vpc_id == vpc_id) {
                        Some(group) => group.id,
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            let rules: Vec<Rule> = desired_rules(ctx.settings).into_iter().collect();
            authorize(ctx, &id, &rules).await?;
            Ok(id)
        }
        Change::Update { id, add, remove } => {
            authorize(ctx, id, add).await?;
            if !remove.is_empty() {
                // Rules already gone: a retried call whose answer was lost.
                let rules = remove.iter().map(Rule::permission).collect();
                gateway::revoke(&ctx.aws.ec2, id, rules).await?;
            }
            ctx.ui.info(&format!(
                "updated security group {id}: {} rule(s) added, {} removed",
                add.len(),
                remove.len()
            ));
            Ok(id.clone())
        }
    }
}

async fn create(ctx: &Ctx<'_>, vpc_id: &str) -> std::result::Result<String, crate::aws::AwsError> {
    let name = ctx.names.name_of(Role::SecurityGroup);
    let id = gateway::create(
        &ctx.aws.ec2,
        &name,
        format!(
            "glbox deployment {}: GitLab web and access",
            ctx.names.deployment
        ),
        vpc_id,
        ctx.names
            .tag_spec(ResourceType::SecurityGroup, Role::SecurityGroup),
    )
    .await?;
    ctx.ui.info(&format!("created security group {id}"));
    Ok(id)
}

/// Adds `rules`. `InvalidPermission.Duplicate` means some are there already
/// (a retried call whose answer was lost, or rules added meanwhile): then
/// only the missing ones are added.
async fn authorize(ctx: &Ctx<'_>, id: &str, rules: &[Rule]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let ec2 = &ctx.aws.ec2;
    let permissions = |rules: &[Rule]| rules.iter().map(Rule::permission).collect();
    if gateway::authorize(ec2, ctx.ui, id, permissions(rules)).await? == Authorized::Added {
        return Ok(());
    }
    let present = observe(ctx)
        .await?
        .filter(|g| g.id == id)
        .map(|g| g.rules)
        .unwrap_or_default();
    let missing: Vec<Rule> = rules
        .iter()
        .filter(|r| !present.contains(r))
        .cloned()
        .collect();
    if !missing.is_empty() {
        gateway::authorize(ec2, ctx.ui, id, permissions(&missing)).await?;
    }
    Ok(())
}

/// Deletes the group. The instance using it must be gone first.
pub async fn delete(ctx: &Ctx<'_>, group: &SecurityGroup) -> Result<()> {
    gateway::delete(&ctx.aws.ec2, &group.id).await?;
    ctx.ui.info(&format!("deleted security group {}", group.id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(http: &[&str]) -> Settings {
        let mut s = crate::test_support::settings("t");
        s.http_cidrs = http.iter().map(|c| c.parse().unwrap()).collect();
        s
    }

    #[test]
    fn rules_converge_both_ways() {
        let s = settings(&["0.0.0.0/0"]);
        let observed = SecurityGroup {
            id: "sg-1".into(),
            vpc_id: "vpc-1".into(),
            rules: [
                Rule::tcp(80, "0.0.0.0/0".parse().unwrap()),
                Rule::tcp(22, "0.0.0.0/0".parse().unwrap()),
            ]
            .into(),
            expires_at: None,
        };
        let Change::Update { add, remove, .. } = diff(&s, Some(&observed)) else {
            panic!("expected an update");
        };
        assert_eq!(add, vec![Rule::tcp(443, "0.0.0.0/0".parse().unwrap())]);
        assert_eq!(remove, vec![Rule::tcp(22, "0.0.0.0/0".parse().unwrap())]);
    }

    #[test]
    fn matching_rules_are_no_change_and_ssm_opens_no_ssh() {
        let s = settings(&["0.0.0.0/0", "::/0"]);
        let desired = desired_rules(&s);
        assert!(desired.iter().all(|r| r.from_port != 22));
        let observed = SecurityGroup {
            id: "sg-1".into(),
            vpc_id: "vpc-1".into(),
            rules: desired,
            expires_at: None,
        };
        assert!(matches!(diff(&s, Some(&observed)), Change::NoChange { .. }));
    }

    #[test]
    fn permissions_round_trip_through_rules() {
        let rules: Vec<Rule> = vec![
            Rule::tcp(443, "2001:db8::/32".parse().unwrap()),
            Rule {
                protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                source: Source::Group("sg-9".into()),
            },
        ];
        let back = rules_of(&rules.iter().map(Rule::permission).collect::<Vec<_>>());
        assert_eq!(back, rules.into_iter().collect());
    }
}
