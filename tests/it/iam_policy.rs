//! `docs/iam-policy.json`, the least-privilege policy for running glbox,
//! checked two ways.
//!
//! Statically: every AWS call in glbox names its IAM action in
//! `.ctx("svc:Action")` or `crate::aws::error("svc:Action", e)` (that is how
//! its errors name the action refused). The test reads those literals from
//! `src/`, cross-checks them against the SDK operations `src/` really
//! invokes (so a call added without a `.ctx` cannot hide from the list),
//! and asserts that the policy allows each one on the resources AWS
//! authorizes for it, and allows nothing else but the documented
//! exceptions (permissions AWS checks for a call glbox makes, such as
//! `iam:PassRole` for RunInstances with an instance profile). A small
//! evaluator of the policy (Allow statements, Action and Resource globs,
//! the few condition operators the policy uses) also shows what the policy
//! refuses: other roles, other parameters, untagged instances.
//!
//! Dynamically: moto enforces IAM for requests signed with the keys of IAM
//! users it knows once `INITIAL_NO_AUTH_ACTION_COUNT` requests have been
//! served. Its enforcement covers Action only for these services: it asks
//! every non-IAM request with Resource `*` (and IAM requests with the
//! role's ARN only when they name an existing role), and it evaluates
//! Condition blocks against an empty context, which makes every condition
//! hold. So the emulator gets the policy with each Resource widened to `*`
//! (the "moto view"; conditions kept, and vacuous there); the resource
//! scopes and conditions are checked statically, including on the ARNs the
//! emulator handed out for what glbox created. With that user's keys the
//! real glbox binary runs a whole life cycle (full `up` over SSM with email
//! and Route 53, `plan`, `status`, `verify`, `email dns`, `email rotate`, a
//! type, volume and rule change, drift repaired, `doctor`,
//! `down --delete-data --delete-email-identity`, an SSH-mode deployment
//! with its key pair), and with single actions removed it fails naming the
//! action and the fix. The emulator runs with two more extensions (see
//! `ENFORCING_LAUNCHER`): moto's SigV4 check is skipped (it mis-computes
//! signatures of glbox's requests) and its refusals are answered in each
//! service's real error shape.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::{Run, Workspace};
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use base64::Engine;
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
/// moto's default account.
const ACCOUNT: &str = "123456789012";
const DEPLOYMENT: &str = "trial";
const SSM_CORE_POLICY: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
/// The owners of the images glbox resolves: Canonical's account (Ubuntu)
/// and the `amazon` alias (Amazon Linux).
const CANONICAL: &str = "099720109477";
const MANAGED_BY_TAG: &str = "aws:ResourceTag/glbox:managed-by";

/// Permissions AWS checks for calls glbox makes, which glbox never calls
/// itself, and why (docs/iam-policy.md explains each too).
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "iam:PassRole",
        "RunInstances, AssociateIamInstanceProfile and ReplaceIamInstanceProfileAssociation with glbox's instance profile, and AddRoleToInstanceProfile, hand the role to EC2",
    ),
    ("iam:TagRole", "CreateRole with Tags"),
    ("iam:TagInstanceProfile", "CreateInstanceProfile with Tags"),
    ("iam:TagUser", "CreateUser with Tags"),
    ("iam:TagPolicy", "CreatePolicy with Tags (the permissions boundary)"),
    ("dlm:TagResource", "CreateLifecyclePolicy with Tags (the snapshot schedule)"),
];

/// Actions glbox calls that AWS allows to every identity: not in the policy.
const NO_PERMISSION_NEEDED: &[&str] = &["sts:GetCallerIdentity"];

/// The managed-policy size quota (characters, whitespace not counted). An
/// inline user policy allows only 2,048: the policy does not fit one.
const MANAGED_POLICY_MAX_CHARS: usize = 6144;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The policy is two managed policies (one holds at most 6,144
/// characters): the operator attaches both.
const POLICY_FILES: &[&str] = &["docs/iam-policy.json", "docs/iam-policy-backups.json"];

fn policy_file(file: &str) -> Value {
    let text =
        std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

/// Both documents as one: what the operator may do.
fn policy() -> Value {
    let mut all = Vec::new();
    for file in POLICY_FILES {
        all.extend(statements(&policy_file(file)).iter().cloned());
    }
    json!({"Version": "2012-10-17", "Statement": all})
}

/// S3's IAM actions are not always named as its operations
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html):
/// the permissions each such call needs.
const S3_PERMISSIONS: &[(&str, &[&str])] = &[
    ("s3:HeadBucket", &["s3:ListBucket"]),
    ("s3:ListObjectsV2", &["s3:ListBucket"]),
    ("s3:ListObjectVersions", &["s3:ListBucketVersions"]),
    ("s3:GetBucketEncryption", &["s3:GetEncryptionConfiguration"]),
    ("s3:PutBucketEncryption", &["s3:PutEncryptionConfiguration"]),
    (
        "s3:GetPublicAccessBlock",
        &["s3:GetBucketPublicAccessBlock"],
    ),
    (
        "s3:PutPublicAccessBlock",
        &["s3:PutBucketPublicAccessBlock"],
    ),
    (
        "s3:GetBucketLifecycleConfiguration",
        &["s3:GetLifecycleConfiguration"],
    ),
    (
        "s3:PutBucketLifecycleConfiguration",
        &["s3:PutLifecycleConfiguration"],
    ),
    (
        "s3:DeleteObjects",
        &["s3:DeleteObject", "s3:DeleteObjectVersion"],
    ),
];

/// The IAM actions a call needs for itself (its own name, but for S3).
fn permissions_of(call: &str) -> Vec<String> {
    match S3_PERMISSIONS.iter().find(|(c, _)| *c == call) {
        Some((_, actions)) => actions.iter().map(|a| a.to_string()).collect(),
        None => vec![call.to_string()],
    }
}

fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_array().expect("Statement is a list")
}

/// A string or a list of strings.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

fn policy_actions(policy: &Value) -> BTreeSet<String> {
    statements(policy)
        .iter()
        .flat_map(|s| strings(&s["Action"]))
        .collect()
}

// ---------------------------------------------------------------------------
// What glbox calls, from its source.

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

fn is_action(text: &str) -> bool {
    let Some((service, action)) = text.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && action.starts_with(|c: char| c.is_ascii_uppercase())
        && action.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The action literals of `.ctx(` and `aws::error(` calls in `src/`, each
/// with where it is used; and the places that pass something else (a
/// helper's parameter), which the SDK cross-check covers.
struct Calls {
    actions: BTreeMap<String, Vec<String>>,
    indirect: Vec<String>,
}

fn called_actions() -> Calls {
    let mut calls = Calls {
        actions: BTreeMap::new(),
        indirect: Vec::new(),
    };
    for (file, text) in sources() {
        for marker in [".ctx(", "aws::error(", "ok_if("] {
            for (offset, _) in text.match_indices(marker) {
                let rest = text[offset + marker.len()..].trim_start();
                let place = format!("{file}:{}", line_of(&text, offset));
                match rest.strip_prefix('"') {
                    Some(literal) => {
                        let action = &literal[..literal.find('"').unwrap()];
                        assert!(
                            is_action(action),
                            "{place}: {action:?} is not a service:Action name"
                        );
                        calls
                            .actions
                            .entry(action.to_string())
                            .or_default()
                            .push(place);
                    }
                    None => calls.indirect.push(place),
                }
            }
        }
    }
    calls
}

/// `describe_instance_type_offerings` -> `DescribeInstanceTypeOfferings`.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The operations of each AWS SDK crate glbox depends on, by snake_case
/// name, with the IAM service prefix (`aws-sdk-<prefix>`) of each crate
/// that has it. Read from the crates' sources, found by `cargo metadata`.
fn sdk_operations() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = String::from_utf8(
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("-vV")
            .output()
            .expect("run rustc -vV")
            .stdout,
    )
    .unwrap()
    .lines()
    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
    .expect("rustc names its host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(repo())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let glbox = packages
        .iter()
        .find(|p| p["name"] == "glbox")
        .expect("glbox's own package");
    let direct: BTreeSet<&str> = glbox["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .filter_map(|d| d["name"].as_str())
        .filter(|n| n.starts_with("aws-sdk-"))
        .collect();
    let mut operations: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &direct {
        let package = packages
            .iter()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("cargo metadata has no package {name}"));
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let dir = manifest.parent().unwrap().join("src/operation");
        let prefix = name.trim_start_matches("aws-sdk-").to_string();
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let op = path.file_name().unwrap().to_string_lossy().into_owned();
                operations.entry(op).or_default().insert(prefix.clone());
            }
        }
    }
    assert!(
        direct.len() >= 5 && operations.len() > 100,
        "found too few SDK crates ({direct:?}) or operations ({})",
        operations.len()
    );
    operations
}

