//! `glbox lab` against the emulator: whole classes of seats made, repaired,
//! resized and removed, each outcome read back through the AWS API.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

use crate::common::{glbox, mutating, Emulator, Run, Workspace};
use aws_sdk_ec2::types::{Filter, Tag};
use serde_json::json;

const LAB: &str = "class";
/// Labs have no Elastic IPs unless asked: with this in the lab's
/// configuration, each seat gets one.
const WITH_EIPS: &str = "[network]\nelastic_ip = true";

fn lab_config(name: &str, seats: u16, extra: &str) -> String {
    format!(
        "[lab]\nname = \"{name}\"\nseats = {seats}\nexpires_in = \"8h\"\n{extra}\n{}",
        crate::common::verify_section("")
    )
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn lab_filter(lab: &str) -> Filter {
    Filter::builder().name("tag:glbox:lab").values(lab).build()
}

/// One seat as AWS reports it.
#[derive(Debug, Clone, Default)]
struct SeatView {
    instances: Vec<String>,
    volumes: Vec<String>,
    /// Volume → the instance it is attached to.
    attached: BTreeMap<String, String>,
    /// Allocation → the instance it is associated with.
    addresses: BTreeMap<String, Option<String>>,
    market: BTreeMap<String, String>,
    /// Instance → its public IPv4, as DescribeInstances reports it.
    public_ip: BTreeMap<String, Option<String>>,
    bootstrapped: BTreeSet<String>,
    expires: BTreeSet<String>,
}

/// Everything tagged with the lab, by seat (live instances only), plus the
/// lab's untagged-by-seat leftovers and shared resources.
#[derive(Debug, Default)]
struct LabView {
    seats: BTreeMap<u16, SeatView>,
    instances_without_seat: Vec<String>,
    security_groups: Vec<String>,
    parameters: Vec<String>,
    role: bool,
    profile: bool,
}

async fn lab_view(emulator: &Emulator, lab: &str) -> LabView {
    let ec2 = emulator.ec2();
    let mut view = LabView::default();
    let reservations = ec2
        .describe_instances()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    for i in reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
    {
        let state = i.state().and_then(|s| s.name()).unwrap().as_str();
        if state == "terminated" || state == "shutting-down" {
            continue;
        }
        let id = i.instance_id().unwrap().to_string();
        let Some(seat) = tag(i.tags(), "glbox:seat").map(|s| s.parse::<u16>().unwrap()) else {
            view.instances_without_seat.push(id);
            continue;
        };
        let entry = view.seats.entry(seat).or_default();
        entry.instances.push(id.clone());
        let market = match i.instance_lifecycle() {
            Some(l) => l.as_str().to_string(),
            None => "on-demand".into(),
        };
        entry.market.insert(id.clone(), market);
        entry
            .public_ip
            .insert(id.clone(), i.public_ip_address().map(str::to_string));
        if tag(i.tags(), "glbox:bootstrap").is_some() {
            entry.bootstrapped.insert(id.clone());
        }
        entry
            .expires
            .insert(tag(i.tags(), "glbox:expires-at").unwrap_or("").to_string());
        assert_eq!(
            tag(i.tags(), "Name"),
            Some(format!("glbox-lab-{lab}-s{seat:02}").as_str())
        );
        assert_eq!(
            i.metadata_options()
                .unwrap()
                .http_tokens()
                .unwrap()
                .as_str(),
            "required"
        );
    }
    let volumes = ec2
        .describe_volumes()
        .filters(lab_filter(lab))
        .filters(
            Filter::builder()
                .name("tag:glbox:role")
                .values("data")
                .build(),
        )
        .send()
        .await
        .unwrap();
    for v in volumes.volumes() {
        let seat: u16 = tag(v.tags(), "glbox:seat").unwrap().parse().unwrap();
        assert!(v.encrypted().unwrap());
        assert_eq!(v.volume_type().unwrap().as_str(), "gp3");
        let entry = view.seats.entry(seat).or_default();
        let id = v.volume_id().unwrap().to_string();
        entry.volumes.push(id.clone());
        if let Some(a) = v
            .attachments()
            .iter()
            .find(|a| a.state().is_some_and(|s| s.as_str() == "attached"))
        {
            entry
                .attached
                .insert(id, a.instance_id().unwrap().to_string());
        }
    }
    let addresses = ec2
        .describe_addresses()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    for a in addresses.addresses() {
        let seat: u16 = tag(a.tags(), "glbox:seat").unwrap().parse().unwrap();
        view.seats.entry(seat).or_default().addresses.insert(
            a.allocation_id().unwrap().to_string(),
            a.instance_id()
                .filter(|i| !i.is_empty())
                .map(str::to_string),
        );
    }
    let groups = ec2
        .describe_security_groups()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    view.security_groups = groups
        .security_groups()
        .iter()
        .map(|g| g.group_id().unwrap().to_string())
        .collect();
    let mut pages = emulator
        .ssm()
        .get_parameters_by_path()
        .path(format!("/glbox-lab/{lab}/"))
        .recursive(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        view.parameters.extend(
            page.unwrap()
                .parameters()
                .iter()
                .map(|p| p.name().unwrap().to_string()),
        );
    }
    let iam_name = format!("glbox-lab-{lab}-{}", crate::common::REGION);
    view.role = emulator
        .iam()
        .get_role()
        .role_name(&iam_name)
        .send()
        .await
        .is_ok();
    view.profile = emulator
        .iam()
        .get_instance_profile()
        .instance_profile_name(&iam_name)
        .send()
        .await
        .is_ok();
    view
}

/// Problems that keep seat `seat` from being a complete box.
fn seat_problems(view: &LabView, lab: &str, seat: u16, elastic_ip: bool) -> Vec<String> {
    let Some(s) = view.seats.get(&seat) else {
        return vec![format!("s{seat:02}: nothing")];
    };
    let mut problems = Vec::new();
    if s.instances.len() != 1 {
        problems.push(format!("s{seat:02}: {} live instances", s.instances.len()));
    }
    if s.volumes.len() != 1 {
        problems.push(format!("s{seat:02}: {} data volumes", s.volumes.len()));
    }
    let instance = s.instances.first();
    if s.volumes.first().and_then(|v| s.attached.get(v)) != instance {
        problems.push(format!(
            "s{seat:02}: data volume not attached to its instance"
        ));
    }
    if elastic_ip && s.addresses.values().collect::<Vec<_>>() != vec![&instance.cloned()] {
        problems.push(format!("s{seat:02}: addresses {:?}", s.addresses));
    }
    if !elastic_ip && !s.addresses.is_empty() {
        problems.push(format!("s{seat:02}: Elastic IPs {:?}", s.addresses));
    }
    // Without an Elastic IP, the address assigned at launch is the seat's.
    if instance.is_some_and(|i| s.public_ip.get(i).cloned().flatten().is_none()) {
        problems.push(format!("s{seat:02}: no public IPv4"));
    }
    let password = format!("/glbox-lab/{lab}/s{seat:02}/root-password");
    if !view.parameters.contains(&password) {
        problems.push(format!("s{seat:02}: no {password}"));
    }
    if s.expires.len() != 1 || s.expires.contains("") {
        problems.push(format!("s{seat:02}: expiry tags {:?}", s.expires));
    }
    problems
}

fn assert_complete(view: &LabView, lab: &str, seats: u16, elastic_ip: bool) {
    let problems: Vec<String> = (1..=seats)
        .flat_map(|seat| seat_problems(view, lab, seat, elastic_ip))
        .collect();
    assert!(problems.is_empty(), "incomplete seats: {problems:#?}");
    let numbered: Vec<u16> = view.seats.keys().copied().collect();
    assert_eq!(
        numbered,
        (1..=seats).collect::<Vec<_>>(),
        "exactly these seats"
    );
    assert!(view.instances_without_seat.is_empty());
    assert_eq!(view.security_groups.len(), 1, "one shared security group");
    assert!(view.role && view.profile, "one shared instance role");
}

async fn behave_healthy(emulator: &Emulator) {
    emulator
        .behave(
            json!({"invocations": [{"contains": "# glbox verify:", "status": "Success",
            "stdout": crate::common::healthy_verify_output("18.6.0")}]}),
        )
        .await;
}

/// `lab up` of the AWS side only (no GitLab install), which must succeed.
fn lab_up_aws_only(emulator: &Emulator, workspace: &Workspace) {
    glbox(
        emulator,
        workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    )
    .assert_ok();
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// The fields of one CSV line (quoted fields may hold commas and quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn roster(workspace: &Workspace) -> Vec<BTreeMap<String, String>> {
    let path = workspace.path().join("roster.csv");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the roster holds passwords");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(csv_fields(l))
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        })
        .collect()
}

