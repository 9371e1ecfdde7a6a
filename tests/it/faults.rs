//! Reliability under faults: `glbox up` and `down` through a proxy that
//! injects throttling, 5xx answers, connection resets (before the request
//! reaches the emulator, and after it did the work, the answer lost) and
//! latency (`tests/emulator/fault_proxy.py`). The real binary talks to the
//! proxy; outcomes are checked through the AWS API straight at the emulator,
//! and the proxy's counts show that the faults really happened.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::{Emulator, Run, Workspace};
use aws_sdk_ec2::types::{Filter, Instance, Volume};
use serde_json::{json, Value};

/// The deployment of the tests that have an emulator of their own.
const NAME: &str = "trial";

/// The fault proxy, between glbox and one emulator; stopped when dropped
/// (its stdin closes).
struct FaultProxy {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
}

impl FaultProxy {
    /// Starts the proxy in front of `emulator` with `config` (see the
    /// proxy's docstring: `{"seed": N, "rules": [...]}`).
    fn start(emulator: &Emulator, config: &Value) -> FaultProxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/fault_proxy.py");
        let mut command = Command::new(crate::common::harness_python());
        command
            .arg(script)
            .arg("--upstream")
            .arg(emulator.port.to_string())
            .arg("--config-json")
            .arg(config.to_string())
            .stderr(Stdio::inherit());
        let (child, stdin, port) = crate::common::start_port_printer(command, "fault proxy");
        FaultProxy {
            child,
            stdin: Some(stdin),
            port,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A raw HTTP/1.0 request to the proxy's control API; its JSON answer.
    fn control(&self, method: &str, path: &str, body: &str) -> Value {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the fault proxy");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.contains(" 200 "), "{method} {path}: {head}\n{body}");
        serde_json::from_str(body).expect("the proxy answers JSON")
    }

    /// Replaces the fault rules (the injection caps start again).
    fn configure(&self, config: &Value) {
        self.control("POST", "/fault-proxy/config", &config.to_string());
    }

    /// What the proxy saw and injected since it started (or the last reset).
    fn stats(&self) -> Stats {
        Stats(self.control("GET", "/fault-proxy/stats", ""))
    }

    fn reset_stats(&self) {
        self.control("POST", "/fault-proxy/stats/reset", "");
    }
}

impl Drop for FaultProxy {
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

/// The proxy's counts (`GET /fault-proxy/stats`).
struct Stats(Value);

impl Stats {
    /// AWS requests glbox sent (retries included).
    fn requests(&self) -> u64 {
        self.0["requests"].as_u64().unwrap()
    }

    /// Injections of one fault.
    fn injected(&self, fault: &str) -> u64 {
        self.0["injected"][fault].as_u64().unwrap()
    }

    /// Requests of `action` that reached the emulator.
    fn forwarded(&self, action: &str) -> u64 {
        self.0["by_action"][action]["forwarded"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Injections of `fault` into `action`.
    fn injected_into(&self, action: &str, fault: &str) -> u64 {
        self.0["by_action"][action][fault].as_u64().unwrap_or(0)
    }

    /// One line for the test log: requests and injections.
    fn summary(&self) -> String {
        format!(
            "{} requests, {} forwarded, injected {}",
            self.requests(),
            self.0["forwarded"],
            self.0["injected"]
        )
    }
}

/// One rule of the proxy's configuration: `fault` at `rate` on every action.
fn everywhere(fault: &str, rate: f64) -> Value {
    json!({"fault": fault, "rate": rate, "actions": ["*"]})
}

/// Runs the glbox binary in the workspace with the proxy as its AWS
/// endpoint (the same clean environment as `common::glbox`: test keys, no
/// instance metadata, a closed caller-IP service: nothing leaves 127.0.0.1).
fn glbox_via(proxy: &FaultProxy, workspace: &Workspace, args: &[&str]) -> Run {
    crate::common::clean_command(env!("CARGO_BIN_EXE_glbox"), workspace, &proxy.endpoint())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run glbox")
        .into()
}

/// A Route 53 client straight at the emulator.
fn route53(emulator: &Emulator) -> aws_sdk_route53::Client {
    use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(crate::common::REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "faults"))
            .endpoint_url(emulator.endpoint())
            .build(),
    )
}

/// An SES client of `region`, straight at the emulator.
fn ses(emulator: &Emulator, region: &'static str) -> aws_sdk_ses::Client {
    use aws_sdk_ses::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "faults"))
            .endpoint_url(emulator.endpoint())
            .build(),
    )
}

/// A workspace for the SSM deployment `name`, whose outside health check
/// goes to a local server answering 200, plus `extra` configuration.
fn ssm_workspace(name: &str, extra: &str) -> Workspace {
    Workspace::new(&format!(
        "name = \"{name}\"\n{}\n{extra}",
        crate::common::verify_section("")
    ))
}

