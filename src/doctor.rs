//! `glbox doctor`: before the first `up`, everything that would stop it,
//! each with what to fix. Nothing is created: EC2 permissions are tried
//! with `DryRun`, the others asked of IAM's policy simulator, and the rest
//! read.

use serde::Serialize;

use crate::aws::ec2;
use crate::error::Result;
use crate::resources::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// An AWS error as a failed check, with glbox's usual hint.
    fn from_error(check: &'static str, error: crate::error::Error) -> Finding {
        let text = error.to_string();
        let (detail, fix) = match text.split_once("\n  fix: ") {
            Some((detail, fix)) => (detail.to_string(), fix.to_string()),
            None => (text, "see the message".to_string()),
        };
        Finding::fail(check, detail, fix)
    }
}

/// Why a call failed, in a few words (AWS's code, or the first part of
/// the message when there is none).
fn reason(error: crate::aws::AwsError) -> String {
    match error.code {
        Some(code) => format!("{code}: {}", error.message),
        None => error.message.chars().take(80).collect::<String>() + "…",
    }
}

/// Every check, in order. Stops after the credentials when they fail:
/// nothing else can be asked then.
pub async fn run(ctx: &Ctx<'_>) -> Vec<Finding> {
    let mut findings = vec![Finding::ok(
        "configuration",
        format!(
            "deployment {:?} in {}, {} on {}",
            ctx.settings.name,
            ctx.settings.region,
            ctx.settings.instance_type,
            ctx.settings.os.as_str()
        ),
    )];
    let caller = match credentials(ctx).await {
        Ok((finding, arn)) => {
            findings.push(finding);
            arn
        }
        Err(e) => {
            findings.push(Finding::from_error("credentials", e));
            return findings;
        }
    };
    findings.push(region(ctx).await);
    findings.extend(ec2_permissions(ctx).await);
    findings.push(other_permissions(ctx, &caller).await);
    findings.extend(quotas(ctx).await);
    findings.extend(local_tools(ctx));
    findings
}

async fn credentials(ctx: &Ctx<'_>) -> Result<(Finding, String)> {
    let who = crate::aws::sts::caller(&ctx.aws.sts()).await?;
    let arn = who.arn.unwrap_or_else(|| "?".into());
    Ok((
        Finding::ok(
            "credentials",
            format!("{arn} (account {})", who.account.as_deref().unwrap_or("?")),
        ),
        arn,
    ))
}

async fn region(ctx: &Ctx<'_>) -> Finding {
    match ec2::lookups::zones(&ctx.aws.ec2).await {
        Ok(zones) => Finding::ok(
            "region",
            format!(
                "{}: {} availability zones",
                ctx.settings.region,
                zones.len()
            ),
        ),
        Err(e) => Finding::from_error("region", e.into()),
    }
}

/// What a `DryRun` call answered.
fn dry_run(check: &'static str, action: &'static str, verdict: ec2::dry_runs::Verdict) -> Finding {
    match verdict {
        Ok(true) => Finding::ok(check, format!("{action} allowed")),
        Ok(false) => Finding::fail(
            check,
            format!("{action} is not allowed"),
            format!("add {action} to your policy (docs/iam-policy.json has all glbox needs)"),
        ),
        Err(e) => Finding::from_error(check, e.into()),
    }
}

/// The EC2 calls that create things, tried with `DryRun` on what `up`
/// would really use (the image, zone and VPC it would pick).
async fn ec2_permissions(ctx: &Ctx<'_>) -> Vec<Finding> {
    const CHECK: &str = "ec2 permissions";
    let placement = match crate::resources::placement::resolve(ctx, None, None).await {
        Ok(p) => p,
        Err(e) => return vec![Finding::from_error(CHECK, e)],
    };
    let launch =
        match crate::resources::image::resolve_launch(ctx, &placement, Vec::new(), None).await {
            Ok(l) => l,
            Err(e) => return vec![Finding::from_error(CHECK, e)],
        };
    let client = &ctx.aws.ec2;
    let settings = ctx.settings;
    let run = ec2::dry_runs::run_instances(
        client,
        &launch.image_id,
        &settings.instance_type,
        &placement.subnet_id,
    )
    .await;
    let volume = ec2::dry_runs::create_volume(
        client,
        &placement.availability_zone,
        settings.data_volume.size_gib,
    )
    .await;
    let group = ec2::dry_runs::create_security_group(client, &placement.vpc_id).await;
    let address = ec2::dry_runs::allocate_address(client).await;
    vec![
        dry_run(CHECK, "ec2:RunInstances", run),
        dry_run(CHECK, "ec2:CreateVolume", volume),
        dry_run(CHECK, "ec2:CreateSecurityGroup", group),
        dry_run(CHECK, "ec2:AllocateAddress", address),
    ]
}