async fn password(emulator: &Emulator, seat: u16) -> String {
    emulator
        .ssm()
        .get_parameter()
        .name(format!("/glbox-lab/{LAB}/s{seat:02}/root-password"))
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_string()
}

/// A 25-seat class: one RunInstances for all, every seat a complete,
/// bootstrapped and checked box, a private roster, and a second run that
/// changes nothing.
#[tokio::test]
async fn a_25_seat_lab_comes_up_complete_and_a_rerun_changes_nothing() {
    let emulator = Emulator::start();
    behave_healthy(&emulator).await;
    let workspace = Workspace::new(&lab_config(LAB, 25, ""));
    emulator.start_recording();
    let up = glbox(&emulator, &workspace, &["lab", "up", "--yes"]);
    up.assert_ok();
    let recorded = emulator.recorded();
    let actions: Vec<String> = recorded.iter().map(|r| r.action.clone()).collect();

    let view = lab_view(&emulator, LAB).await;
    assert_complete(&view, LAB, 25, false);
    for (seat, s) in &view.seats {
        assert_eq!(s.bootstrapped.len(), 1, "s{seat:02} has GitLab");
    }
    // The emulator refuses the new instance profile at first, as EC2 does:
    // retries of one launch carry its client token.
    let launches: std::collections::BTreeSet<&str> = recorded
        .iter()
        .filter(|r| r.action == "RunInstances")
        .filter_map(|r| r.body.split('&').find(|f| f.starts_with("ClientToken=")))
        .collect();
    assert_eq!(launches.len(), 1, "one launch for the class");
    assert_eq!(count(&actions, "CreateVolume"), 25);
    assert_eq!(
        count(&actions, "SendCommand"),
        50,
        "a bootstrap and a check per seat"
    );
    eprintln!(
        "25 seats: {} calls, {} mutating, {} DescribeInstances",
        actions.len(),
        mutating(&actions).len(),
        count(&actions, "DescribeInstances")
    );

    let rows = roster(&workspace);
    assert_eq!(rows.len(), 25);
    for row in &rows {
        let seat: u16 = row["seat"].parse().unwrap();
        assert_eq!(row["state"], "ready", "{row:?}");
        assert_eq!(row["username"], "root");
        let secret = password(&emulator, seat).await;
        assert_eq!(row["password"], secret, "the roster has the SSM password");
        assert!(!up.stdout.contains(&secret) && !up.stderr.contains(&secret));
    }

    emulator.start_recording();
    let again = glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--output", "json"],
    );
    again.assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
    let report = again.json();
    assert_eq!(report["seats"].as_array().unwrap().len(), 25);
    assert!(report["plan"]["seat_work"].as_array().unwrap().is_empty());
    assert!(
        !again.stdout.contains(&password(&emulator, 1).await),
        "JSON names the parameter, not the password"
    );
}