/// Makes the emulator report a healthy box to glbox's health check (as in
/// tests/it/ssm_bootstrap.rs); set straight at the emulator, never faulted.
async fn behave_healthy(emulator: &Emulator) {
    // The lost-answer tests give one emulator a deployment per scenario,
    // each with its Elastic IP: an account that asked for more than AWS's
    // default 5 addresses, or the quota check refuses the later ones.
    let healthy = json!({"eip_quota": 100,
        "invocations": [{"contains": "# glbox verify:", "status": "Success",
        "stdout": crate::common::healthy_verify_output("18.6.0")}]});
    emulator
        .ssm()
        .put_parameter()
        .name("/glbox-test/behaviour")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .value(healthy.to_string())
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// The IAM role and instance profile name of deployment `name`.
fn role_of(name: &str) -> String {
    format!("glbox-{name}-us-east-1")
}

fn root_password_of(name: &str) -> String {
    format!("/glbox/{name}/root-password")
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Everything the emulator holds that a deployment could make or leak,
/// tagged or not. A test compares it with an earlier one: what is new came
/// from the glbox runs in between.
#[derive(Debug, Default)]
struct Inventory {
    /// Not terminated.
    instances: Vec<Instance>,
    volumes: Vec<Volume>,
    addresses: Vec<aws_sdk_ec2::types::Address>,
    /// Every group but the VPCs' default ones.
    groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    key_pairs: Vec<String>,
    /// IAM roles and instance profiles (with their roles) under glbox's path.
    roles: Vec<String>,
    profiles: Vec<(String, Vec<String>)>,
    /// SSM parameters under /glbox/.
    parameters: Vec<String>,
}

async fn inventory(emulator: &Emulator) -> Inventory {
    let ec2 = emulator.ec2();
    let mut instances = Vec::new();
    let mut pages = ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        instances.extend(
            page.unwrap()
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| {
                    i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated")
                })
                .cloned(),
        );
    }
    let volumes = ec2
        .describe_volumes()
        .send()
        .await
        .unwrap()
        .volumes()
        .to_vec();
    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .unwrap()
        .addresses()
        .to_vec();
    let groups = ec2
        .describe_security_groups()
        .send()
        .await
        .unwrap()
        .security_groups()
        .iter()
        .filter(|g| g.group_name() != Some("default"))
        .cloned()
        .collect();
    let key_pairs = ec2
        .describe_key_pairs()
        .send()
        .await
        .unwrap()
        .key_pairs()
        .iter()
        .filter_map(|k| k.key_name().map(str::to_string))
        .collect();
    let iam = emulator.iam();
    let roles = iam
        .list_roles()
        .path_prefix("/glbox/")
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect();
    let profiles = iam
        .list_instance_profiles()
        .path_prefix("/glbox/")
        .send()
        .await
        .unwrap()
        .instance_profiles()
        .iter()
        .map(|p| {
            (
                p.instance_profile_name().to_string(),
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect(),
            )
        })
        .collect();
    let mut parameters = Vec::new();
    let mut pages = emulator
        .ssm()
        .get_parameters_by_path()
        .path("/glbox/")
        .recursive(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        parameters.extend(
            page.unwrap()
                .parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_string)),
        );
    }
    Inventory {
        instances,
        volumes,
        addresses,
        groups,
        key_pairs,
        roles,
        profiles,
        parameters,
    }
}

impl Inventory {
    /// What is here and was not in `before`.
    fn since(self, before: &Inventory) -> Inventory {
        fn new<T>(items: Vec<T>, old: &[T], id: impl Fn(&T) -> Option<String>) -> Vec<T> {
            let old: Vec<Option<String>> = old.iter().map(&id).collect();
            items
                .into_iter()
                .filter(|item| !old.contains(&id(item)))
                .collect()
        }
        let own = |s: Option<&str>| s.map(str::to_string);
        Inventory {
            instances: new(self.instances, &before.instances, |i| own(i.instance_id())),
            volumes: new(self.volumes, &before.volumes, |v| own(v.volume_id())),
            addresses: new(
                self.addresses,
                &before.addresses,
                |a| own(a.allocation_id()),
            ),
            groups: new(self.groups, &before.groups, |g| own(g.group_id())),
            key_pairs: new(self.key_pairs, &before.key_pairs, |k| Some(k.clone())),
            roles: new(self.roles, &before.roles, |r| Some(r.clone())),
            profiles: new(self.profiles, &before.profiles, |p| Some(p.0.clone())),
            parameters: new(self.parameters, &before.parameters, |p| Some(p.clone())),
        }
    }
}