/// IAM, SSM and SES actions `up` needs, each on the resource glbox would
/// use it on (the simulator judges resource-scoped policies only then).
fn probes(ctx: &Ctx<'_>, account: &str) -> Vec<(Vec<&'static str>, String)> {
    let partition = crate::aws::partition(&ctx.settings.region);
    let iam_name = ctx.names.iam_name();
    let iam =
        |kind: &str, name: &str| format!("arn:{partition}:iam::{account}:{kind}/glbox/{name}");
    let mut probes = vec![
        (
            vec![
                "iam:CreateRole",
                "iam:TagRole",
                "iam:PutRolePolicy",
                "iam:PutRolePermissionsBoundary",
                "iam:PassRole",
            ],
            iam("role", &iam_name),
        ),
        (
            vec![
                "iam:CreateInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:AddRoleToInstanceProfile",
            ],
            iam("instance-profile", &iam_name),
        ),
        (
            vec![
                "iam:CreatePolicy",
                "iam:TagPolicy",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
            ],
            crate::resources::iam::boundary_arn(partition, account),
        ),
        (
            vec!["ssm:PutParameter", "ssm:AddTagsToResource"],
            format!(
                "arn:{partition}:ssm:{}:{account}:parameter{}root-password",
                ctx.settings.region,
                ctx.names.parameter_prefix()
            ),
        ),
        (
            vec!["ssm:SendCommand"],
            format!(
                "arn:{partition}:ssm:{}::document/AWS-RunShellScript",
                ctx.settings.region
            ),
        ),
        // Following a command: an older policy lacks the listing, and
        // without it a bootstrap already sent could not be followed.
        (
            vec!["ssm:ListCommandInvocations", "ssm:GetCommandInvocation"],
            "*".to_string(),
        ),
    ];
    if ctx.settings.email.is_some() {
        probes.push((
            vec![
                "iam:CreateUser",
                "iam:TagUser",
                "iam:PutUserPolicy",
                "iam:CreateAccessKey",
            ],
            iam("user", &crate::email::credentials::user_name(ctx)),
        ));
        probes.push((
            vec![
                "ses:VerifyDomainIdentity",
                "ses:VerifyDomainDkim",
                "ses:GetIdentityVerificationAttributes",
                "ses:GetIdentityDkimAttributes",
                "ses:GetSendQuota",
            ],
            "*".to_string(),
        ));
        if let Some(zone) = ctx
            .settings
            .email
            .as_ref()
            .and_then(|e| e.route53_zone_id.as_ref())
        {
            probes.push((
                vec![
                    "route53:GetHostedZone",
                    "route53:ListResourceRecordSets",
                    "route53:ChangeResourceRecordSets",
                ],
                format!("arn:{partition}:route53:::hostedzone/{zone}"),
            ));
        }
    }
    probes
}

/// What glbox's own calls would carry, for the policy's conditions: roles
/// and users are made and written only with glbox's permissions boundary.
fn simulation_context(partition: &str, account: &str) -> Vec<aws_sdk_iam::types::ContextEntry> {
    let entry = |key: &str, value: &str| {
        aws_sdk_iam::types::ContextEntry::builder()
            .context_key_name(key)
            .context_key_type(aws_sdk_iam::types::ContextKeyTypeEnum::String)
            .context_key_values(value)
            .build()
    };
    vec![
        entry("iam:PassedToService", "ec2.amazonaws.com"),
        entry(
            "iam:PermissionsBoundary",
            &crate::resources::iam::boundary_arn(partition, account),
        ),
    ]
}

/// The principal to simulate: an assumed role's session is its role (with
/// its path, when IAM tells it).
async fn principal_arn(ctx: &Ctx<'_>, caller: &str) -> String {
    let Some((head, rest)) = caller.split_once(":assumed-role/") else {
        return caller.to_string();
    };
    let role = rest.split('/').next().unwrap_or(rest);
    crate::aws::iam::roles::get_role(&ctx.aws.iam, role)
        .await
        .ok()
        .flatten()
        .map(|r| r.arn().to_string())
        .unwrap_or_else(|| format!("{}:role/{role}", head.replacen(":sts:", ":iam:", 1)))
}