/// Seats terminated out of band get new instances (one launch for them)
/// and keep their data volumes; the other seats are untouched.
#[tokio::test]
async fn terminated_seats_are_recreated_and_only_those() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(LAB, 25, ""));
    lab_up_aws_only(&emulator, &workspace);
    let before = lab_view(&emulator, LAB).await;
    let victims = [4u16, 11, 19];
    let ids: Vec<String> = victims
        .iter()
        .map(|s| before.seats[s].instances[0].clone())
        .collect();
    emulator
        .ec2()
        .terminate_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .unwrap();

    emulator.start_recording();
    lab_up_aws_only(&emulator, &workspace);
    let recorded = emulator.recorded();
    let actions: Vec<String> = recorded.iter().map(|r| r.action.clone()).collect();
    let launches: Vec<&crate::common::Request> = recorded
        .iter()
        .filter(|r| r.action == "RunInstances")
        .collect();
    assert_eq!(launches.len(), 1);
    assert!(
        launches[0].body.contains("MaxCount=3"),
        "{}",
        launches[0].body
    );
    assert_eq!(count(&actions, "CreateVolume"), 0, "the volumes survived");
    assert_eq!(
        count(&actions, "AllocateAddress"),
        0,
        "the addresses survived"
    );
    assert_eq!(count(&actions, "AttachVolume"), 3);
    assert_eq!(count(&actions, "AssociateAddress"), 0, "no Elastic IPs");

    let after = lab_view(&emulator, LAB).await;
    assert_complete(&after, LAB, 25, false);
    for seat in 1..=25u16 {
        let (old, new) = (&before.seats[&seat], &after.seats[&seat]);
        assert_eq!(old.volumes, new.volumes, "s{seat:02} keeps its data volume");
        assert_eq!(
            old.addresses.keys().collect::<Vec<_>>(),
            new.addresses.keys().collect::<Vec<_>>(),
            "s{seat:02} keeps its address"
        );
        if victims.contains(&seat) {
            assert_ne!(old.instances, new.instances, "s{seat:02} relaunched");
        } else {
            assert_eq!(old.instances, new.instances, "s{seat:02} untouched");
        }
    }
}