/// What is wrong with what appeared in the emulator since `before`,
/// compared with exactly one complete deployment `name` and nothing else:
/// one running instance (in the group, with the profile), its root volume
/// and one data volume attached at /dev/sdf, one Elastic IP on it, one
/// security group with the web rules, the role with both its policies in
/// the one profile, and the SSM parameters `parameters`; all tagged as the
/// deployment's. Empty when all is well.
async fn deployment_problems(
    emulator: &Emulator,
    name: &str,
    before: &Inventory,
    parameters: &[String],
) -> Vec<String> {
    let inv = inventory(emulator).await.since(before);
    let role = role_of(name);
    let ours = |tags: &[aws_sdk_ec2::types::Tag]| tag(tags, "glbox:deployment") == Some(name);
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    let ids = |ids: Vec<Option<&str>>| ids.into_iter().flatten().collect::<Vec<_>>().join(", ");

    check(
        inv.instances.len() == 1,
        format!(
            "{} live instances, want 1: {}",
            inv.instances.len(),
            ids(inv.instances.iter().map(|i| i.instance_id()).collect())
        ),
    );
    let instance = inv.instances.first();
    let instance_id = instance.and_then(|i| i.instance_id()).unwrap_or("?");
    if let Some(instance) = instance {
        check(
            ours(instance.tags()),
            format!("instance {instance_id} is not tagged"),
        );
        check(
            instance.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("running"),
            format!("instance {instance_id} is not running"),
        );
        check(
            instance
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .is_some_and(|arn| arn.ends_with(&format!("/{role}"))),
            format!("instance {instance_id} lacks the instance profile"),
        );
    }

    let data: Vec<&Volume> = inv
        .volumes
        .iter()
        .filter(|v| tag(v.tags(), "glbox:role") == Some("data"))
        .collect();
    check(
        data.len() == 1,
        format!(
            "{} data volumes, want 1: {}",
            data.len(),
            ids(data.iter().map(|v| v.volume_id()).collect())
        ),
    );
    check(
        data.iter().any(|v| {
            ours(v.tags())
                && v.attachments()
                    .iter()
                    .any(|a| a.instance_id() == Some(instance_id) && a.device() == Some("/dev/sdf"))
        }),
        format!("no tagged data volume is attached to {instance_id} at /dev/sdf"),
    );
    check(
        inv.volumes.len() == 2,
        format!(
            "{} volumes, want 2 (the instance's root volume and the data volume): {}",
            inv.volumes.len(),
            ids(inv.volumes.iter().map(|v| v.volume_id()).collect())
        ),
    );

    check(
        inv.addresses.len() == 1,
        format!(
            "{} Elastic IPs, want 1: {}",
            inv.addresses.len(),
            ids(inv.addresses.iter().map(|a| a.allocation_id()).collect())
        ),
    );
    check(
        inv.addresses
            .iter()
            .any(|a| ours(a.tags()) && a.instance_id() == Some(instance_id)),
        format!("no tagged Elastic IP is associated with {instance_id}"),
    );

    check(
        inv.groups.len() == 1,
        format!(
            "{} security groups, want 1: {}",
            inv.groups.len(),
            ids(inv.groups.iter().map(|g| g.group_id()).collect())
        ),
    );
    if let Some(group) = inv.groups.first() {
        let group_id = group.group_id().unwrap_or("?");
        check(
            ours(group.tags()),
            format!("group {group_id} is not tagged"),
        );
        check(
            instance.is_some_and(|i| {
                i.security_groups()
                    .iter()
                    .any(|g| g.group_id() == group.group_id())
            }),
            format!("instance {instance_id} is not in group {group_id}"),
        );
        let mut ports: Vec<i32> = group
            .ip_permissions()
            .iter()
            .filter_map(|p| p.from_port())
            .collect();
        ports.sort();
        ports.dedup();
        check(
            ports == [80, 443],
            format!("group {group_id} opens ports {ports:?}, want [80, 443]"),
        );
    }

    check(
        inv.roles == [role.clone()],
        format!("new IAM roles {:?}, want [{role}]", inv.roles),
    );
    check(
        inv.profiles == [(role.clone(), vec![role.clone()])],
        format!(
            "new instance profiles {:?}, want {role} holding {role}",
            inv.profiles
        ),
    );
    if inv.roles.contains(&role) {
        let iam = emulator.iam();
        let attached = iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        // No managed policy: the box reads only its own parameters.
        check(
            attached.attached_policies().is_empty(),
            format!(
                "the role has {} managed policies, want none",
                attached.attached_policies().len()
            ),
        );
        let inline = iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        let mut names = inline.policy_names().to_vec();
        names.sort();
        check(
            names == ["glbox-own-parameters", "glbox-ssm-agent"],
            format!("the role's inline policies are {:?}", inline.policy_names()),
        );
    }

    // Besides `parameters`: the ownership records of exactly the data
    // volume and the address (and the SES identity and its use marker
    // when email is on), which `ownership_records` checks.
    let mut have: Vec<String> = inv
        .parameters
        .iter()
        .filter(|p| !is_ownership_record(p))
        .cloned()
        .collect();
    have.sort();
    let mut want = parameters.to_vec();
    want.sort();
    let mut records: Vec<String> = inv
        .parameters
        .iter()
        .filter(|p| p.contains("/owned/"))
        .cloned()
        .collect();
    records.sort();
    let mut recorded_ids: Vec<String> = data
        .iter()
        .filter_map(|v| v.volume_id())
        .chain(inv.addresses.iter().filter_map(|a| a.allocation_id()))
        .map(|id| format!("/glbox/{name}/owned/{id}"))
        .collect();
    recorded_ids.extend(
        records
            .iter()
            .filter(|r| r.contains("/owned/ses-identity."))
            .cloned(),
    );
    recorded_ids.sort();
    check(
        records == recorded_ids,
        format!("ownership records {records:?}, want those of {recorded_ids:?}"),
    );
    check(
        have == want,
        format!("new SSM parameters {have:?}, want {want:?}"),
    );
    check(
        inv.key_pairs.is_empty(),
        format!("key pairs {:?}, want none in SSM mode", inv.key_pairs),
    );
    problems
}

/// Exactly one complete deployment `trial` in the emulator (see
/// `deployment_problems`), the root password its only parameter.
async fn assert_one_complete_deployment(emulator: &Emulator) {
    let problems = deployment_problems(
        emulator,
        NAME,
        &Inventory::default(),
        &[root_password_of(NAME)],
    )
    .await;
    assert!(
        problems.is_empty(),
        "not exactly one complete deployment:\n  {}\n{:#?}",
        problems.join("\n  "),
        inventory(emulator).await
    );
}

/// The data volume of deployment `trial`.
async fn data_volume_id(emulator: &Emulator) -> String {
    let volumes = emulator
        .ec2()
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("tag:glbox:role")
                .values("data")
                .build(),
        )
        .send()
        .await
        .unwrap();
    volumes.volumes()[0].volume_id().unwrap().to_string()
}

/// After `down`: nothing left in the emulator but the kept data volume.
async fn assert_only_the_data_volume_is_left(emulator: &Emulator, volume_id: &str) {
    let inv = inventory(emulator).await;
    assert!(inv.instances.is_empty(), "{:#?}", inv.instances);
    let volumes: Vec<&str> = inv.volumes.iter().filter_map(|v| v.volume_id()).collect();
    assert_eq!(volumes, vec![volume_id], "{:#?}", inv.volumes);
    assert!(inv.volumes[0].attachments().is_empty());
    assert!(inv.addresses.is_empty(), "{:#?}", inv.addresses);
    assert!(inv.groups.is_empty(), "{:#?}", inv.groups);
    assert!(inv.roles.is_empty(), "{:?}", inv.roles);
    assert!(inv.profiles.is_empty(), "{:?}", inv.profiles);
    // The kept volume's ownership record stays, so the next `up` knows it.
    assert_eq!(
        inv.parameters,
        vec![format!("/glbox/{NAME}/owned/{volume_id}")],
        "{:?}",
        inv.parameters
    );
    assert!(inv.key_pairs.is_empty(), "{:?}", inv.key_pairs);
}