async fn other_permissions(ctx: &Ctx<'_>, caller: &str) -> Finding {
    const CHECK: &str = "iam/ssm/ses permissions";
    let account = caller.split(':').nth(4).unwrap_or("*").to_string();
    let principal = principal_arn(ctx, caller).await;
    let (mut allowed, mut denied, mut unknown) = (0, Vec::new(), Vec::new());
    for (actions, resource) in probes(ctx, &account) {
        let simulated = crate::aws::iam::simulate_principal_policy(
            &ctx.aws.iam,
            &principal,
            &actions,
            &resource,
            simulation_context(crate::aws::partition(&ctx.settings.region), &account),
        )
        .await;
        let out = match simulated {
            Ok(out) => out,
            Err(e) => {
                return Finding::warn(
                    CHECK,
                    format!(
                        "could not ask IAM's policy simulator ({}); these are checked when used",
                        reason(e)
                    ),
                    "allow iam:SimulatePrincipalPolicy on yourself for a full check",
                )
            }
        };
        for result in &out {
            let action = result.eval_action_name().to_string();
            if result.eval_decision().as_str() == "allowed" {
                allowed += 1;
            } else if !result.missing_context_values().is_empty() {
                // A condition on something only the real call carries.
                unknown.push(action);
            } else {
                denied.push(action);
            }
        }
    }
    if !denied.is_empty() {
        Finding::fail(
            CHECK,
            format!("not allowed: {}", denied.join(", ")),
            "add them to your policy (docs/iam-policy.json has all glbox needs)",
        )
    } else if !unknown.is_empty() {
        Finding::warn(
            CHECK,
            format!(
                "{allowed} actions allowed; {} depend on conditions only the real calls show",
                unknown.join(", ")
            ),
            "nothing, if your policy is docs/iam-policy.json; else check these by hand",
        )
    } else {
        Finding::ok(CHECK, format!("{allowed} actions allowed"))
    }
}

/// The headroom of the Elastic IP and vCPU quotas for this deployment,
/// judged as `up` judges them (src/quotas.rs): what it still needs (nothing
/// for what it has already) against the quota minus what is in use.
async fn quotas(ctx: &Ctx<'_>) -> Vec<Finding> {
    let (instances, addresses) = match tokio::try_join!(
        crate::resources::instance::observe(ctx),
        crate::resources::elastic_ip::describe_tagged(ctx)
    ) {
        Ok(pair) => pair,
        Err(e) => return vec![Finding::from_error("quotas", e)],
    };
    let own_runs = crate::resources::instance::live(&instances)
        .iter()
        .any(|i| i.instance_type == ctx.settings.instance_type && i.state != "stopped");
    let needs = crate::quotas::Needs {
        addresses: u32::from(ctx.settings.elastic_ip && addresses.is_empty()),
        instances: u32::from(!own_runs),
        ..crate::quotas::Needs::default()
    };
    let account = match crate::quotas::lookup(ctx, &needs, true).await {
        Ok(account) => account,
        Err(e) => return vec![Finding::from_error("quotas", e)],
    };
    crate::quotas::judge(&needs, &account)
        .into_iter()
        .map(|h| {
            let fix = h.fix.unwrap_or_default();
            match h.state {
                crate::quotas::State::Fits => Finding::ok(h.check, h.detail),
                crate::quotas::State::Unknown => Finding::warn(h.check, h.detail, fix),
                crate::quotas::State::Short => Finding::fail(h.check, h.detail, fix),
            }
        })
        .collect()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What glbox itself does not need, but the commands it prints do.
fn local_tools(ctx: &Ctx<'_>) -> Vec<Finding> {
    const CHECK: &str = "local tools";
    let mut findings = Vec::new();
    match ctx.settings.ssh_access() {
        None => {
            let missing: Vec<&str> = ["aws", "session-manager-plugin"]
                .into_iter()
                .filter(|p| !on_path(p))
                .collect();
            findings.push(if missing.is_empty() {
                Finding::ok(CHECK, "aws and session-manager-plugin for a shell on the box")
            } else {
                Finding::warn(
                    CHECK,
                    format!("{} not found: glbox works without, but `aws ssm start-session` (the shell command glbox prints) needs them", missing.join(" and ")),
                    "install the AWS CLI and the Session Manager plugin",
                )
            });
        }
        Some(_) => findings.push(if on_path("ssh") {
            Finding::ok(CHECK, "ssh for a shell on the box")
        } else {
            Finding::warn(
                CHECK,
                "ssh not found: glbox works without, but the shell command it prints needs it",
                "install an OpenSSH client",
            )
        }),
    }
    findings
}

/// The findings as a table for people.
pub fn table(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let verdict = match f.verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        out.push_str(&format!("  {verdict:<5} {:<24} {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("        fix: {fix}\n"));
        }
    }
    out
}