/// Every `.operation()` call in `src/` whose name is an SDK operation, as
/// the actions it may be (one per crate that has the operation), with where.
fn sdk_calls(operations: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, BTreeSet<String>)> {
    let mut calls = Vec::new();
    for (file, text) in sources() {
        for (offset, _) in text.match_indices("()") {
            let start = text[..offset]
                .rfind(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(0, |i| i + 1);
            if start == 0 || &text[start - 1..start] != "." {
                continue;
            }
            let name = &text[start..offset];
            if let Some(prefixes) = operations.get(name) {
                let actions = prefixes
                    .iter()
                    .map(|p| format!("{p}:{}", camel(name)))
                    .collect();
                calls.push((format!("{file}:{}", line_of(&text, offset)), actions));
            }
        }
    }
    calls
}

#[test]
fn every_sdk_call_in_src_names_its_action() {
    let calls = called_actions();
    let operations = sdk_operations();
    let invoked = sdk_calls(&operations);
    assert!(invoked.len() > 50, "found only {} SDK calls", invoked.len());
    let unnamed: Vec<String> = invoked
        .iter()
        .filter(|(_, actions)| actions.iter().all(|a| !calls.actions.contains_key(a)))
        .map(|(place, actions)| format!("{place}: {actions:?}"))
        .collect();
    assert!(
        unnamed.is_empty(),
        "SDK calls whose action no .ctx(\"svc:Action\") / aws::error(\"svc:Action\", e) names (wrap them, so that their errors name the action, and add the action to docs/iam-policy.json):\n{}",
        unnamed.join("\n")
    );
    // And the other way round: every named action is a real operation
    // (catches a typo such as "ec2:RunInstance").
    let real: BTreeSet<String> = operations
        .iter()
        .flat_map(|(op, prefixes)| prefixes.iter().map(move |p| format!("{p}:{}", camel(op))))
        .collect();
    let unknown: Vec<String> = calls
        .actions
        .iter()
        .filter(|(action, _)| !real.contains(*action))
        .map(|(action, places)| format!("{action} at {}", places.join(", ")))
        .collect();
    assert!(
        unknown.is_empty(),
        "named actions that are no SDK operation of glbox's AWS crates:\n{}",
        unknown.join("\n")
    );
    eprintln!(
        "{} SDK calls in src/, {} distinct actions named; passed through a helper (checked by the SDK cross-check): {}",
        invoked.len(),
        calls.actions.len(),
        calls.indirect.join(", ")
    );
}

// ---------------------------------------------------------------------------
// A small evaluator of the policy: Allow statements, Action and Resource
// globs (`*`, `?`), and the condition operators the policy uses.

/// IAM's glob: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            text.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Classic backtracking wildcard match.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// One authorization AWS makes for a request: an action on a resource,
/// with the request context the policy's conditions may read.
#[derive(Debug, Clone)]
struct Auth {
    action: String,
    resource: String,
    context: Vec<(String, String)>,
}

fn auth(action: &str, resource: &str, context: &[(&str, &str)]) -> Auth {
    Auth {
        action: action.to_string(),
        resource: resource.to_string(),
        context: context
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn conditions_hold(statement: &Value, context: &[(String, String)]) -> bool {
    let Some(conditions) = statement.get("Condition") else {
        return true;
    };
    conditions
        .as_object()
        .expect("Condition is an object")
        .iter()
        .all(|(operator, keys)| {
            keys.as_object()
                .expect("a condition operator maps keys to values")
                .iter()
                .all(|(key, expected)| {
                    // Condition keys are case-insensitive; a missing key fails.
                    let Some((_, actual)) =
                        context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))
                    else {
                        return false;
                    };
                    // A policy variable the request has no value for
                    // matches nothing.
                    let expected: Vec<String> = strings(expected)
                        .iter()
                        .filter_map(|e| substitute(e, context))
                        .collect();
                    match operator.as_str() {
                        "StringEquals" | "ArnEquals" => expected.iter().any(|e| e == actual),
                        "StringLike" | "ArnLike" => expected.iter().any(|e| glob(e, actual, false)),
                        other => panic!(
                            "the evaluator does not know the condition operator {other}: teach it"
                        ),
                    }
                })
        })
}

/// Replaces IAM policy variables (`${aws:PrincipalAccount}`) with the
/// request's values; `aws:PrincipalAccount` is in every request's context.
/// `None` when the request has no value for one: IAM then finds no equal
/// or like value, and the condition fails.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value>
fn substitute(value: &str, context: &[(String, String)]) -> Option<String> {
    let mut out = value.to_string();
    while let Some(start) = out.find("${") {
        let end = start + out[start..].find('}').expect("a closed policy variable");
        let key = &out[start + 2..end];
        assert!(
            key.contains(':'),
            "the evaluator cannot resolve ${{{key}}}: teach it"
        );
        let actual = context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
            .or_else(|| (key == "aws:PrincipalAccount").then(|| ACCOUNT.to_string()))?;
        out.replace_range(start..=end, &actual);
    }
    Some(out)
}

fn allows(policy: &Value, request: &Auth) -> bool {
    statements(policy).iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"])
                .iter()
                .any(|a| glob(a, &request.action, true))
            && strings(&s["Resource"])
                .iter()
                .any(|r| glob(r, &request.resource, false))
            && conditions_hold(s, &request.context)
    })
}

// ---------------------------------------------------------------------------
// What AWS authorizes for each call glbox makes, on resources named the way
// glbox names them (from glbox's own naming code).

fn ec2_arn(kind: &str, id: &str) -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{id}")
}

fn iam_arn(kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{kind}{path}{name}")
}

fn names() -> glbox::names::Names {
    glbox::names::Names::new(DEPLOYMENT, REGION)
}

/// `arn:aws:iam::1:role/glbox/x` -> `arn:aws:iam::1:role/x`.
fn pathless(arn: &str) -> String {
    let (head, name) = arn.rsplit_once('/').unwrap();
    let kind = head.split('/').next().unwrap();
    format!("{kind}/{name}")
}

fn role_arn() -> String {
    let names = names();
    iam_arn("role", names.iam_path(), &names.iam_name())
}

fn profile_arn() -> String {
    let names = names();
    iam_arn("instance-profile", names.iam_path(), &names.iam_name())
}

fn smtp_user_arn() -> String {
    let names = names();
    iam_arn(
        "user",
        names.iam_path(),
        &format!("{}-smtp", names.iam_name()),
    )
}

fn boundary_arn() -> String {
    glbox::resources::iam::boundary_arn("aws", ACCOUNT)
}