/// glbox's ownership records and email use markers (see `src/ownership.rs`).
fn is_ownership_record(parameter: &str) -> bool {
    parameter.contains("/owned/") || parameter.contains("/email-identity/")
}

/// Whether deployment `name`'s running instance carries the
/// `glbox:bootstrap` tag (set when `up` finished the bootstrap).
async fn bootstrap_done(emulator: &Emulator, name: &str) -> bool {
    let out = emulator
        .ec2()
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:glbox:deployment")
                .values(name)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .any(|i| tag(i.tags(), "glbox:bootstrap").is_some())
}

/// A full `up` of `trial` (SSM bootstrap and health check) through the
/// proxy, which must succeed, leaving one complete deployment,
/// bootstrapped. Returns its data volume.
async fn up_converges(emulator: &Emulator, proxy: &FaultProxy, workspace: &Workspace) -> String {
    let run = glbox_via(proxy, workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("GitLab is healthy."),
        "up ends with the verdict:\n{}",
        run.stdout
    );
    assert_one_complete_deployment(emulator).await;
    assert!(
        bootstrap_done(emulator, NAME).await,
        "the bootstrap is recorded"
    );
    data_volume_id(emulator).await
}

/// One call in five throttled, whatever the action: the SDK's backoff
/// absorbs it, `up` (SSM bootstrap and health check included) completes
/// with one complete deployment, and so does `down`.
#[tokio::test]
async fn up_and_down_complete_under_throttling() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"seed": 1, "rules": [everywhere("throttle", 0.2)]}),
    );
    let workspace = ssm_workspace(NAME, "");

    let volume = up_converges(&emulator, &proxy, &workspace).await;
    let up = proxy.stats();
    eprintln!("up under 20% throttling: {}", up.summary());
    assert!(
        up.injected("throttle") > 0,
        "throttles were injected: {}",
        up.0
    );

    // Changed at run time: another random sequence for `down`.
    proxy.configure(&json!({"seed": 11, "rules": [everywhere("throttle", 0.2)]}));
    proxy.reset_stats();
    glbox_via(&proxy, &workspace, &["down", "--yes"]).assert_ok();
    let down = proxy.stats();
    eprintln!("down under 20% throttling: {}", down.summary());
    assert!(
        down.injected("throttle") > 0,
        "throttles were injected: {}",
        down.0
    );
    assert_only_the_data_volume_is_left(&emulator, &volume).await;
}

/// EC2's eventual consistency, harder than the emulator's default: every id
/// RunInstances, CreateSecurityGroup, AllocateAddress or CreateVolume has
/// just returned answers NotFound to the first three calls naming it
/// ("Eventual consistency in the Amazon EC2 API", EC2 developer guide).
fn fresh_ids_unknown() -> Value {
    json!({"rules": [{"fault": "not_found_fresh", "calls": 3, "window_ms": 60000}]})
}

/// `up` retries the NotFound answers for ids it has just been given and
/// completes; `down` under the same completes too.
#[tokio::test]
async fn up_and_down_complete_while_fresh_ids_are_unknown() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(&emulator, &fresh_ids_unknown());
    let workspace = ssm_workspace(NAME, "");

    let volume = up_converges(&emulator, &proxy, &workspace).await;
    let up = proxy.stats();
    eprintln!("up with fresh ids unknown: {}", up.summary());
    for action in ["AuthorizeSecurityGroupIngress", "AssociateAddress"] {
        assert!(
            up.injected_into(action, "not_found_fresh") > 0,
            "{action} was refused at first: {}",
            up.0
        );
    }

    proxy.reset_stats();
    glbox_via(&proxy, &workspace, &["down", "--yes"]).assert_ok();
    assert_only_the_data_volume_is_left(&emulator, &volume).await;
}

/// A lab's seats are tagged, get volumes and addresses although EC2 does
/// not know the new ids at first: no seat fails; `lab down` leaves nothing.
#[tokio::test]
async fn a_lab_comes_up_and_down_while_fresh_ids_are_unknown() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(&emulator, &fresh_ids_unknown());
    let workspace = Workspace::new(&format!(
        "[lab]\nname = \"class\"\nseats = 3\nexpires_in = \"2h\"\n{}",
        crate::common::verify_section("")
    ));
    glbox_via(&proxy, &workspace, &["lab", "up", "--yes"]).assert_ok();
    let up = proxy.stats();
    eprintln!("lab up with fresh ids unknown: {}", up.summary());
    assert!(
        up.injected_into("CreateTags", "not_found_fresh") > 0,
        "seat tags were refused at first: {}",
        up.0
    );
    let expected: Vec<(String, bool)> = (1..=3).map(|n| (n.to_string(), true)).collect();
    assert_eq!(lab_seats(&emulator, "class").await, expected);

    glbox_via(&proxy, &workspace, &["lab", "down", "--yes"]).assert_ok();
    assert_eq!(lab_seats(&emulator, "class").await, Vec::new());
}