/// The ARN of each live seat instance of the lab, by seat, from
/// DescribeInstances (the owner is the reservation's account).
async fn seat_instance_arns(emulator: &Emulator, lab: &str) -> BTreeMap<u16, String> {
    let reservations = emulator
        .ec2()
        .describe_instances()
        .filters(lab_filter(lab))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut arns = BTreeMap::new();
    for reservation in reservations.reservations() {
        let account = reservation.owner_id().unwrap();
        for instance in reservation.instances() {
            let seat: u16 = tag(instance.tags(), "glbox:seat").unwrap().parse().unwrap();
            let arn = format!(
                "arn:aws:ec2:{}:{account}:instance/{}",
                crate::common::REGION,
                instance.instance_id().unwrap()
            );
            assert!(arns.insert(seat, arn).is_none(), "one instance per seat");
        }
    }
    arns
}

/// The `glbox:instance` tag of each seat's password, as
/// ListTagsForResource reports it (the tag IAM reads as
/// `ssm:resourceTag/glbox:instance`).
async fn password_instance_tags(emulator: &Emulator, seats: u16) -> BTreeMap<u16, Option<String>> {
    let mut tags = BTreeMap::new();
    for seat in 1..=seats {
        let listed = emulator
            .ssm()
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(format!("/glbox-lab/{LAB}/s{seat:02}/root-password"))
            .send()
            .await
            .unwrap();
        let value = listed
            .tag_list()
            .iter()
            .find(|t| t.key() == "glbox:instance")
            .map(|t| t.value().to_string());
        tags.insert(seat, value);
    }
    tags
}

/// The lab's one role lets a box read only passwords tagged with its own
/// instance's ARN (tests/it/iam_policy.rs proves the policy): each seat's
/// password names its instance, follows a relaunch, and a converged lab
/// is left alone.
#[tokio::test]
async fn each_seats_password_names_its_own_instance() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(LAB, 3, ""));
    emulator.start_recording();
    lab_up_aws_only(&emulator, &workspace);
    let actions = emulator.recorded_actions();
    assert_eq!(
        count(&actions, "AddTagsToResource"),
        0,
        "a new password names its instance in the creating call: {actions:?}"
    );
    assert_eq!(
        (
            count(&actions, "PutParameter"),
            count(&actions, "GetParameter")
        ),
        (1 + 3 * 3, 3),
        "the lease, and per seat the password and the volume's intent and record; read: the image's public parameter and the lease twice, no seat's intent (a new lab has none): {actions:?}"
    );
    assert_eq!(
        count(&actions, "DeleteParameters"),
        2,
        "the seats' volume intents, closed together, and the lease"
    );
    let before = seat_instance_arns(&emulator, LAB).await;
    assert_eq!(before.len(), 3);
    let expected: BTreeMap<u16, Option<String>> =
        before.iter().map(|(s, a)| (*s, Some(a.clone()))).collect();
    assert_eq!(password_instance_tags(&emulator, 3).await, expected);

    // s02's instance is terminated out of band: its relaunch moves the tag.
    let victim = before[&2].rsplit('/').next().unwrap().to_string();
    emulator
        .ec2()
        .terminate_instances()
        .instance_ids(&victim)
        .send()
        .await
        .unwrap();
    emulator.start_recording();
    lab_up_aws_only(&emulator, &workspace);
    let actions = emulator.recorded_actions();
    assert_eq!(
        count(&actions, "AddTagsToResource"),
        1,
        "only the relaunched seat's tag changes: {actions:?}"
    );
    let after = seat_instance_arns(&emulator, LAB).await;
    assert_ne!(after[&2], before[&2], "s02 relaunched");
    assert_eq!((&after[&1], &after[&3]), (&before[&1], &before[&3]));
    let expected: BTreeMap<u16, Option<String>> =
        after.iter().map(|(s, a)| (*s, Some(a.clone()))).collect();
    assert_eq!(password_instance_tags(&emulator, 3).await, expected);

    emulator.start_recording();
    lab_up_aws_only(&emulator, &workspace);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