/// The condition context of a call that makes or writes a role or user
/// carrying `boundary`.
fn with_boundary(boundary: &str) -> [(&'static str, String); 1] {
    [("iam:PermissionsBoundary", boundary.to_string())]
}

fn bounded(action: &str, resource: &str) -> Auth {
    let context = with_boundary(&boundary_arn());
    auth(action, resource, &[(context[0].0, context[0].1.as_str())])
}

fn parameter_arn(name: &str) -> String {
    format!(
        "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}",
        name.trim_start_matches('/')
    )
}

/// AWS's public parameters belong to no account.
fn public_parameter_arn(name: &str) -> String {
    format!(
        "arn:aws:ssm:{REGION}::parameter/{}",
        name.trim_start_matches('/')
    )
}

const TAGGED: &[(&str, &str)] = &[(MANAGED_BY_TAG, "glbox")];

fn tag_on_create(create_action: &str, resources: &[String]) -> Vec<Auth> {
    resources
        .iter()
        .map(|r| auth("ec2:CreateTags", r, &[("ec2:CreateAction", create_action)]))
        .collect()
}

fn pass_role() -> Auth {
    auth(
        "iam:PassRole",
        &role_arn(),
        &[("iam:PassedToService", "ec2.amazonaws.com")],
    )
}

/// The authorizations AWS makes for `action` as glbox calls it: each
/// resource the request touches, with its context, plus the other actions
/// AWS checks for that call. A new action must be added here: think about
/// which resources it touches before widening the policy.
fn authorizations(action: &str) -> Vec<Auth> {
    let instance = ec2_arn("instance", "i-0123456789abcdef0");
    let volume = ec2_arn("volume", "vol-0123456789abcdef0");
    let group = ec2_arn("security-group", "sg-0123456789abcdef0");
    let address = ec2_arn("elastic-ip", "eipalloc-0123456789abcdef0");
    let key_pair = ec2_arn("key-pair", "glbox-trial");
    let interface = ec2_arn("network-interface", "eni-0123456789abcdef0");
    let rule = ec2_arn("security-group-rule", "sgr-0123456789abcdef0");
    let snapshot = format!("arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0");
    let image = format!("arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0");
    let dlm_policy = format!("arn:aws:dlm:{REGION}:{ACCOUNT}:policy/policy-0123456789abcdef0");
    let dlm_role = iam_arn(
        "role",
        "/glbox/",
        &glbox::resources::backup::schedule::role_name(&names()),
    );
    let bucket = format!("arn:aws:s3:::{}", names().backup_bucket(ACCOUNT));
    let tagged = |resource: &str| auth(action, resource, TAGGED);
    let plain = |resource: &str| auth(action, resource, &[]);
    let names = names();
    let root_password = format!("{}root-password", names.parameter_prefix());
    let smtp_password = format!("{}smtp-password", names.parameter_prefix());
    // A lab seat's password (`glbox lab`).
    let seat_password = format!(
        "{}root-password",
        glbox::names::Names::seat("class", 7, REGION, "2026-11-27T18:00:00Z").parameter_prefix()
    );
    let mut auths = match action {
        a if a.starts_with("ec2:Describe") => vec![plain("*")],
        "ec2:RunInstances" => {
            let mut auths = vec![
                plain(&instance),
                plain(&volume),
                plain(&interface),
                tagged(&group),
                tagged(&key_pair),
                plain(&ec2_arn("subnet", "subnet-0123456789abcdef0")),
                // Ubuntu's image (Canonical's) or Amazon Linux's.
                auth(action, &image, &[("ec2:Owner", CANONICAL)]),
                auth(action, &image, &[("ec2:Owner", "amazon")]),
                pass_role(),
            ];
            auths.extend(tag_on_create("RunInstances", &[instance, volume]));
            auths
        }
        // `glbox restore --snapshot` makes the volume from one of the
        // deployment's snapshots: CreateVolume is also authorized on the
        // snapshot (Service Authorization Reference, Amazon EC2, CreateVolume:
        // resource types volume and snapshot).
        "ec2:CreateVolume" => {
            let mut auths = vec![plain(&volume), tagged(&snapshot)];
            auths.extend(tag_on_create("CreateVolume", &[volume]));
            auths
        }
        "ec2:CreateSecurityGroup" => {
            let mut auths = vec![plain(&group), plain(&ec2_arn("vpc", "vpc-0123456789abcdef0"))];
            auths.extend(tag_on_create("CreateSecurityGroup", &[group]));
            auths
        }
        "ec2:AllocateAddress" => {
            let mut auths = vec![plain(&address)];
            auths.extend(tag_on_create("AllocateAddress", &[address]));
            auths
        }
        "ec2:ImportKeyPair" => {
            let mut auths = vec![plain(&key_pair)];
            auths.extend(tag_on_create("ImportKeyPair", &[key_pair]));
            auths
        }
        "ec2:CreateSnapshot" => {
            let mut auths = vec![tagged(&volume), plain(&snapshot)];
            auths.extend(tag_on_create("CreateSnapshot", &[snapshot]));
            auths
        }
        // The `glbox:bootstrap` tag on the deployment's instance.
        "ec2:CreateTags" => vec![tagged(&instance)],
        "ec2:AssociateAddress" => vec![tagged(&address), tagged(&instance), plain(&interface)],
        "ec2:DisassociateAddress" => vec![tagged(&address), plain(&interface)],
        "ec2:ReleaseAddress" => vec![tagged(&address)],
        "ec2:AssociateIamInstanceProfile" | "ec2:ReplaceIamInstanceProfileAssociation" => {
            vec![tagged(&instance), pass_role()]
        }
        "ec2:AttachVolume" | "ec2:DetachVolume" => vec![tagged(&instance), tagged(&volume)],
        "ec2:AuthorizeSecurityGroupIngress" | "ec2:RevokeSecurityGroupIngress" => {
            vec![tagged(&group), plain(&rule)]
        }
        "ec2:DeleteKeyPair" => vec![tagged(&key_pair)],
        "ec2:DeleteSecurityGroup" => vec![tagged(&group)],
        "ec2:DeleteVolume" | "ec2:ModifyVolume" => vec![tagged(&volume)],
        "ec2:GetConsoleOutput"
        | "ec2:ModifyInstanceMetadataOptions"
        | "ec2:StartInstances"
        | "ec2:StopInstances"
        | "ec2:TerminateInstances" => vec![tagged(&instance)],
        // The instance type, or its security groups (which may include one
        // someone else added).
        "ec2:ModifyInstanceAttribute" => vec![tagged(&instance), plain(&group)],
        // Made and written only with glbox's boundary.
        "iam:CreateRole" => vec![
            bounded(action, &role_arn()),
            auth("iam:TagRole", &role_arn(), &[]),
        ],
        "iam:PutRolePolicy" | "iam:PutRolePermissionsBoundary" => {
            vec![bounded(action, &role_arn())]
        }
        // Before an entity exists, IAM may authorize a read of it against
        // its ARN with or without the path: both are allowed.
        "iam:GetRole" => vec![plain(&role_arn()), plain(&pathless(&role_arn()))],
        "iam:GetInstanceProfile" => vec![plain(&profile_arn()), plain(&pathless(&profile_arn()))],
        "iam:GetUser" => vec![plain(&smtp_user_arn()), plain(&pathless(&smtp_user_arn()))],
        "iam:DeleteRole"
        | "iam:DeleteRolePolicy"
        | "iam:DetachRolePolicy"
        | "iam:GetRolePolicy"
        | "iam:ListAttachedRolePolicies"
        | "iam:ListRolePolicies"
        | "iam:UpdateAssumeRolePolicy" => vec![plain(&role_arn())],
        "iam:CreatePolicy" => vec![
            plain(&boundary_arn()),
            auth("iam:TagPolicy", &boundary_arn(), &[]),
        ],
        "iam:GetPolicy" | "iam:GetPolicyVersion" => vec![plain(&boundary_arn())],
        "iam:CreateInstanceProfile" => vec![
            plain(&profile_arn()),
            auth("iam:TagInstanceProfile", &profile_arn(), &[]),
        ],
        "iam:AddRoleToInstanceProfile" => vec![plain(&profile_arn()), pass_role()],
        "iam:DeleteInstanceProfile" | "iam:RemoveRoleFromInstanceProfile" => {
            vec![plain(&profile_arn())]
        }
        "iam:CreateUser" => vec![
            bounded(action, &smtp_user_arn()),
            auth("iam:TagUser", &smtp_user_arn(), &[]),
        ],
        "iam:PutUserPolicy" | "iam:PutUserPermissionsBoundary" => {
            vec![bounded(action, &smtp_user_arn())]
        }
        "iam:CreateAccessKey"
        | "iam:DeleteAccessKey"
        | "iam:DeleteUser"
        | "iam:DeleteUserPolicy"
        | "iam:GetUserPolicy"
        | "iam:ListAccessKeys" => vec![plain(&smtp_user_arn())],
        // `glbox doctor` asks the simulator about the caller itself.
        "iam:SimulatePrincipalPolicy" => vec![plain(&iam_arn("user", "/", "alice"))],
        "ssm:GetParameter" => {
            let mut auths = vec![
                plain(&parameter_arn(&root_password)),
                plain(&parameter_arn(&smtp_password)),
            ];
            for os in [glbox::config::Os::Ubuntu2404, glbox::config::Os::Al2023] {
                for arch in ["x86_64", "arm64"] {
                    let name = glbox::resources::image::ami_parameter(os, arch);
                    auths.push(plain(&public_parameter_arn(&name)));
                }
            }
            auths
        }
        "ssm:GetParametersByPath" => vec![plain(&parameter_arn(&names.parameter_prefix()))],
        // The lab's roster reads the seats' passwords.
        "ssm:GetParameters" => vec![plain(&parameter_arn(&seat_password))],
        // The lab finds its seats' passwords (no resource-level permission).
        "ssm:DescribeParameters" => vec![plain("*")],
        // `lab up` names the instance that may read a seat's password.
        "ssm:AddTagsToResource" => vec![plain(&parameter_arn(&seat_password))],
        "ssm:PutParameter" => vec![
            plain(&parameter_arn(&root_password)),
            auth("ssm:AddTagsToResource", &parameter_arn(&root_password), &[]),
            plain(&parameter_arn(&seat_password)),
            auth("ssm:AddTagsToResource", &parameter_arn(&seat_password), &[]),
        ],
        "ssm:DeleteParameter" | "ssm:DeleteParameters" => {
            vec![
                plain(&parameter_arn(&root_password)),
                plain(&parameter_arn(&smtp_password)),
                plain(&parameter_arn(&seat_password)),
            ]
        }
        "ssm:SendCommand" => vec![
            plain(&format!("arn:aws:ssm:{REGION}::document/AWS-RunShellScript")),
            auth(
                action,
                &instance,
                &[("ssm:resourceTag/glbox:managed-by", "glbox")],
            ),
        ],
        "ssm:CancelCommand"
        | "ssm:DescribeInstanceInformation"
        | "ssm:GetCommandInvocation"
        | "ssm:ListCommandInvocations" => {
            vec![plain("*")]
        }
        "ses:DeleteIdentity"
        | "ses:GetIdentityDkimAttributes"
        | "ses:GetIdentityVerificationAttributes"
        | "ses:VerifyDomainDkim"
        | "ses:VerifyDomainIdentity" => vec![plain(&format!(
            "arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com"
        ))],
        "ses:GetSendQuota" => vec![plain("*")],
        "route53:ChangeResourceRecordSets"
        | "route53:GetHostedZone"
        | "route53:ListResourceRecordSets" => {
            vec![plain("arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ")]
        }
        // Waiting for a change to be INSYNC: the change is its own resource
        // type (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html).
        "route53:GetChange" => vec![plain("arn:aws:route53:::change/C0123456789ABC")],
        "ec2:DeleteSnapshot" => vec![tagged(&snapshot)],
        // GetLifecyclePolicies and CreateLifecyclePolicy have no resource
        // type; creating tags the policy and hands DLM its role.
        "dlm:GetLifecyclePolicies" => vec![plain("*")],
        "dlm:CreateLifecyclePolicy" => vec![
            plain("*"),
            auth(
                "dlm:TagResource",
                &dlm_policy,
                &[("aws:RequestTag/glbox:managed-by", "glbox")],
            ),
            auth(
                "iam:PassRole",
                &dlm_role,
                &[("iam:PassedToService", "dlm.amazonaws.com")],
            ),
        ],
        "dlm:DeleteLifecyclePolicy" | "dlm:GetLifecyclePolicy" | "dlm:UpdateLifecyclePolicy" => {
            vec![tagged(&dlm_policy)]
        }
        a if a.starts_with("s3:") && a != "s3:DeleteObjects" => permissions_of(a)
            .iter()
            .map(|permission| auth(permission, &bucket, &[]))
            .collect(),
        "s3:DeleteObjects" => vec![
            auth("s3:DeleteObject", &format!("{bucket}/1733100000_2026_12_02_18.6.0_gitlab_backup.tar"), &[]),
            auth("s3:DeleteObjectVersion", &format!("{bucket}/config/1733100000_2026_12_02_18.6.0/gitlab-secrets.json"), &[]),
        ],
        "servicequotas:GetServiceQuota" => vec![plain(&format!(
            "arn:aws:servicequotas:{REGION}:{ACCOUNT}:ec2/L-1216C47A"
        ))],
        a if NO_PERMISSION_NEEDED.contains(&a) => Vec::new(),
        other => panic!(
            "glbox now calls {other}: add the resources it touches to authorizations() in tests/it/iam_policy.rs, then the least privilege that allows them to docs/iam-policy.json (and docs/iam-policy.md)"
        ),
    };
    auths.sort_by(|a, b| (&a.action, &a.resource).cmp(&(&b.action, &b.resource)));
    auths
}

#[test]
fn the_policy_allows_exactly_what_glbox_calls() {
    let policy = policy();
    let calls = called_actions();
    assert!(
        calls.actions.len() > 60,
        "found only {} actions in src/: did the .ctx convention change?",
        calls.actions.len()
    );

    // Every call, on every resource AWS authorizes for it, is allowed.
    let mut refused = Vec::new();
    let mut implied = BTreeSet::new();
    for (action, places) in &calls.actions {
        for request in authorizations(action) {
            if request.action != *action {
                implied.insert(request.action.clone());
            }
            if !allows(&policy, &request) {
                refused.push(format!("{request:?} (for {action} at {})", places[0]));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "docs/iam-policy.json refuses what glbox needs:\n{}",
        refused.join("\n")
    );

    // The implied actions are exactly the documented exceptions.
    let own: BTreeSet<String> = calls
        .actions
        .keys()
        .flat_map(|a| permissions_of(a))
        .collect();
    let implied: BTreeSet<String> = implied.into_iter().filter(|a| !own.contains(a)).collect();
    let exceptions: BTreeSet<String> = EXCEPTIONS.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(
        implied, exceptions,
        "the permissions AWS checks for glbox's calls besides the calls themselves"
    );

    // Least privilege: nothing but those.
    let needed: BTreeSet<String> = own
        .into_iter()
        .chain(exceptions)
        .filter(|a| !NO_PERMISSION_NEEDED.contains(&a.as_str()))
        .collect();
    let granted = policy_actions(&policy);
    let extra: Vec<&String> = granted.difference(&needed).collect();
    let missing: Vec<&String> = needed.difference(&granted).collect();
    assert!(
        extra.is_empty(),
        "docs/iam-policy.json grants actions glbox never needs: {extra:?}"
    );
    assert!(
        missing.is_empty(),
        "docs/iam-policy.json lacks: {missing:?}"
    );
    eprintln!(
        "{} actions called by glbox, {} exceptions, {} actions in {} statements",
        calls.actions.len(),
        EXCEPTIONS.len(),
        granted.len(),
        statements(&policy).len()
    );
}

#[test]
fn the_policy_is_well_formed_and_explained() {
    let policy = policy();
    assert_eq!(policy["Version"], "2012-10-17");
    for file in POLICY_FILES {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let size = text.chars().filter(|c| !c.is_whitespace()).count();
        assert!(
            size <= MANAGED_POLICY_MAX_CHARS,
            "{file}: {size} characters: more than a managed policy holds"
        );
        assert_eq!(policy_file(file)["Version"], "2012-10-17", "{file}");
    }
    let explained = std::fs::read_to_string(repo().join("docs/iam-policy.md")).unwrap();
    let mut sids = BTreeSet::new();
    for statement in statements(&policy) {
        let sid = statement["Sid"]
            .as_str()
            .expect("every statement has a Sid");
        assert!(sids.insert(sid), "Sid {sid} twice");
        assert_eq!(statement["Effect"], "Allow", "{sid}: only Allow statements");
        for key in ["NotAction", "NotResource", "Principal"] {
            assert!(statement.get(key).is_none(), "{sid}: no {key}");
        }
        for action in strings(&statement["Action"]) {
            assert!(
                is_action(&action),
                "{sid}: {action} (no wildcards: every action is named)"
            );
        }
        assert!(
            !strings(&statement["Resource"]).is_empty(),
            "{sid}: has a Resource"
        );
        // IAM and SSM parameter statements are never on every resource.
        let actions = strings(&statement["Action"]);
        // DescribeParameters lists names only and has no resource-level
        // permission: it can only be on *.
        let scoped = actions.iter().any(|a| {
            (a.starts_with("iam:") && a != "iam:SimulatePrincipalPolicy")
                || (a.contains("Parameter") && a != "ssm:DescribeParameters")
                || a.starts_with("route53:")
        });
        if scoped {
            assert!(
                !strings(&statement["Resource"]).contains(&"*".to_string()),
                "{sid}: scoped to glbox's resources, not *"
            );
        }
        assert!(
            explained.contains(&format!("`{sid}`")),
            "docs/iam-policy.md explains statement `{sid}`"
        );
    }
    for (action, _) in EXCEPTIONS {
        assert!(
            explained.contains(&format!("`{action}`")),
            "docs/iam-policy.md explains the exception `{action}`"
        );
    }
}

#[test]
fn the_policy_refuses_what_glbox_does_not_own() {
    let policy = policy();
    let foreign_instance = ec2_arn("instance", "i-0fedcba9876543210");
    let other_owner = [(MANAGED_BY_TAG, "terraform")];
    let refused = [
        // EC2 resources glbox did not create (no tag, or another owner's).
        auth("ec2:TerminateInstances", &foreign_instance, &[]),
        auth("ec2:TerminateInstances", &foreign_instance, &other_owner),
        auth("ec2:StopInstances", &foreign_instance, &[]),
        auth("ec2:ModifyInstanceAttribute", &foreign_instance, &[]),
        auth(
            "ec2:DeleteVolume",
            &ec2_arn("volume", "vol-0fedcba9876543210"),
            &[],
        ),
        auth(
            "ec2:AuthorizeSecurityGroupIngress",
            &ec2_arn("security-group", "sg-0fedcba9876543210"),
            &[],
        ),
        auth(
            "ec2:DeleteSecurityGroup",
            &ec2_arn("security-group", "sg-0fedcba9876543210"),
            &[],
        ),
        auth(
            "ec2:ReleaseAddress",
            &ec2_arn("elastic-ip", "eipalloc-0fedcba9876543210"),
            &[],
        ),
        auth("ec2:DeleteKeyPair", &ec2_arn("key-pair", "prod"), &[]),
        // Tagging a foreign resource as glbox's, to take it over.
        auth("ec2:CreateTags", &foreign_instance, &[]),
        auth(
            "ec2:CreateTags",
            &foreign_instance,
            &[("ec2:CreateAction", "CreateTags")],
        ),
        // Run Command on instances glbox does not own, or another document.
        auth(
            "ssm:SendCommand",
            &foreign_instance,
            &[("ssm:resourceTag/glbox:managed-by", "other")],
        ),
        auth(
            "ssm:SendCommand",
            &format!("arn:aws:ssm:{REGION}::document/AWS-RunPowerShellScript"),
            &[],
        ),
        // IAM outside /glbox/.
        auth("iam:CreateRole", &iam_arn("role", "/", "Admin"), &[]),
        auth(
            "iam:PutRolePolicy",
            &iam_arn("role", "/ops/", "deploy"),
            &[],
        ),
        auth("iam:CreateUser", &iam_arn("user", "/", "mallory"), &[]),
        auth("iam:CreateAccessKey", &iam_arn("user", "/", "alice"), &[]),
        auth("iam:PutUserPolicy", &iam_arn("user", "/", "alice"), &[]),
        auth(
            "iam:DeleteInstanceProfile",
            &iam_arn("instance-profile", "/", "web"),
            &[],
        ),
        // Passing roles: only glbox's, only to EC2.
        auth(
            "iam:PassRole",
            &iam_arn("role", "/", "Admin"),
            &[("iam:PassedToService", "ec2.amazonaws.com")],
        ),
        auth(
            "iam:PassRole",
            &role_arn(),
            &[("iam:PassedToService", "lambda.amazonaws.com")],
        ),
        // Attaching any managed policy (glbox attaches none).
        auth(
            "iam:AttachRolePolicy",
            &role_arn(),
            &[("iam:PolicyARN", ADMIN_POLICY)],
        ),
        auth(
            "iam:AttachRolePolicy",
            &role_arn(),
            &[
                ("iam:PolicyARN", ADMIN_POLICY),
                ("iam:PermissionsBoundary", &boundary_arn()),
            ],
        ),
        auth(
            "iam:AttachUserPolicy",
            &smtp_user_arn(),
            &[("iam:PolicyARN", ADMIN_POLICY)],
        ),
        // Roles and users without glbox's boundary, or with another one
        // (AdministratorAccess as the boundary bounds nothing), and
        // writing the policies of a role or user that lacks it.
        auth("iam:CreateRole", &role_arn(), &[]),
        auth(
            "iam:CreateRole",
            &role_arn(),
            &[("iam:PermissionsBoundary", ADMIN_POLICY)],
        ),
        auth(
            "iam:CreateRole",
            &role_arn(),
            &[(
                "iam:PermissionsBoundary",
                &glbox::resources::iam::boundary_arn("aws", "210987654321"),
            )],
        ),
        auth("iam:CreateUser", &smtp_user_arn(), &[]),
        auth(
            "iam:CreateUser",
            &smtp_user_arn(),
            &[("iam:PermissionsBoundary", ADMIN_POLICY)],
        ),
        auth("iam:PutRolePolicy", &role_arn(), &[]),
        auth("iam:PutUserPolicy", &smtp_user_arn(), &[]),
        auth(
            "iam:PutRolePermissionsBoundary",
            &role_arn(),
            &[("iam:PermissionsBoundary", ADMIN_POLICY)],
        ),
        // Taking the boundary off, or changing what it allows.
        auth("iam:DeleteRolePermissionsBoundary", &role_arn(), &[]),
        auth("iam:DeleteUserPermissionsBoundary", &smtp_user_arn(), &[]),
        auth("iam:CreatePolicyVersion", &boundary_arn(), &[]),
        auth("iam:SetDefaultPolicyVersion", &boundary_arn(), &[]),
        auth("iam:DeletePolicyVersion", &boundary_arn(), &[]),
        auth("iam:DeletePolicy", &boundary_arn(), &[]),
        // Another policy under /glbox/ (to use as a wider boundary).
        auth(
            "iam:CreatePolicy",
            &format!("arn:aws:iam::{ACCOUNT}:policy/glbox/wide-open"),
            &[],
        ),
        // Volumes from snapshots glbox does not own.
        auth(
            "ec2:CreateVolume",
            &format!("arn:aws:ec2:{REGION}::snapshot/snap-0fedcba9876543210"),
            &[],
        ),
        auth(
            "ec2:CreateVolume",
            &format!("arn:aws:ec2:{REGION}::snapshot/snap-0fedcba9876543210"),
            &other_owner,
        ),
        // Instances in someone else's security group, with another key
        // pair, or from an image of an owner glbox does not resolve.
        auth(
            "ec2:RunInstances",
            &ec2_arn("security-group", "sg-0fedcba9876543210"),
            &[],
        ),
        auth("ec2:RunInstances", &ec2_arn("key-pair", "prod"), &[]),
        auth(
            "ec2:RunInstances",
            &format!("arn:aws:ec2:{REGION}::image/ami-0fedcba9876543210"),
            &[("ec2:Owner", "210987654321")],
        ),
        auth(
            "ec2:RunInstances",
            &format!("arn:aws:ec2:{REGION}::image/ami-0fedcba9876543210"),
            &[("ec2:Owner", "aws-marketplace")],
        ),
        auth(
            "ec2:RunInstances",
            &format!("arn:aws:ec2:{REGION}::image/ami-0fedcba9876543210"),
            &[],
        ),
        // Parameters outside /glbox/, and writing AWS's public ones.
        auth(
            "ssm:GetParameter",
            &parameter_arn("/prod/database-password"),
            &[],
        ),
        auth("ssm:GetParametersByPath", &parameter_arn("/prod/"), &[]),
        auth(
            "ssm:PutParameter",
            &public_parameter_arn("/aws/service/ami-amazon-linux-latest/x"),
            &[],
        ),
        // Actions glbox never calls.
        auth("iam:CreatePolicy", "*", &[]),
        auth("iam:CreateLoginProfile", &smtp_user_arn(), &[]),
        auth("ec2:DeleteSnapshot", "*", &[]),
        auth("sts:AssumeRole", &role_arn(), &[]),
        auth("ses:SendRawEmail", "*", &[]),
    ];
    let wrongly_allowed: Vec<String> = refused
        .iter()
        .filter(|r| allows(&policy, r))
        .map(|r| format!("{r:?}"))
        .collect();
    assert!(
        wrongly_allowed.is_empty(),
        "docs/iam-policy.json allows:\n{}",
        wrongly_allowed.join("\n")
    );
}

#[test]
fn the_evaluator_matches_like_iam() {
    assert!(glob(
        "arn:aws:iam::*:role/glbox/*",
        "arn:aws:iam::1:role/glbox/x",
        false
    ));
    assert!(!glob(
        "arn:aws:iam::*:role/glbox/*",
        "arn:aws:iam::1:role/x",
        false
    ));
    assert!(glob(
        "arn:aws:ec2:*:*:*/*",
        "arn:aws:ec2:us-east-1::snapshot/s",
        false
    ));
    assert!(glob("ec2:describe*", "ec2:DescribeVpcs", true));
    assert!(!glob("ec2:Describe?", "ec2:Describe", false));
    assert!(glob("*", "anything at all", false));
    assert!(!glob("a*b", "acbd", false));
}

// ---------------------------------------------------------------------------
// The emulator with IAM enforcement.

/// Requests moto serves before it enforces IAM: exactly the three that make
/// the admin user (CreateUser, PutUserPolicy, CreateAccessKey).
const UNAUTHENTICATED_REQUESTS: u32 = 3;

/// Runs tests/emulator/moto_launcher.py (its directory is the argument)
/// with two more extensions for IAM enforcement:
/// - moto checks SigV4 signatures against a body it re-encodes from the
///   parsed form (spaces as `+` where the Rust SDK sends `%20`) and, for
///   REST requests without a body (Route 53's GETs), against the request
///   headers as if they were the body: every such request from glbox would
///   be refused as `SignatureDoesNotMatch`. The check is skipped; the user
///   is still identified by its access key id (unknown keys are refused),
///   which is all the policy's enforcement needs.
/// - moto answers a refusal in one XML shape for every service, which no
///   SDK parser reads (the error then has no code). Answer like AWS: EC2's
///   `UnauthorizedOperation`, `AccessDeniedException` for JSON services
///   (SSM), `AccessDenied` for the XML ones (IAM, SES, Route 53).
const ENFORCING_LAUNCHER: &str = r#"
import json
import sys

sys.path.insert(0, sys.argv[1])
import moto_launcher
from moto.iam import access_control
from werkzeug.exceptions import HTTPException


class Refused(HTTPException):
    code = 403

    def __init__(self, body):
        super().__init__()
        self.description = body


def refuse(self):
    message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
    if self._service == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                '<Code>UnauthorizedOperation</Code><Message>You are not authorized to perform '
                f'this operation. {message}</Message></Error></Errors>'
                '<RequestID>glbox-test</RequestID></Response>')
    elif self._service in ("ssm", "servicequotas"):
        body = json.dumps({"__type": "AccessDeniedException", "message": message})
    else:
        body = ('<?xml version="1.0" encoding="UTF-8"?><ErrorResponse><Error><Type>Sender</Type>'
                f'<Code>AccessDenied</Code><Message>{message}</Message></Error>'
                '<RequestId>glbox-test</RequestId></ErrorResponse>')
    raise Refused(body)


access_control.IAMRequest._raise_access_denied = refuse
access_control.IAMRequestBase.check_signature = lambda self: None
moto_launcher.main()
"#;

/// One emulator process (the launcher, as in `common::Emulator::start`)
/// started with IAM enforcement.
struct Emulator {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl Emulator {
    fn start_enforcing() -> Emulator {
        let mut command = Command::new(crate::common::harness_python());
        command
            .arg("-c")
            .arg(ENFORCING_LAUNCHER)
            .arg(repo().join("tests/emulator"))
            .env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                UNAUTHENTICATED_REQUESTS.to_string(),
            )
            .stderr(Stdio::null());
        crate::common::account_quotas(&mut command);
        let (child, stdin, port) = crate::common::start_port_printer(command, "moto launcher");
        Emulator {
            child,
            stdin: Some(stdin),
            port,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The control API (`/moto-api/`), which IAM enforcement does not cover.
    fn control(&self, method: &str, path: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the emulator");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}");
        body.to_string()
    }

    fn start_recording(&self) {
        self.control("POST", "/moto-api/recorder/reset-recording");
        self.control("POST", "/moto-api/recorder/start-recording");
    }

    /// Stops recording; the actions (`svc:Action`) of the requests signed
    /// with access key `key_id`, with how often each was sent.
    fn recorded_actions_of(&self, key_id: &str) -> BTreeMap<String, usize> {
        self.control("POST", "/moto-api/recorder/stop-recording");
        let log = self.control("GET", "/moto-api/recorder/download-recording");
        let mut actions = BTreeMap::new();
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).expect("a recorder line is JSON");
            let authorization = record["headers"]["Authorization"]
                .as_str()
                .unwrap_or_default();
            // Credential=<key id>/<date>/<region>/<service>/aws4_request
            let Some(scope) = authorization
                .split("Credential=")
                .nth(1)
                .and_then(|s| s.split(',').next())
            else {
                continue;
            };
            let parts: Vec<&str> = scope.split('/').collect();
            if parts[0] != key_id {
                continue;
            }
            let service = parts[3];
            *actions
                .entry(format!("{service}:{}", request_operation(&record)))
                .or_insert(0) += 1;
        }
        actions
    }
}

/// The operation of a recorded request: `X-Amz-Target` (JSON protocols),
/// the `Action` form field (query protocols), or Route 53's REST path.
fn request_operation(record: &Value) -> String {
    if let Some(target) = record["headers"]["X-Amz-Target"].as_str() {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let body = record["body"].as_str().unwrap_or_default();
    let body = if record["body_encoded"].as_bool() == Some(true) {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap_or_default()
    } else {
        body.to_string()
    };
    if let Some(action) = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_string();
    }
    let method = record["method"].as_str().unwrap_or_default();
    let url = record["url"].as_str().unwrap_or_default();
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    crate::common::rest_operation(method, path).unwrap_or_else(|| format!("{method} {path}"))
}

impl Drop for Emulator {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
struct Keys {
    id: String,
    secret: String,
}

impl Keys {
    fn credentials(&self) -> Credentials {
        Credentials::new(&self.id, &self.secret, None, None, "iam-policy-test")
    }
}

/// An SDK client of one service, pointed at the emulator, signing with `keys`.
macro_rules! client {
    ($sdk:ident, $emulator:expr, $keys:expr) => {
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider($keys.credentials())
                .endpoint_url($emulator.endpoint())
                .build(),
        )
    };
}

/// The error code of a refused request. moto answers a request with
/// unknown keys in one XML shape for every service
/// (`<ErrorResponse><Errors><Error>`), which the SDKs' parsers do not read:
/// fall back to the raw body.
fn refusal_code<E: ProvideErrorMetadata>(err: &aws_sdk_iam::error::SdkError<E>) -> Option<String> {
    if let Some(code) = err.code() {
        return Some(code.to_string());
    }
    let body = std::str::from_utf8(err.raw_response()?.body().bytes()?).ok()?;
    Some(
        body.split("<Code>")
            .nth(1)?
            .split("</Code>")
            .next()?
            .to_string(),
    )
}

/// Makes the admin user with the emulator's first (unauthenticated)
/// requests, and returns its keys; every later request needs valid keys.
async fn bootstrap_admin(emulator: &Emulator) -> Keys {
    let anyone = Keys {
        id: "testing".into(),
        secret: "testing".into(),
    };
    let iam = client!(aws_sdk_iam, emulator, anyone);
    let admin = "glbox-test-admin";
    iam.create_user().user_name(admin).send().await.unwrap();
    iam.put_user_policy()
        .user_name(admin)
        .policy_name("everything")
        .policy_document(
            json!({"Version": "2012-10-17",
                   "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(admin)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    // From here on, unknown keys are refused.
    let refused = iam.list_users().send().await.unwrap_err();
    assert_eq!(
        refusal_code(&refused).as_deref(),
        Some("InvalidClientTokenId"),
        "the emulator enforces IAM after {UNAUTHENTICATED_REQUESTS} requests: {refused:?}"
    );
    Keys {
        id: key.access_key_id,
        secret: key.secret_access_key,
    }
}

/// The policy as the emulator can enforce it: every Resource `*` (moto
/// authorizes non-IAM requests, and IAM requests for resources that do not
/// exist yet, against `*`). Actions and conditions are kept (moto holds
/// conditions true against its empty request context).
fn moto_view(policy: &Value) -> Value {
    let mut view = policy.clone();
    for statement in view["Statement"].as_array_mut().unwrap() {
        statement["Resource"] = json!("*");
    }
    view
}

/// The policy without `action`: statements left with no action are dropped.
fn without(policy: &Value, action: &str) -> Value {
    let mut reduced = policy.clone();
    let kept: Vec<Value> = statements(policy)
        .iter()
        .filter_map(|s| {
            let actions: Vec<String> = strings(&s["Action"])
                .into_iter()
                .filter(|a| a != action)
                .collect();
            (!actions.is_empty()).then(|| {
                let mut s = s.clone();
                s["Action"] = json!(actions);
                s
            })
        })
        .collect();
    assert!(
        policy_actions(policy).contains(action),
        "{action} is not in the policy"
    );
    reduced["Statement"] = json!(kept);
    reduced
}

/// An IAM user holding exactly `policy` (its moto view) as a managed
/// policy, the way an administrator would grant it; returns its keys.
async fn operator(emulator: &Emulator, admin: &Keys, user: &str, policy: &Value) -> Keys {
    let iam = client!(aws_sdk_iam, emulator, admin);
    iam.create_user().user_name(user).send().await.unwrap();
    let created = iam
        .create_policy()
        .policy_name(user)
        .policy_document(moto_view(policy).to_string())
        .send()
        .await
        .unwrap();
    iam.attach_user_policy()
        .user_name(user)
        .policy_arn(created.policy().unwrap().arn().unwrap())
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    Keys {
        id: key.access_key_id,
        secret: key.secret_access_key,
    }
}

/// A healthy box for every health check sent over SSM (see
/// tests/it/ssm_bootstrap.rs); set by the admin.
async fn behave_healthy(emulator: &Emulator, admin: &Keys) {
    let behaviour = json!({"invocations": [{"contains": "# glbox verify:", "status": "Success",
        "stdout": crate::common::healthy_verify_output("18.6.0")}]});
    client!(aws_sdk_ssm, emulator, admin)
        .put_parameter()
        .name("/glbox-test/behaviour")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .value(behaviour.to_string())
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// A Route 53 hosted zone for `domain`, made by the admin; its id.
async fn hosted_zone(emulator: &Emulator, admin: &Keys, domain: &str) -> String {
    let zone = client!(aws_sdk_route53, emulator, admin)
        .create_hosted_zone()
        .name(domain)
        .caller_reference(format!("iam-policy-{domain}"))
        .send()
        .await
        .unwrap();
    zone.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

/// The glbox binary in the workspace, as `common::glbox_with_env` runs it,
/// but signing with `keys`.
fn glbox(emulator: &Emulator, workspace: &Workspace, keys: &Keys, args: &[&str]) -> Run {
    crate::common::clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &emulator.endpoint())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &keys.id)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret)
        .stdin(Stdio::null())
        .output()
        .expect("run glbox")
        .into()
}

/// A full deployment (SSM bootstrap, health checks against a local server)
/// with email for `domain`, its records in Route 53 when `zone` is given.
fn full_config(name: &str, domain: &str, zone: Option<&str>, extra: &str) -> String {
    let zone = zone
        .map(|z| format!("route53_zone_id = \"{z}\"\n"))
        .unwrap_or_default();
    format!(
        "name = \"{name}\"\n{extra}{}\n[email]\nenabled = true\ndomain = \"{domain}\"\n{zone}",
        crate::common::verify_section("")
    )
}

#[tokio::test]
async fn glbox_runs_its_whole_life_cycle_with_exactly_the_policy() {
    let emulator = Emulator::start_enforcing();
    let admin = bootstrap_admin(&emulator).await;
    let policy = policy();

    // The real documents (not only their moto view) are valid policies.
    for (i, file) in POLICY_FILES.iter().enumerate() {
        client!(aws_sdk_iam, emulator, admin)
            .create_policy()
            .policy_name(format!("glbox-as-documented-{i}"))
            .policy_document(policy_file(file).to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{file} is not accepted as a managed policy: {e:?}"));
    }

    let keys = operator(&emulator, &admin, "glbox-operator", &policy).await;
    // The operator is held to the policy: anything else is refused.
    let refused = client!(aws_sdk_ec2, emulator, keys)
        .describe_vpcs()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal_code(&refused).as_deref(),
        Some("UnauthorizedOperation"),
        "{refused:?}"
    );
    let refused = client!(aws_sdk_iam, emulator, keys)
        .list_users()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal_code(&refused).as_deref(),
        Some("AccessDenied"),
        "{refused:?}"
    );

    let zone = hosted_zone(&emulator, &admin, "example.com").await;
    behave_healthy(&emulator, &admin).await;
    emulator.start_recording();

    let workspace = Workspace::new(&full_config(DEPLOYMENT, "example.com", Some(&zone), ""));
    let run = |args: &[&str]| {
        let run = glbox(&emulator, &workspace, &keys, args);
        assert_eq!(
            run.code, 0,
            "glbox {args:?} failed with the policy\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    };
    let up = run(&["up", "--yes"]);
    assert!(up.stdout.contains("GitLab is healthy."), "{}", up.stdout);
    run(&["up", "--yes"]);
    run(&["plan"]);
    run(&["status"]);
    run(&["status", "--show-password"]);
    run(&["verify"]);
    run(&["email", "dns"]);
    run(&["email", "rotate", "--yes"]);
    // In-place changes: the type (stop, modify, start) and a bigger volume.
    workspace.write_config(&full_config(
        DEPLOYMENT,
        "example.com",
        Some(&zone),
        "[instance]\ntype = \"c5.4xlarge\"\n[data_volume]\nsize_gib = 120\n",
    ));
    run(&["up", "--yes"]);

    // Drift that `up` repairs: IMDSv2 turned off, the instance profile
    // detached, the role's trust changed, and one HTTP rule less wanted.
    drift(&emulator, &admin).await;
    workspace.write_config(&full_config(
        DEPLOYMENT,
        "example.com",
        Some(&zone),
        "[instance]\ntype = \"c5.4xlarge\"\n[data_volume]\nsize_gib = 120\n[network]\nhttp_cidrs = [\"0.0.0.0/0\"]\n",
    ));
    run(&["up", "--yes"]);
    let doctor = glbox(&emulator, &workspace, &keys, &["doctor"]);
    for refusal in ["not allowed", "AWS refused"] {
        assert!(
            !doctor.stdout.contains(refusal) && !doctor.stderr.contains(refusal),
            "glbox doctor with the policy:\n{}\n{}",
            doctor.stdout,
            doctor.stderr
        );
    }

    // What glbox created lies inside the policy's resource scopes (which
    // the emulator cannot check): ARNs as the emulator handed them out.
    let iam = client!(aws_sdk_iam, emulator, admin);
    let names = names();
    let role = iam
        .get_role()
        .role_name(names.iam_name())
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let profile = iam
        .get_instance_profile()
        .instance_profile_name(names.iam_name())
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap()
        .arn;
    let smtp_user = iam
        .get_user()
        .user_name(format!("{}-smtp", names.iam_name()))
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .arn;
    let parameters = client!(aws_sdk_ssm, emulator, admin)
        .get_parameters_by_path()
        .path(names.parameter_prefix())
        .recursive(true)
        .send()
        .await
        .unwrap();
    // The role and the SMTP user carry the boundary; the box may read only
    // its own parameters.
    assert_box_reads_only_its_own(
        &effective_role_policy(&iam, &names.iam_name()).await,
        DEPLOYMENT,
        true,
    );
    let user_boundary = iam
        .get_user()
        .user_name(format!("{}-smtp", names.iam_name()))
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .permissions_boundary
        .and_then(|b| b.permissions_boundary_arn);
    assert_eq!(
        user_boundary,
        Some(boundary_arn()),
        "the SMTP user's boundary"
    );
    let mut created = vec![
        bounded("iam:PutRolePolicy", &role),
        pass_role_on(&role),
        auth("iam:AddRoleToInstanceProfile", &profile, &[]),
        bounded("iam:PutUserPolicy", &smtp_user),
        auth("iam:CreateAccessKey", &smtp_user, &[]),
        auth(
            "route53:ChangeResourceRecordSets",
            &format!("arn:aws:route53:::hostedzone/{zone}"),
            &[],
        ),
    ];
    assert!(parameters.parameters().len() >= 3, "{parameters:?}");
    for parameter in parameters.parameters() {
        created.push(auth("ssm:PutParameter", parameter.arn().unwrap(), &[]));
        created.push(auth("ssm:DeleteParameters", parameter.arn().unwrap(), &[]));
    }
    for request in &created {
        assert!(allows(&policy, request), "the policy refuses {request:?}");
    }

    run(&["down", "--yes", "--delete-data", "--delete-email-identity"]);

    // SSH mode: the key pair (imported at up, deleted at down).
    let ssh = Workspace::new(
        "name = \"sshbox\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"192.0.2.0/24\"]\n",
    );
    for args in [&["up", "--no-bootstrap", "--yes"][..], &["down", "--yes"]] {
        let run = glbox(&emulator, &ssh, &keys, args);
        assert_eq!(
            run.code, 0,
            "glbox {args:?} (SSH mode) failed with the policy\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
    }

    // A lab of two seats, from up to reap.
    let lab = Workspace::new(&format!(
        "[lab]\nname = \"class\"\nseats = 2\nexpires_in = \"1h\"\n{}",
        crate::common::verify_section("")
    ));
    let lab_run = |args: &[&str]| {
        let run = glbox(&emulator, &lab, &keys, args);
        assert_eq!(
            run.code, 0,
            "glbox {args:?} (lab) failed with the policy\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
    };
    lab_run(&["lab", "up", "--yes"]);
    lab_run(&["lab", "up", "--yes"]);
    // Each seat's box reads only its own password with the lab's one role.
    assert_seats_read_only_their_own(&emulator, &admin, "class", 2).await;
    for args in [
        &["lab", "status"][..],
        &["lab", "down", "--yes"],
        &["lab", "reap", "--yes"],
    ] {
        lab_run(args);
    }

    // Every request glbox sent is one the static test knows.
    let sent = emulator.recorded_actions_of(&keys.id);
    let known = called_actions().actions;
    let unknown: Vec<&String> = sent.keys().filter(|a| !known.contains_key(*a)).collect();
    assert!(
        unknown.is_empty(),
        "glbox sent requests no .ctx names: {unknown:?}"
    );
    assert!(sent.contains_key("ec2:RunInstances") && sent.contains_key("ec2:ImportKeyPair"));
    let unexercised: Vec<&String> = known.keys().filter(|a| !sent.contains_key(*a)).collect();
    eprintln!(
        "{} requests of {} distinct actions, all allowed by the policy; of the {} actions glbox calls, not exercised here: {unexercised:?}",
        sent.values().sum::<usize>(),
        sent.len(),
        known.len()
    );
}

/// Changes the deployment behind glbox's back, as the admin: IMDSv2
/// optional, no instance profile, the role trusting Lambda. (A foreign
/// profile swapped in with ReplaceIamInstanceProfileAssociation would not
/// do: the emulator's DescribeInstances keeps showing the old one.)
async fn drift(emulator: &Emulator, admin: &Keys) {
    let ec2 = client!(aws_sdk_ec2, emulator, admin);
    let iam = client!(aws_sdk_iam, emulator, admin);
    let instance = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:glbox:deployment")
                .values(DEPLOYMENT)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let association = ec2
        .describe_iam_instance_profile_associations()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .iam_instance_profile_associations()
        .first()
        .and_then(|a| a.association_id())
        .map(str::to_string);
    ec2.modify_instance_metadata_options()
        .instance_id(&instance)
        .http_tokens(aws_sdk_ec2::types::HttpTokensState::Optional)
        .send()
        .await
        .unwrap();
    ec2.disassociate_iam_instance_profile()
        .association_id(association.expect("the instance has glbox's profile"))
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name(names().iam_name())
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
}

fn pass_role_on(role: &str) -> Auth {
    auth(
        "iam:PassRole",
        role,
        &[("iam:PassedToService", "ec2.amazonaws.com")],
    )
}

/// How a case with one permission missing runs.
enum Case {
    /// `up --yes` of a fresh deployment fails.
    Up,
    /// Same, with the domain's records in a Route 53 zone.
    UpWithZone,
    /// `up --no-bootstrap` with the whole policy, then `down` fails.
    Down,
}

#[tokio::test]
async fn a_missing_permission_is_named_with_the_fix() {
    let emulator = Emulator::start_enforcing();
    let admin = bootstrap_admin(&emulator).await;
    behave_healthy(&emulator, &admin).await;
    let policy = policy();
    let whole = operator(&emulator, &admin, "glbox-whole", &policy).await;
    let cases = [
        ("iam:CreateRole", Case::Up),
        ("ec2:RunInstances", Case::Up),
        ("ssm:PutParameter", Case::Up),
        ("ses:VerifyDomainIdentity", Case::Up),
        ("ssm:SendCommand", Case::Up),
        ("route53:ChangeResourceRecordSets", Case::UpWithZone),
        ("ec2:TerminateInstances", Case::Down),
    ];
    let mut failures = Vec::new();
    for (i, (action, case)) in cases.iter().enumerate() {
        let name = format!("miss{i}");
        let domain = format!("{name}.example.com");
        let keys = operator(
            &emulator,
            &admin,
            &format!("glbox-{name}"),
            &without(&policy, action),
        )
        .await;
        let zone = match case {
            Case::UpWithZone => Some(hosted_zone(&emulator, &admin, &domain).await),
            _ => None,
        };
        let workspace = Workspace::new(&full_config(&name, &domain, zone.as_deref(), ""));
        let run = match case {
            Case::Up | Case::UpWithZone => glbox(&emulator, &workspace, &keys, &["up", "--yes"]),
            Case::Down => {
                glbox(
                    &emulator,
                    &workspace,
                    &whole,
                    &["up", "--no-bootstrap", "--yes"],
                )
                .assert_ok();
                glbox(&emulator, &workspace, &keys, &["down", "--yes"])
            }
        };
        let named = format!("AWS refused {action}: ");
        let fix = format!("not allowed to call {action}");
        if run.code == 0 || !run.stderr.contains(&named) || !run.stderr.contains(&fix) {
            failures.push(format!(
                "without {action}: exit {}, stderr:\n{}",
                run.code, run.stderr
            ));
        } else {
            eprintln!(
                "without {action}: exit {}, {}",
                run.code,
                run.stderr
                    .lines()
                    .find(|l| l.contains(&named))
                    .unwrap_or_default()
                    .trim()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "glbox did not name the missing permission:\n{}",
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// What a glbox box may do: the instance role's whole effective policy,
// read through the IAM API, with the AWS managed policies it holds pinned
// as fixtures in tests/data/.

/// A role's or user's permissions: allowed when one of its identity
/// policies allows the request and its permissions boundary, if it has
/// one, allows it too.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html>
#[derive(Debug)]
struct Effective {
    identity: Vec<(String, Value)>,
    boundary: Option<Value>,
}

impl Effective {
    fn allows(&self, request: &Auth) -> bool {
        self.identity.iter().any(|(_, p)| allows(p, request))
            && self.boundary.as_ref().is_none_or(|b| allows(b, request))
    }
}

/// An AWS managed policy's document, pinned in tests/data/<name>.json.
fn managed_fixture(arn: &str) -> Value {
    let name = arn.rsplit('/').next().unwrap();
    let path = repo().join(format!("tests/data/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{arn} is attached but not pinned: add its document as {}",
            path.display()
        )
    });
    let fixture: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture["Arn"], arn);
    fixture["Document"].clone()
}

/// The evaluator knows only Allow statements: a Deny would be missed.
fn only_allows(name: &str, document: &Value) -> Value {
    for statement in statements(document) {
        assert_eq!(statement["Effect"], "Allow", "{name}: {statement}");
        assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
    }
    document.clone()
}

async fn managed_document(iam: &aws_sdk_iam::Client, arn: &str) -> Value {
    if arn.starts_with("arn:aws:iam::aws:policy/") {
        return managed_fixture(arn);
    }
    let policy = iam.get_policy().policy_arn(arn).send().await.unwrap();
    let version = policy.policy().unwrap().default_version_id().unwrap();
    let document = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .unwrap()
        .policy_version
        .unwrap()
        .document
        .unwrap();
    glbox::aws::iam::parse_policy(&document).expect("a JSON policy")
}

async fn effective_role_policy(iam: &aws_sdk_iam::Client, role: &str) -> Effective {
    let found = iam.get_role().role_name(role).send().await.unwrap();
    let boundary = found
        .role()
        .unwrap()
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn())
        .map(str::to_string);
    let mut identity = Vec::new();
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    for policy in attached.attached_policies() {
        let arn = policy.policy_arn().unwrap();
        identity.push((
            arn.to_string(),
            only_allows(arn, &managed_document(iam, arn).await),
        ));
    }
    let inline = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    for name in inline.policy_names() {
        let document = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .unwrap();
        let document = glbox::aws::iam::parse_policy(document.policy_document()).unwrap();
        identity.push((name.clone(), only_allows(name, &document)));
    }
    let boundary = match boundary {
        Some(arn) => Some(only_allows(&arn, &managed_document(iam, &arn).await)),
        None => None,
    };
    Effective { identity, boundary }
}

/// What any process on the box of deployment `name` may do with the
/// instance's credentials: read its own parameters, run the SSM agent (in
/// SSM mode only), and nothing else.
fn assert_box_reads_only_its_own(effective: &Effective, name: &str, ssm_mode: bool) {
    let own = glbox::names::Names::new(name, REGION).parameter_prefix();
    let read = |parameter: &str| auth("ssm:GetParameter", &parameter_arn(parameter), &[]);
    let allowed = [
        read(&format!("{own}root-password")),
        read(&format!("{own}smtp-password")),
        auth(
            "ssm:GetParameters",
            &parameter_arn(&format!("{own}root-password")),
            &[],
        ),
    ];
    let seat = glbox::names::Names::seat("class", 7, REGION, "2026-11-27T18:00:00Z");
    let refused = [
        // Another deployment's secrets.
        read("/glbox/other/root-password"),
        read("/glbox/other/smtp-password"),
        auth(
            "ssm:GetParameters",
            &parameter_arn("/glbox/other/root-password"),
            &[],
        ),
        auth("ssm:GetParametersByPath", &parameter_arn("/glbox/"), &[]),
        // A lab seat's password (their names are predictable).
        read(&format!("{}root-password", seat.parameter_prefix())),
        // Anyone else's.
        read("/prod/database-password"),
        auth("ssm:GetParameters", &parameter_arn("/team-a/api-key"), &[]),
        // The same deployment in another region is another deployment.
        auth(
            "ssm:GetParameter",
            &format!("arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter{own}root-password"),
            &[],
        ),
        // Writing, and anything beyond reading.
        auth(
            "ssm:PutParameter",
            &parameter_arn(&format!("{own}root-password")),
            &[],
        ),
        auth("iam:CreateUser", &iam_arn("user", "/", "mallory"), &[]),
        auth("ec2:TerminateInstances", "*", &[]),
        auth("ssm:SendCommand", "*", &[]),
    ];
    let agent = glbox::resources::iam::SSM_AGENT_ACTIONS
        .iter()
        .map(|action| auth(action, "*", &[]));
    let mut wrong: Vec<String> = allowed
        .iter()
        .filter(|r| !effective.allows(r))
        .map(|r| format!("refuses {r:?}"))
        .collect();
    wrong.extend(
        refused
            .iter()
            .filter(|r| effective.allows(r))
            .map(|r| format!("allows {r:?}")),
    );
    for request in agent {
        if effective.allows(&request) != ssm_mode {
            wrong.push(format!("SSM mode {ssm_mode}, but {request:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the instance role of {name}:\n{}\n{effective:#?}",
        wrong.join("\n")
    );
}

/// What the box of each seat of `lab` may read with the lab's one role,
/// read through the IAM API, against the `glbox:instance` tags its
/// passwords carry (read through the SSM API, as IAM reads them for
/// `ssm:resourceTag/glbox:instance`) and the ARNs of the seats' instances
/// (from EC2; requests signed with an instance's role credentials carry
/// it as `ec2:SourceInstanceARN`): its own password, not another seat's,
/// nothing without an instance's credentials. The emulator ignores
/// conditions, so this static evaluation is the proof.
async fn assert_seats_read_only_their_own(
    emulator: &Emulator,
    admin: &Keys,
    lab: &str,
    seats: u16,
) {
    let ec2 = client!(aws_sdk_ec2, emulator, admin);
    let ssm = client!(aws_sdk_ssm, emulator, admin);
    let iam = client!(aws_sdk_iam, emulator, admin);
    let role = glbox::names::Names::lab(lab, REGION, "").iam_name();
    let effective = effective_role_policy(&iam, &role).await;
    let found = ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:glbox:lab")
                .values(lab)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut instance_of = BTreeMap::new();
    for instance in found.reservations().iter().flat_map(|r| r.instances()) {
        let seat: u16 = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some("glbox:seat"))
            .and_then(|t| t.value())
            .unwrap()
            .parse()
            .unwrap();
        instance_of.insert(seat, ec2_arn("instance", instance.instance_id().unwrap()));
    }
    assert_eq!(instance_of.len(), usize::from(seats), "{instance_of:?}");
    let password = |seat: u16| {
        format!(
            "{}root-password",
            glbox::names::Names::seat(lab, seat, REGION, "").parameter_prefix()
        )
    };
    let mut tag_of = BTreeMap::new();
    for seat in 1..=seats {
        let listed = ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(password(seat))
            .send()
            .await
            .unwrap();
        let tag = listed
            .tag_list()
            .iter()
            .find(|t| t.key() == glbox::names::TAG_INSTANCE)
            .map(|t| t.value().to_string())
            .unwrap_or_else(|| panic!("{} has no glbox:instance tag", password(seat)));
        tag_of.insert(seat, tag);
    }
    const TAG_KEY: &str = "ssm:resourceTag/glbox:instance";
    const SOURCE: &str = "ec2:SourceInstanceARN";
    // `from` reads seat `of`'s password.
    let read = |action: &str, from: Option<u16>, of: u16| {
        let mut context = vec![(TAG_KEY, tag_of[&of].as_str())];
        if let Some(from) = from {
            context.push((SOURCE, instance_of[&from].as_str()));
        }
        auth(action, &parameter_arn(&password(of)), &context)
    };
    let mut wrong = Vec::new();
    for seat in 1..=seats {
        for action in ["ssm:GetParameter", "ssm:GetParameters"] {
            if !effective.allows(&read(action, Some(seat), seat)) {
                wrong.push(format!("s{seat:02} cannot {action} its own password"));
            }
            // The same credentials used off the box carry no source instance.
            if effective.allows(&read(action, None, seat)) {
                wrong.push(format!(
                    "{action} of s{seat:02}'s password without an instance"
                ));
            }
            for other in (1..=seats).filter(|o| *o != seat) {
                if effective.allows(&read(action, Some(seat), other)) {
                    wrong.push(format!("s{seat:02} may {action} s{other:02}'s password"));
                }
            }
        }
        // An untagged parameter, and the lab's path, name no instance.
        let source = [(SOURCE, instance_of[&seat].as_str())];
        let untagged = auth(
            "ssm:GetParameter",
            &parameter_arn(&format!("/glbox-lab/{lab}/s{seat:02}/other")),
            &source,
        );
        let by_path = auth(
            "ssm:GetParametersByPath",
            &parameter_arn(&format!("/glbox-lab/{lab}/")),
            &source,
        );
        for request in [untagged, by_path] {
            if effective.allows(&request) {
                wrong.push(format!("s{seat:02} may {request:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the lab role {role}:\n{}\n{effective:#?}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_role_from_an_older_glbox_is_converged_to_its_own_parameters() {
    let emulator = crate::common::Emulator::start();
    let iam = emulator.iam();
    let workspace = Workspace::new(&format!("name = \"{DEPLOYMENT}\"\n"));
    crate::common::glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let role = names().iam_name();
    assert_box_reads_only_its_own(&effective_role_policy(&iam, &role).await, DEPLOYMENT, true);

    // The role as an older glbox left it (the managed policy, no
    // boundary, no agent policy), and what someone added to it.
    iam.delete_role_permissions_boundary()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    iam.delete_role_policy()
        .role_name(&role)
        .policy_name(glbox::resources::iam::AGENT_POLICY_NAME)
        .send()
        .await
        .unwrap();
    for arn in [SSM_CORE_POLICY, ADMIN_POLICY] {
        iam.attach_role_policy()
            .role_name(&role)
            .policy_arn(arn)
            .send()
            .await
            .unwrap();
    }
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("added-by-hand")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "ssm:GetParametersByPath", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    // The evaluator sees the hole the managed policy alone opens.
    let old = effective_role_policy(&iam, &role).await;
    let core_only = Effective {
        identity: old
            .identity
            .iter()
            .filter(|(name, _)| name == SSM_CORE_POLICY)
            .cloned()
            .collect(),
        boundary: None,
    };
    assert!(core_only.allows(&auth(
        "ssm:GetParameter",
        &parameter_arn("/glbox/other/root-password"),
        &[]
    )));

    let plan = crate::common::glbox(
        &emulator,
        &workspace,
        &["plan", "--no-bootstrap", "--output", "json"],
    );
    plan.assert_ok();
    let plan = plan.json();
    let item = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "iam_role")
        .unwrap()
        .clone();
    assert_eq!(item["action"], "update", "{item}");
    let changes = item.to_string();
    for change in [
        "detach managed policy AmazonSSMManagedInstanceCore",
        "detach managed policy AdministratorAccess",
        "delete inline policy added-by-hand",
        "set permissions boundary glbox-permissions-boundary",
        "put inline policy glbox-ssm-agent",
    ] {
        assert!(changes.contains(change), "{change}: {item}");
    }

    crate::common::glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        attached.attached_policies().is_empty(),
        "{:?}",
        attached.attached_policies()
    );
    let inline = iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let mut inline = inline.policy_names().to_vec();
    inline.sort();
    assert_eq!(inline, ["glbox-own-parameters", "glbox-ssm-agent"]);
    let found = iam.get_role().role_name(&role).send().await.unwrap();
    assert_eq!(
        found
            .role()
            .unwrap()
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(boundary_arn().as_str())
    );
    assert_box_reads_only_its_own(&effective_role_policy(&iam, &role).await, DEPLOYMENT, true);

    emulator.start_recording();
    crate::common::glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let actions = emulator.recorded_actions();
    assert_eq!(
        crate::common::mutating(&actions),
        Vec::<String>::new(),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_ssh_mode_box_gets_no_ssm_agent_permissions() {
    let emulator = crate::common::Emulator::start();
    let workspace = Workspace::new(
        "name = \"sshbox\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"192.0.2.0/24\"]\n",
    );
    crate::common::glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let role = glbox::names::Names::new("sshbox", REGION).iam_name();
    let effective = effective_role_policy(&emulator.iam(), &role).await;
    assert_eq!(effective.identity.len(), 1, "{effective:#?}");
    assert_box_reads_only_its_own(&effective, "sshbox", false);
}

#[test]
fn the_boundary_allows_what_glbox_roles_and_users_need_and_no_more() {
    let boundary = glbox::resources::iam::boundary_document("aws");
    let own = names().parameter_prefix();
    let seat = glbox::names::Names::seat("class", 7, REGION, "2026-11-27T18:00:00Z");
    for request in [
        auth(
            "ssm:GetParameter",
            &parameter_arn(&format!("{own}root-password")),
            &[],
        ),
        auth(
            "ssm:GetParameter",
            &parameter_arn(&format!("{}root-password", seat.parameter_prefix())),
            &[],
        ),
        auth("ssmmessages:OpenDataChannel", "*", &[]),
        auth("ec2messages:GetMessages", "*", &[]),
        auth("ssm:UpdateInstanceInformation", "*", &[]),
        auth(
            "ses:SendRawEmail",
            &format!("arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com"),
            &[],
        ),
    ] {
        assert!(
            allows(&boundary, &request),
            "the boundary refuses {request:?}"
        );
    }
    // Whatever policy a holder of the operator policy writes on a glbox
    // role or user, it can do no more than that.
    let admin = Effective {
        identity: vec![("AdministratorAccess".into(), managed_fixture(ADMIN_POLICY))],
        boundary: Some(boundary),
    };
    for request in [
        auth("iam:CreateUser", &iam_arn("user", "/", "mallory"), &[]),
        auth("iam:AttachUserPolicy", &iam_arn("user", "/", "alice"), &[]),
        auth("iam:CreatePolicyVersion", &boundary_arn(), &[]),
        auth("sts:AssumeRole", &iam_arn("role", "/", "Admin"), &[]),
        auth("ec2:RunInstances", "*", &[]),
        auth(
            "ssm:PutParameter",
            &parameter_arn(&format!("{own}root-password")),
            &[],
        ),
        auth("ssm:SendCommand", "*", &[]),
        auth(
            "ssm:GetParameter",
            &parameter_arn("/prod/database-password"),
            &[],
        ),
        auth("s3:GetObject", "arn:aws:s3:::backups/*", &[]),
    ] {
        assert!(!admin.allows(&request), "the boundary allows {request:?}");
    }
}

/// What the box may do with its backup bucket through the instance role
/// (its inline policy within the boundary): write GitLab's archives and
/// the config copies, and read them back for a restore; nothing else of
/// that bucket, nothing of another.
#[test]
fn the_instance_role_may_only_write_and_read_back_its_own_backup_objects() {
    let bucket = names().backup_bucket(ACCOUNT);
    let object = |key: &str| format!("arn:aws:s3:::{bucket}/{key}");
    let role = Effective {
        identity: vec![(
            glbox::resources::iam::BACKUP_POLICY_NAME.into(),
            only_allows(
                "backup objects",
                &glbox::resources::iam::backup_objects_policy("aws", &bucket),
            ),
        )],
        boundary: Some(glbox::resources::iam::boundary_document("aws")),
    };
    let archive = object("1733100000_2026_12_02_18.6.0_gitlab_backup.tar");
    let secrets = object("config/1733100000_2026_12_02_18.6.0/gitlab-secrets.json");
    for allowed in [
        auth("s3:PutObject", &archive, &[]),
        auth("s3:AbortMultipartUpload", &archive, &[]),
        auth("s3:GetObject", &archive, &[]),
        auth("s3:PutObject", &secrets, &[]),
        auth(
            "s3:PutObject",
            &object("config/1733100000_2026_12_02_18.6.0/gitlab.rb"),
            &[],
        ),
        auth("s3:GetObject", &secrets, &[]),
    ] {
        assert!(role.allows(&allowed), "the role cannot {allowed:?}");
    }
    let other = glbox::names::Names::new("other", REGION).backup_bucket(ACCOUNT);
    for refused in [
        // Other keys of its bucket.
        auth("s3:PutObject", &object("index.html"), &[]),
        auth(
            "s3:PutObject",
            &object("1733100000_gitlab_backup.tar.sh"),
            &[],
        ),
        auth("s3:GetObject", &object("notes/secrets.txt"), &[]),
        // Another deployment's bucket, or anyone's.
        auth(
            "s3:PutObject",
            &format!("arn:aws:s3:::{other}/1733100000_gitlab_backup.tar"),
            &[],
        ),
        auth(
            "s3:GetObject",
            "arn:aws:s3:::backups/x_gitlab_backup.tar",
            &[],
        ),
        // Destroying or exposing the backups.
        auth("s3:DeleteObject", &archive, &[]),
        auth("s3:DeleteObjectVersion", &archive, &[]),
        auth("s3:PutBucketPolicy", &format!("arn:aws:s3:::{bucket}"), &[]),
        auth(
            "s3:PutLifecycleConfiguration",
            &format!("arn:aws:s3:::{bucket}"),
            &[],
        ),
        auth("s3:ListBucket", &format!("arn:aws:s3:::{bucket}"), &[]),
    ] {
        assert!(!role.allows(&refused), "the role may {refused:?}");
    }
    // The boundary alone, whatever inline policy a role were given: no
    // deleting backups, no bucket settings, nothing outside glbox's buckets.
    let boundary = glbox::resources::iam::boundary_document("aws");
    assert!(allows(&boundary, &auth("s3:PutObject", &archive, &[])));
    assert!(allows(&boundary, &auth("ec2:CreateSnapshot", "*", &[])));
    for refused in [
        auth("s3:DeleteObject", &archive, &[]),
        auth("s3:PutBucketPolicy", &format!("arn:aws:s3:::{bucket}"), &[]),
        auth(
            "s3:PutObject",
            "arn:aws:s3:::backups/x_gitlab_backup.tar",
            &[],
        ),
        auth("dlm:CreateLifecyclePolicy", "*", &[]),
    ] {
        assert!(
            !allows(&boundary, &refused),
            "the boundary allows {refused:?}"
        );
    }
}