/// EC2 refuses a new instance profile for a while ("Invalid IAM Instance
/// Profile name"; hashicorp/terraform-provider-aws #3055, #27516): `up`
/// shows that it waits for it, then launches.
#[tokio::test]
async fn up_shows_the_wait_for_a_new_instance_profile() {
    let emulator = Emulator::start();
    let healthy = json!({"profile_propagation_s": 4,
        "invocations": [{"contains": "# glbox verify:", "status": "Success",
        "stdout": crate::common::healthy_verify_output("18.6.0")}]});
    emulator.behave(healthy).await;
    let proxy = FaultProxy::start(&emulator, &json!({"rules": []}));
    let workspace = ssm_workspace(NAME, "");
    let run = glbox_via(&proxy, &workspace, &["up", "--yes"]);
    run.assert_ok();
    assert!(
        run.stderr.contains(&format!(
            "waiting for EC2 to accept instance profile {}",
            role_of(NAME)
        )),
        "{}",
        run.stderr
    );
    let stats = proxy.stats();
    assert!(
        stats.0["by_action"]["RunInstances"]["requests"]
            .as_u64()
            .unwrap()
            > 1,
        "the launch was refused at first: {}",
        stats.0
    );
    assert_one_complete_deployment(&emulator).await;
}

/// The live instances of lab `lab` by seat, and whether each has GitLab.
async fn lab_seats(emulator: &Emulator, lab: &str) -> Vec<(String, bool)> {
    let out = emulator
        .ec2()
        .describe_instances()
        .filters(Filter::builder().name("tag:glbox:lab").values(lab).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut seats: Vec<(String, bool)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                tag(i.tags(), "glbox:seat").unwrap_or("none").to_string(),
                tag(i.tags(), "glbox:bootstrap").is_some(),
            )
        })
        .collect();
    seats.sort();
    seats
}

/// A lab of eight seats against an account that throttles every request
/// above 10 a second (as AWS limits request rates; a lab's calls run
/// several at a time): every seat comes up with GitLab, none failed for
/// it; `lab down` under the same leaves nothing. (Random throttling of a
/// share of all calls is covered for `up` above; adaptive retry answers it
/// by slowing down for minutes, which a rate limit does not need.)
#[tokio::test]
async fn a_lab_comes_up_and_down_under_throttling() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"rules": [{"fault": "throttle", "actions": ["*"], "per_second": 10}]}),
    );
    let workspace = Workspace::new(&format!(
        "[lab]\nname = \"class\"\nseats = 8\nexpires_in = \"2h\"\n{}",
        crate::common::verify_section("")
    ));
    glbox_via(&proxy, &workspace, &["lab", "up", "--yes"]).assert_ok();
    let up = proxy.stats();
    eprintln!("lab up throttled above 10 calls/s: {}", up.summary());
    assert!(up.injected("throttle") > 0, "{}", up.0);
    let seats = lab_seats(&emulator, "class").await;
    let expected: Vec<(String, bool)> = (1..=8).map(|n| (n.to_string(), true)).collect();
    assert_eq!(seats, expected);

    proxy.reset_stats();
    glbox_via(&proxy, &workspace, &["lab", "down", "--yes"]).assert_ok();
    assert!(proxy.stats().injected("throttle") > 0);
    assert_eq!(lab_seats(&emulator, "class").await, Vec::new());
    let volumes = emulator
        .ec2()
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("tag:glbox:lab")
                .values("class")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(volumes.volumes().is_empty(), "{volumes:?}");
}

/// One connection in five reset before the request reaches AWS: nothing
/// happened, the SDK sends it again.
#[tokio::test]
async fn up_completes_when_connections_reset_before_reaching_aws() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"seed": 2, "rules": [everywhere("reset_before", 0.2)]}),
    );
    let workspace = ssm_workspace(NAME, "");
    up_converges(&emulator, &proxy, &workspace).await;
    let stats = proxy.stats();
    eprintln!("up with 20% resets before forwarding: {}", stats.summary());
    assert!(stats.injected("reset_before") > 0, "{}", stats.0);
}

/// One call in five answered HTTP 500 or 503.
#[tokio::test]
async fn up_completes_under_server_errors() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"seed": 3, "rules": [everywhere("http500", 0.1), everywhere("http503", 0.1)]}),
    );
    let workspace = ssm_workspace(NAME, "");
    up_converges(&emulator, &proxy, &workspace).await;
    let stats = proxy.stats();
    eprintln!("up with 10% HTTP 500 and 10% 503: {}", stats.summary());
    assert!(stats.injected("http500") > 0, "{}", stats.0);
    assert!(stats.injected("http503") > 0, "{}", stats.0);
}

/// 50 ms more on every call (no timing asserted: performance belongs to
/// the benchmark).
#[tokio::test]
async fn up_completes_with_latency() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"rules": [{"fault": "latency", "latency_ms": 50, "actions": ["*"]}]}),
    );
    let workspace = ssm_workspace(NAME, "");
    up_converges(&emulator, &proxy, &workspace).await;
    let stats = proxy.stats();
    eprintln!("up with 50 ms per call: {}", stats.summary());
    assert!(stats.requests() > 0);
    assert_eq!(
        stats.injected("latency"),
        stats.requests(),
        "every call was delayed"
    );
}