/// More seats adds the new ones; fewer removes the highest, only after
/// confirmation (without a terminal and --yes: refused, nothing changed).
#[tokio::test]
async fn seats_are_added_and_removed_from_the_top() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(LAB, 2, WITH_EIPS));
    lab_up_aws_only(&emulator, &workspace);
    workspace.write_config(&lab_config(LAB, 4, WITH_EIPS));
    lab_up_aws_only(&emulator, &workspace);
    let grown = lab_view(&emulator, LAB).await;
    assert_complete(&grown, LAB, 4, true);

    workspace.write_config(&lab_config(LAB, 3, WITH_EIPS));
    emulator.start_recording();
    let refused = glbox(&emulator, &workspace, &["lab", "up", "--no-bootstrap"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(refused.stdout.contains("remove") && refused.stdout.contains("s04"));
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    lab_up_aws_only(&emulator, &workspace);
    let shrunk = lab_view(&emulator, LAB).await;
    assert_complete(&shrunk, LAB, 3, true);
    for seat in 1..=3u16 {
        assert_eq!(grown.seats[&seat].instances, shrunk.seats[&seat].instances);
    }
    let released = emulator.ec2().describe_addresses().send().await.unwrap();
    assert_eq!(released.addresses().len(), 3, "s04's address was released");

    // The cost per hour follows what exists: a stopped seat still pays
    // for its volumes and address, not for its instance.
    emulator
        .ec2()
        .stop_instances()
        .instance_ids(&shrunk.seats[&3].instances[0])
        .send()
        .await
        .unwrap();
    let status = glbox(
        &emulator,
        &workspace,
        &["lab", "status", "--output", "json"],
    );
    status.assert_ok();
    let cost = &status.json()["cost"];
    assert_eq!(cost["running_instances"], 2);
    assert_eq!(cost["seats_with_storage"], 3);
    let estimate = glbox::cost::estimate(&crate::common::settings("name = \"class\"\n"));
    let line = |wanted: bool| -> f64 {
        estimate
            .lines
            .iter()
            .filter(|l| (l.item == "instance") == wanted)
            .map(|l| l.monthly_usd.unwrap())
            .sum::<f64>()
            / 730.0
    };
    let expected = 2.0 * line(true) + 3.0 * line(false);
    let hourly = cost["hourly_usd"].as_f64().unwrap();
    assert!((hourly - expected).abs() < 0.0001, "{hourly} vs {expected}");
}

/// With spot capacity for two of four seats, two run on spot and two
/// on-demand, and glbox says so.
#[tokio::test]
async fn seats_without_spot_capacity_fall_back_to_on_demand() {
    let emulator = Emulator::start();
    emulator.behave(json!({"spot_capacity": 2})).await;
    let workspace = Workspace::new(&lab_config(LAB, 4, "spot = true"));
    let up = glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    );
    up.assert_ok();
    assert!(up.stderr.contains("on-demand instead"), "{}", up.stderr);
    let view = lab_view(&emulator, LAB).await;
    assert_complete(&view, LAB, 4, false);
    let markets: Vec<String> = view
        .seats
        .values()
        .flat_map(|s| s.market.values().cloned())
        .collect();
    assert_eq!(
        markets.iter().filter(|m| *m == "spot").count(),
        2,
        "{markets:?}"
    );
    assert_eq!(markets.iter().filter(|m| *m == "on-demand").count(), 2);
    let rows = roster(&workspace);
    assert_eq!(rows.iter().filter(|r| r["market"] == "spot").count(), 2);
}

/// One seat's bootstrap fails: it is listed with the reason, the others are
/// ready; the re-run bootstraps only that seat.
#[tokio::test]
async fn a_failed_seat_is_listed_and_retried_alone() {
    let emulator = Emulator::start();
    let healthy = json!({"contains": "# glbox verify:", "status": "Success",
        "stdout": crate::common::healthy_verify_output("18.6.0")});
    emulator
        .behave(json!({"invocations": [
            {"contains": "/glbox-lab/class/s02/root-password", "status": "Failed", "code": 1,
             "stdout": "glbox: installing gitlab-ce failed"},
            healthy.clone()]}))
        .await;
    let workspace = Workspace::new(&lab_config(LAB, 3, ""));
    let up = glbox(&emulator, &workspace, &["lab", "up", "--yes"]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert!(up.stderr.contains("1 of 3 seat(s) failed"), "{}", up.stderr);
    assert!(up.stderr.contains("s02: "), "{}", up.stderr);
    let rows = roster(&workspace);
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str()).collect();
    assert_eq!(states[0], "ready");
    assert!(states[1].starts_with("failed: "), "{states:?}");
    assert_eq!(states[2], "ready");
    let view = lab_view(&emulator, LAB).await;
    assert!(view.seats[&2].bootstrapped.is_empty());

    emulator.behave(json!({"invocations": [healthy]})).await;
    emulator.start_recording();
    glbox(&emulator, &workspace, &["lab", "up", "--yes"]).assert_ok();
    let recorded = emulator.recorded();
    let bootstraps: Vec<&crate::common::Request> = recorded
        .iter()
        .filter(|r| r.action == "SendCommand")
        .collect();
    assert_eq!(
        bootstraps.len(),
        2,
        "one bootstrap and one check, for s02 only"
    );
    let view = lab_view(&emulator, LAB).await;
    assert!(bootstraps[0].body.contains(&view.seats[&2].instances[0]));
    assert_eq!(view.seats[&2].bootstrapped.len(), 1);
}

/// `lab down` leaves nothing of the lab, and a second one has nothing to do.
#[tokio::test]
async fn lab_down_leaves_nothing_of_the_lab() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(LAB, 3, ""));
    lab_up_aws_only(&emulator, &workspace);
    glbox(&emulator, &workspace, &["lab", "down", "--yes"]).assert_ok();
    let view = lab_view(&emulator, LAB).await;
    assert!(view.seats.is_empty(), "{view:?}");
    assert!(view.instances_without_seat.is_empty());
    assert!(view.security_groups.is_empty() && view.parameters.is_empty());
    assert!(!view.role && !view.profile);
    emulator.start_recording();
    let again = glbox(&emulator, &workspace, &["lab", "down", "--yes"]);
    again.assert_ok();
    assert!(again.stdout.contains("nothing to remove"));
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