/// Every action's first call is throttled once, in each protocol's wire
/// format (EC2, IAM and SES query, SSM JSON, Route 53 REST XML): the SDK
/// recognises each as throttling and retries, and `up` (email on, records
/// written to Route 53) completes.
#[tokio::test]
async fn the_first_call_of_every_action_is_throttled_and_retried() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let zone = route53(&emulator)
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("glbox-faults-test")
        .send()
        .await
        .unwrap();
    let zone_id = zone
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let proxy = FaultProxy::start(
        &emulator,
        &json!({"rules": [{"fault": "throttle", "actions": ["*"], "max_per_action": 1}]}),
    );
    let workspace = ssm_workspace(
        NAME,
        &format!("[email]\nenabled = true\ndomain = \"example.com\"\nses_region = \"eu-west-1\"\nroute53_zone_id = \"{zone_id}\"\n"),
    );
    let run = glbox_via(&proxy, &workspace, &["up", "--yes"]);
    run.assert_ok();
    let stats = proxy.stats();
    eprintln!("up with every action throttled once: {}", stats.summary());
    let by_action = stats.0["by_action"].as_object().unwrap().clone();
    for (action, counts) in &by_action {
        assert_eq!(counts["throttle"], 1, "{action}: {counts}");
        assert!(
            counts["forwarded"].as_u64().unwrap() >= 1,
            "{action} was retried and reached the emulator: {counts}"
        );
    }
    // One action of each protocol at least.
    for action in [
        "RunInstances",
        "CreateRole",
        "VerifyDomainIdentity",
        "PutParameter",
        "ChangeResourceRecordSets",
    ] {
        assert!(by_action.contains_key(action), "{action}: {by_action:?}");
    }
    let parameters =
        ["root-password", "smtp-password", "smtp-key"].map(|p| format!("/glbox/{NAME}/{p}"));
    let problems = deployment_problems(&emulator, NAME, &Inventory::default(), &parameters).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(bootstrap_done(&emulator, NAME).await);
    let keys = emulator
        .iam()
        .list_access_keys()
        .user_name("glbox-trial-us-east-1-smtp")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1, "one SMTP key");
    let identities = ses(&emulator, "eu-west-1")
        .list_identities()
        .send()
        .await
        .unwrap();
    assert_eq!(identities.identities(), ["example.com"]);
}

/// How a lost answer is put to the test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// A full `up` of a new deployment.
    Up,
    /// The same with email on (SES identity, Route 53 records, SMTP user).
    UpWithEmail,
    /// `down` of a deployment a fault-free `up` made.
    Down,
}

/// Every call of `up` that creates or changes something, in the order `up`
/// makes them, RunInstances and CreateVolume apart (see
/// `lost_answers_to_launches_and_volumes_make_no_second_one`).
const CHANGING_CALLS: &[(&str, Scenario)] = &[
    // The account's permissions boundary is created by the first `up` in
    // an account only: first in the list, so that it runs on a worker's
    // fresh emulator.
    ("CreatePolicy", Scenario::Up),
    ("CreateSecurityGroup", Scenario::Up),
    ("AuthorizeSecurityGroupIngress", Scenario::Up),
    ("CreateRole", Scenario::Up),
    ("PutRolePolicy", Scenario::Up),
    ("CreateInstanceProfile", Scenario::Up),
    ("AddRoleToInstanceProfile", Scenario::Up),
    ("PutParameter", Scenario::Up),
    ("AttachVolume", Scenario::Up),
    ("AllocateAddress", Scenario::Up),
    ("AssociateAddress", Scenario::Up),
    ("SendCommand", Scenario::Up),
    ("CreateTags", Scenario::Up),
    ("VerifyDomainIdentity", Scenario::UpWithEmail),
    ("VerifyDomainDkim", Scenario::UpWithEmail),
    ("ChangeResourceRecordSets", Scenario::UpWithEmail),
    ("CreateUser", Scenario::UpWithEmail),
    ("PutUserPolicy", Scenario::UpWithEmail),
    ("CreateAccessKey", Scenario::UpWithEmail),
];

/// The calls whose repetition AWS refuses (the name is taken, the rule or
/// the role is already there): when the SDK sends one again after its
/// answer was lost, the refusal is the echo of glbox's own success.
const REFUSED_WHEN_REPEATED: &[&str] = &[
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "CreatePolicy",
    "CreateRole",
    "CreateInstanceProfile",
    "AddRoleToInstanceProfile",
    "PutParameter",
    "CreateUser",
];

/// Every call of `down` that removes something, RemoveRoleFromInstanceProfile
/// apart: the emulator answers its repetition with an HTTP 500 (IAM says
/// NoSuchEntity), which the SDK retries until it gives up.
const REMOVING_CALLS: &[&str] = &[
    "ReleaseAddress",
    "TerminateInstances",
    "DeleteSecurityGroup",
    "DeleteParameters",
    "DeleteInstanceProfile",
    // No DetachRolePolicy: glbox attaches no managed policy (an instance
    // role holds only its inline policies), so `down` has none to detach.
    "DeleteRolePolicy",
    "DeleteRole",
];

/// What happened when the emulator did the first `action` call of a run
/// but its answer was lost (the connection was reset instead).
struct LostAnswer {
    action: &'static str,
    scenario: Scenario,
    /// The first run (`up` or `down`).
    first: Run,
    /// The one re-run, when the first failed (the fault is gone by then).
    rerun: Option<Run>,
    /// How many `action` requests reached the emulator.
    forwarded: u64,
    /// What is wrong in the end: for `up`, compared with exactly one
    /// deployment (see `deployment_problems`); for `down`, what is left.
    problems: Vec<String>,
}

/// The error lines of a run (its progress lines left out).
fn error_lines(run: &Run) -> String {
    run.stderr
        .lines()
        .filter(|l| !l.starts_with('['))
        .collect::<Vec<_>>()
        .join(" / ")
}

impl LostAnswer {
    fn describe(&self) -> String {
        let command = match self.scenario {
            Scenario::Up => "up",
            Scenario::UpWithEmail => "up (email on)",
            Scenario::Down => "down",
        };
        let mut text = format!(
            "{}: the emulator got it {} times; first {command} exit {}",
            self.action, self.forwarded, self.first.code
        );
        if self.first.code != 0 {
            text.push_str(&format!(" ({})", error_lines(&self.first)));
        }
        if let Some(rerun) = &self.rerun {
            text.push_str(&format!("; re-run exit {}", rerun.code));
            if rerun.code != 0 {
                text.push_str(&format!(" ({})", error_lines(rerun)));
            }
        }
        if !self.problems.is_empty() {
            text.push_str(&format!("; then: {}", self.problems.join("; ")));
        }
        text
    }
}

/// For each case, a deployment of its own (`lost-<n>`) goes through its
/// scenario while the emulator's answer to the first `action` call is lost
/// after the work was done; the command runs once more if it failed. The
/// deployments share an emulator per worker thread (`workers` of them):
/// each is judged by what appeared in the emulator during its own runs.
fn lose_first_answers(cases: &[(&'static str, Scenario)], workers: usize) -> Vec<LostAnswer> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(cases.len()) {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let emulator = Emulator::start();
                    behave_healthy(&emulator).await;
                    let proxy = FaultProxy::start(&emulator, &json!({"rules": []}));
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(&(action, scenario)) = cases.get(index) else {
                            break;
                        };
                        let outcome =
                            lose_first_answer(&emulator, &proxy, index, action, scenario).await;
                        outcomes.lock().unwrap().push((index, outcome));
                    }
                });
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

async fn lose_first_answer(
    emulator: &Emulator,
    proxy: &FaultProxy,
    index: usize,
    action: &'static str,
    scenario: Scenario,
) -> LostAnswer {
    let name = format!("lost-{index}");
    let domain = format!("{name}.example.com");
    let mut extra = String::new();
    if scenario == Scenario::UpWithEmail {
        let zone = route53(emulator)
            .create_hosted_zone()
            .name(&domain)
            .caller_reference(&name)
            .send()
            .await
            .unwrap();
        let zone_id = zone
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/");
        extra = format!(
            "[email]\nenabled = true\ndomain = \"{domain}\"\nses_region = \"eu-west-1\"\nroute53_zone_id = \"{zone_id}\"\n"
        );
    }
    let workspace = ssm_workspace(&name, &extra);
    let before = inventory(emulator).await;
    proxy.configure(&json!({"rules": []}));
    let command = if scenario == Scenario::Down {
        glbox_via(proxy, &workspace, &["up", "--yes"]).assert_ok();
        "down"
    } else {
        "up"
    };
    let data_volume = inventory(emulator)
        .await
        .since(&before)
        .volumes
        .iter()
        .find(|v| tag(v.tags(), "glbox:role") == Some("data"))
        .and_then(|v| v.volume_id().map(str::to_string));
    proxy.configure(&json!({"rules": [{"fault": "reset_after", "actions": [action], "max": 1}]}));
    proxy.reset_stats();
    let first = glbox_via(proxy, &workspace, &[command, "--yes"]);
    let rerun = (first.code != 0).then(|| glbox_via(proxy, &workspace, &[command, "--yes"]));
    let stats = proxy.stats();
    assert_eq!(
        stats.injected_into(action, "reset_after"),
        1,
        "{action}: the answer was lost once: {}",
        stats.0
    );
    let mut problems = match scenario {
        Scenario::Up => {
            deployment_problems(emulator, &name, &before, &[root_password_of(&name)]).await
        }
        Scenario::UpWithEmail => {
            let parameters = ["root-password", "smtp-password", "smtp-key"]
                .map(|p| format!("/glbox/{name}/{p}"));
            let mut problems = deployment_problems(emulator, &name, &before, &parameters).await;
            problems.extend(email_problems(emulator, &name, &domain).await);
            problems
        }
        Scenario::Down => leftovers(
            inventory(emulator).await.since(&before),
            data_volume.as_deref(),
        ),
    };
    if rerun.as_ref().unwrap_or(&first).code != 0 {
        problems.insert(0, format!("{command} never succeeded"));
    } else if scenario != Scenario::Down && !bootstrap_done(emulator, &name).await {
        problems.push("the bootstrap is not recorded".into());
    }
    LostAnswer {
        action,
        scenario,
        forwarded: stats.forwarded(action),
        first,
        rerun,
        problems,
    }
}

/// What is wrong with deployment `name`'s email: want the SES identity of
/// `domain`, its verification and DKIM records once each in the Route 53
/// zone, and the SMTP user with one access key, the one `smtp-key` names.
async fn email_problems(emulator: &Emulator, name: &str, domain: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let identities = ses(emulator, "eu-west-1")
        .list_identities()
        .send()
        .await
        .unwrap();
    if !identities.identities().iter().any(|i| i == domain) {
        problems.push(format!("no SES identity {domain}"));
    }
    let route53 = route53(emulator);
    let zones = route53.list_hosted_zones().send().await.unwrap();
    let zone = zones
        .hosted_zones()
        .iter()
        .find(|z| z.name() == format!("{domain}."))
        .unwrap();
    let records = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone.id())
        .send()
        .await
        .unwrap();
    let count = |kind: &str, part: &str| {
        records
            .resource_record_sets()
            .iter()
            .filter(|r| r.r#type().as_str() == kind && r.name().contains(part))
            .map(|r| r.resource_records().len())
            .collect::<Vec<_>>()
    };
    if count("TXT", "_amazonses.") != [1] {
        problems.push(format!(
            "verification TXT records {:?}, want one",
            count("TXT", "_amazonses.")
        ));
    }
    if count("CNAME", "._domainkey.") != [1, 1, 1] {
        problems.push(format!(
            "DKIM CNAME records {:?}, want three",
            count("CNAME", "._domainkey.")
        ));
    }
    let user = format!("glbox-{name}-us-east-1-smtp");
    let keys: Vec<String> = match emulator
        .iam()
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
    {
        Ok(out) => out
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(str::to_string))
            .collect(),
        Err(_) => {
            problems.push(format!("no SMTP user {user}"));
            return problems;
        }
    };
    // `{"access_key_id": ..., "ses_region": ...}`
    let recorded = emulator
        .ssm()
        .get_parameter()
        .name(format!("/glbox/{name}/smtp-key"))
        .send()
        .await
        .ok()
        .and_then(|p| p.parameter?.value)
        .and_then(|v| serde_json::from_str::<Value>(&v).ok())
        .and_then(|v| v["access_key_id"].as_str().map(str::to_string));
    if keys.len() != 1 || recorded.as_ref() != keys.first() {
        problems.push(format!(
            "SMTP user access keys {keys:?}, want one: the one smtp-key names ({recorded:?})"
        ));
    }
    problems
}