/// Makes a lab look expired: its resources' expiry tags set in the past
/// (what time passing would do), out of band.
async fn expire(emulator: &Emulator, lab: &str) {
    let ec2 = emulator.ec2();
    let mut ids: Vec<String> = Vec::new();
    let instances = ec2
        .describe_instances()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    ids.extend(
        instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| i.instance_id().unwrap().to_string()),
    );
    let volumes = ec2
        .describe_volumes()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    ids.extend(
        volumes
            .volumes()
            .iter()
            .map(|v| v.volume_id().unwrap().to_string()),
    );
    let groups = ec2
        .describe_security_groups()
        .filters(lab_filter(lab))
        .send()
        .await
        .unwrap();
    ids.extend(
        groups
            .security_groups()
            .iter()
            .map(|g| g.group_id().unwrap().to_string()),
    );
    ec2.create_tags()
        .set_resources(Some(ids))
        .tags(
            Tag::builder()
                .key("glbox:expires-at")
                .value("2026-01-01T00:00:00Z")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// `reap` removes the expired lab and leaves an unexpired lab and a single
/// box alone; `lab up` of another lab warns about the expired one first.
#[tokio::test]
async fn reap_removes_expired_labs_only() {
    let emulator = Emulator::start();
    let old = Workspace::new(&lab_config("old", 2, ""));
    let new = Workspace::new(&lab_config("new", 1, ""));
    let single = Workspace::new("name = \"solo\"\n");
    lab_up_aws_only(&emulator, &old);
    glbox(&emulator, &single, &["up", "--yes", "--no-bootstrap"]).assert_ok();
    expire(&emulator, "old").await;

    let warned = glbox(&emulator, &new, &["lab", "up", "--yes", "--no-bootstrap"]);
    warned.assert_ok();
    assert!(warned.stderr.contains("lab \"old\""), "{}", warned.stderr);

    let reap = glbox(
        &emulator,
        &new,
        &["lab", "reap", "--yes", "--output", "json"],
    );
    reap.assert_ok();
    assert_eq!(reap.json()["reaped"], json!(["old"]));
    let old_view = lab_view(&emulator, "old").await;
    assert!(old_view.seats.is_empty() && old_view.security_groups.is_empty());
    assert!(!old_view.role);
    assert_complete(&lab_view(&emulator, "new").await, "new", 1, false);
    let solo = crate::common::running_instance(&emulator, "solo").await;
    assert_eq!(solo.state().unwrap().name().unwrap().as_str(), "running");
}

/// A crash between the launch and the seat tags leaves lab instances
/// without a seat: the next run gives them to the seats instead of
/// launching more.
#[tokio::test]
async fn instances_launched_but_not_yet_seated_are_adopted() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(LAB, 3, ""));
    lab_up_aws_only(&emulator, &workspace);
    let before = lab_view(&emulator, LAB).await;
    let orphan = before.seats[&2].instances[0].clone();
    emulator
        .ec2()
        .delete_tags()
        .resources(&orphan)
        .tags(Tag::builder().key("glbox:seat").build())
        .send()
        .await
        .unwrap();
    emulator.start_recording();
    lab_up_aws_only(&emulator, &workspace);
    let actions = emulator.recorded_actions();
    assert_eq!(count(&actions, "RunInstances"), 0, "{actions:?}");
    let after = lab_view(&emulator, LAB).await;
    assert_complete(&after, LAB, 3, false);
    assert_eq!(after.seats[&2].instances, vec![orphan]);
}

fn errors_of(run: &Run) -> &str {
    &run.stderr
}

/// Lab settings are checked before any AWS call, with the field and fix.
#[tokio::test]
async fn bad_lab_settings_are_refused_before_any_aws_call() {
    let emulator = Emulator::start();
    let cases = [
        ("[lab]\nname = \"class\"\nseats = 3\n", "lab.expires_in"),
        ("[lab]\nname = \"class\"\nexpires_in = \"8h\"\n", "lab.seats"),
        ("[lab]\nname = \"class\"\nseats = 500\nexpires_in = \"8h\"\n", "lab.seats"),
        ("[lab]\nname = \"class\"\nseats = 3\nexpires_in = \"soon\"\n", "lab.expires_in"),
        (
            "[lab]\nname = \"class\"\nseats = 3\nexpires_in = \"8h\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"192.0.2.0/24\"]\n",
            "access.method",
        ),
        (
            "[lab]\nname = \"class\"\nseats = 3\nexpires_in = \"8h\"\n[gitlab]\nexternal_url = \"https://git.example.com\"\n",
            "gitlab.external_url",
        ),
        ("name = \"solo\"\n", "lab"),
    ];
    for (config, field) in cases {
        let workspace = Workspace::new(config);
        emulator.start_recording();
        let run = glbox(&emulator, &workspace, &["lab", "up", "--yes"]);
        assert_eq!(run.code, 2, "{config}: {}", errors_of(&run));
        assert!(
            errors_of(&run).contains(field),
            "{config}: {}",
            errors_of(&run)
        );
        assert!(errors_of(&run).contains("fix:"), "{}", errors_of(&run));
        assert_eq!(
            emulator.recorded_actions(),
            Vec::<String>::new(),
            "{config}"
        );
    }
    let lab_file = Workspace::new(&lab_config(LAB, 2, ""));
    let single = glbox(&emulator, &lab_file, &["up", "--yes"]);
    assert_eq!(single.code, 2);
    assert!(single.stderr.contains("glbox lab up"), "{}", single.stderr);
}