/// What `down` left of what appeared since the deployment was made, but
/// the data volume it keeps.
fn leftovers(new: Inventory, data_volume: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let ids = |ids: Vec<Option<&str>>| ids.into_iter().flatten().collect::<Vec<_>>().join(", ");
    if !new.instances.is_empty() {
        problems.push(format!(
            "live instances {}",
            ids(new.instances.iter().map(|i| i.instance_id()).collect())
        ));
    }
    let volumes: Vec<Option<&str>> = new.volumes.iter().map(|v| v.volume_id()).collect();
    if volumes != [data_volume] {
        problems.push(format!(
            "volumes {}, want only the data volume {data_volume:?}",
            ids(volumes)
        ));
    }
    if !new.addresses.is_empty() {
        problems.push(format!(
            "Elastic IPs {}",
            ids(new.addresses.iter().map(|a| a.allocation_id()).collect())
        ));
    }
    if !new.groups.is_empty() {
        problems.push(format!(
            "security groups {}",
            ids(new.groups.iter().map(|g| g.group_id()).collect())
        ));
    }
    if !new.roles.is_empty() || !new.profiles.is_empty() {
        problems.push(format!(
            "IAM roles {:?}, instance profiles {:?}",
            new.roles, new.profiles
        ));
    }
    // What may stay: the kept data volume's ownership record (and, after
    // an `up` with email, the record of the SES identity glbox made).
    let left: Vec<&String> = new
        .parameters
        .iter()
        .filter(|p| {
            let kept_volume = data_volume.is_some_and(|v| p.ends_with(&format!("/owned/{v}")));
            !kept_volume && !p.contains("/owned/ses-identity.")
        })
        .collect();
    if !left.is_empty() {
        problems.push(format!("SSM parameters {left:?}"));
    }
    problems
}

/// The outcomes for every changing call of `up`, computed once for the
/// tests that judge them.
fn changing_call_outcomes() -> &'static [LostAnswer] {
    static OUTCOMES: std::sync::OnceLock<Vec<LostAnswer>> = std::sync::OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let outcomes = lose_first_answers(CHANGING_CALLS, 2);
        for outcome in &outcomes {
            eprintln!("{}", outcome.describe());
        }
        outcomes
    })
}

/// The AWS SDK sends a request again when its connection breaks, even one
/// that creates something: when AWS did the work and only the answer was
/// lost, the second request makes a second resource, or is refused because
/// the first exists. Whatever happens, `up` (re-run once if it failed, as a
/// user would) must leave exactly one deployment: nothing duplicated,
/// nothing leaked.
#[test]
fn lost_answers_to_changing_calls_leave_exactly_one_deployment() {
    let outcomes = changing_call_outcomes();
    for outcome in outcomes {
        assert!(
            outcome.forwarded >= 2,
            "{}: the SDK sent the call again after the lost answer",
            outcome.action
        );
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(LostAnswer::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "after a lost answer, not exactly one deployment:\n  {}",
        failed.join("\n  ")
    );
}

/// When the repeated call is refused because the first one worked, the
/// refusal is glbox's own success coming back: the resource carries the
/// deployment's tags. `up` should carry on with it, not fail (nor tell the
/// user the resource is someone else's).
#[test]
fn a_lost_answer_does_not_fail_up() {
    let failed: Vec<String> = changing_call_outcomes()
        .iter()
        .filter(|o| REFUSED_WHEN_REPEATED.contains(&o.action) && o.first.code != 0)
        .map(LostAnswer::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "up failed after a lost answer:\n  {}",
        failed.join("\n  ")
    );
}

/// `down` after a lost answer to a removing call: the repeated call finds
/// the resource gone. `down` must leave nothing but the data volume, and
/// should not fail on what it removed itself.
#[test]
fn a_lost_answer_to_a_removal_does_not_fail_down() {
    let cases: Vec<(&'static str, Scenario)> = REMOVING_CALLS
        .iter()
        .map(|a| (*a, Scenario::Down))
        .collect();
    let outcomes = lose_first_answers(&cases, 2);
    for outcome in &outcomes {
        eprintln!("{}", outcome.describe());
    }
    let left: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(LostAnswer::describe)
        .collect();
    assert!(
        left.is_empty(),
        "after a lost answer, down (re-run once) left resources:\n  {}",
        left.join("\n  ")
    );
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.first.code != 0)
        .map(LostAnswer::describe)
        .collect();
    assert!(
        failed.is_empty(),
        "down failed after a lost answer:\n  {}",
        failed.join("\n  ")
    );
}

/// RunInstances carries glbox's deterministic ClientToken and CreateVolume
/// the SDK's own (a UUID it keeps across its retries), so on AWS the
/// repeated call returns the first instance or volume. (The launcher makes
/// the emulator honour the token as EC2 does.)
#[test]
fn lost_answers_to_launches_and_volumes_make_no_second_one() {
    let outcomes = lose_first_answers(
        &[
            ("RunInstances", Scenario::Up),
            ("CreateVolume", Scenario::Up),
        ],
        2,
    );
    let failed: Vec<String> = outcomes
        .iter()
        .inspect(|o| eprintln!("{}", o.describe()))
        .filter(|o| !o.problems.is_empty())
        .map(LostAnswer::describe)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