/// The documented example is a valid lab configuration.
#[test]
fn the_example_lab_configuration_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
    let (settings, raw) = glbox::config::load_lab(&glbox::config::Sources {
        explicit_file: Some(path),
        ..glbox::config::Sources::default()
    })
    .unwrap();
    let lab = glbox::lab::settings::validate(&settings, raw).unwrap();
    assert_eq!((lab.name.as_str(), lab.seats), ("gitlab-101", 25));
    assert_eq!(settings.name, "gitlab-101");
    assert_eq!(settings.instance_type, "c5.xlarge");
}

/// A crash at every safe point of `lab up` (test builds stop the process
/// there, as a kill would) is finished by the next `lab up`: exactly the
/// seats asked for, nothing twice.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_crashed_lab_up_is_finished_by_the_next() {
    for step in [
        "lab-shared",
        "lab-volumes",
        "lab-instances",
        "lab-volumes-attached",
        "lab-addresses",
    ] {
        let emulator = Emulator::start();
        let workspace = Workspace::new(&lab_config(LAB, 3, WITH_EIPS));
        let crashed = crate::common::glbox_with_env(
            &emulator,
            &workspace,
            &["lab", "up", "--yes", "--no-bootstrap"],
            &[("GLBOX_FAILPOINT", step)],
        );
        assert_eq!(crashed.code, 137, "{step}: {}", crashed.stderr);
        lab_up_aws_only(&emulator, &workspace);
        assert_complete(&lab_view(&emulator, LAB).await, LAB, 3, true);
    }
}

/// On the emulator's timeline (a box takes its real minutes to boot, get
/// its SSM agent Online, install and start GitLab, on a clock 60 times
/// faster, and glbox's waits run on the same clock): every seat's
/// bootstrap is sent before any of them is read back, so the class
/// installs at once; and the polls go to the shared listing, so each
/// invocation's output is read exactly once.
#[tokio::test]
async fn every_seat_installs_at_once_and_ssm_is_read_for_the_class() {
    const SEATS: usize = 12;
    const SCALE: &str = "60";
    let emulator = Emulator::start();
    emulator
        .behave(json!({
            "timeline": {"scale": SCALE.parse::<f64>().unwrap()},
            "invocations": [{"contains": "# glbox verify:", "status": "Success",
                "stdout": crate::common::healthy_verify_output("18.6.0")}],
        }))
        .await;
    let workspace = Workspace::new(&lab_config(LAB, SEATS as u16, ""));
    emulator.start_recording();
    crate::common::glbox_with_env(
        &emulator,
        &workspace,
        &["lab", "up", "--yes"],
        &[("GLBOX_CLOCK_SCALE", SCALE)],
    )
    .assert_ok();
    let recorded = emulator.recorded();
    let view = lab_view(&emulator, LAB).await;
    assert_complete(&view, LAB, SEATS as u16, false);

    let sent_bootstraps: Vec<usize> = recorded
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action == "SendCommand" && r.body.contains("GitLab bootstrap"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sent_bootstraps.len(), SEATS, "one bootstrap per seat");
    let first_read = recorded
        .iter()
        .position(|r| r.action == "GetCommandInvocation")
        .expect("outputs are read");
    assert!(
        sent_bootstraps.iter().all(|&i| i < first_read),
        "every seat's bootstrap was sent before the first one ended"
    );
    let actions: Vec<String> = recorded.iter().map(|r| r.action.clone()).collect();
    assert_eq!(
        count(&actions, "GetCommandInvocation"),
        count(&actions, "SendCommand"),
        "each invocation's output is read once, when it has ended"
    );
    assert!(count(&actions, "ListCommandInvocations") >= 1);
    let agent_reads: Vec<&str> = recorded
        .iter()
        .filter(|r| r.action == "DescribeInstanceInformation")
        .map(|r| r.body.as_str())
        .collect();
    let agents_read: BTreeSet<&str> = agent_reads
        .iter()
        .flat_map(|body| body.split('"').filter(|part| part.starts_with("i-")))
        .collect();
    assert_eq!(agents_read.len(), SEATS, "every seat's agent is read");
    assert!(
        agent_reads.len() < SEATS,
        "reads cover many seats each, not one a seat: {agent_reads:?}"
    );
}
