//! The account's quotas and subnets, as a real account has them: the
//! emulator enforces a new account's 5 Elastic IPs and the Standard vCPU
//! quotas (tests/emulator/moto_launcher.py, `add_quotas`), and assigns
//! public IPv4 addresses as each subnet's MapPublicIpOnLaunch says. glbox
//! must check before it changes anything, and reach the internet from any
//! subnet it accepts. Outcomes are read back through the AWS API.

use crate::common::{glbox, mutating, Emulator, Run, Workspace};
use aws_sdk_ec2::types::{Filter, Instance};
use serde_json::json;

fn lab_config(seats: u16, extra: &str) -> String {
    format!(
        "[lab]\nname = \"class\"\nseats = {seats}\nexpires_in = \"8h\"\n{extra}\n{}",
        crate::common::verify_section("")
    )
}

/// Every live instance in the region.
async fn instances(emulator: &Emulator) -> Vec<Instance> {
    let out = emulator
        .ec2()
        .describe_instances()
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
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect()
}

async fn address_count(emulator: &Emulator) -> usize {
    let out = emulator.ec2().describe_addresses().send().await.unwrap();
    out.addresses().len()
}

/// Refused with exit status 2, the numbers and the fix, nothing changed.
fn assert_refused(run: &Run, mutated: &[String], expected: &[&str]) {
    assert_eq!(
        run.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    for text in expected {
        assert!(
            run.stderr.contains(text),
            "{text:?} missing:\n{}",
            run.stderr
        );
    }
    assert_eq!(mutated, Vec::<String>::new(), "nothing may change");
}

#[tokio::test]
async fn a_25_seat_lab_with_elastic_ips_is_refused_on_a_5_address_quota() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(25, "[network]\nelastic_ip = true"));
    emulator.start_recording();
    let run = glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    );
    let actions = emulator.recorded_actions();
    assert_refused(
        &run,
        &mutating(&actions),
        &[
            "25 new Elastic IP(s) needed; 0 of the account's 5 in use in us-east-1",
            "--quota-code L-0263D0A3 --desired-value 25 --region us-east-1",
            "lab.seats = 5",
            "network.elastic_ip = false",
        ],
    );
    assert!(
        actions.iter().any(|a| a == "GetServiceQuota"),
        "{actions:?}"
    );
    assert_eq!(address_count(&emulator).await, 0);
    assert!(instances(&emulator).await.is_empty());
}

#[tokio::test]
async fn a_lab_beyond_the_vcpu_quota_is_refused_and_the_emulator_enforces_it() {
    let emulator = Emulator::start();
    emulator.behave(json!({"vcpu_quota": 16})).await;
    let workspace = Workspace::new(&lab_config(3, ""));
    emulator.start_recording();
    let run = glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    );
    assert_refused(
        &run,
        &mutating(&emulator.recorded_actions()),
        &[
            "3 × c5.2xlarge need 24 vCPUs; 0 of the account's 16 standard vCPUs are in use",
            "--quota-code L-1216C47A --desired-value 24",
            "lab.seats = 2",
        ],
    );
    assert!(instances(&emulator).await.is_empty());

    // What glbox avoided: EC2 refuses the launch as a whole.
    let image = emulator
        .ec2()
        .describe_images()
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let refused = emulator
        .ec2()
        .run_instances()
        .image_id(image)
        .instance_type("c5.2xlarge".into())
        .min_count(1)
        .max_count(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&refused),
        Some("VcpuLimitExceeded")
    );
    assert!(instances(&emulator).await.is_empty());

    // Two seats fit: the same lab, made smaller, comes up.
    workspace.write_config(&lab_config(2, ""));
    glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    )
    .assert_ok();
    assert_eq!(instances(&emulator).await.len(), 2);
}

#[tokio::test]
async fn labs_default_to_no_elastic_ip_and_every_seat_still_gets_a_public_address() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&lab_config(6, ""));
    let run = glbox(
        &emulator,
        &workspace,
        &["lab", "up", "--yes", "--no-bootstrap"],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("public IPv4 assigned at launch is included: the same price with or without an Elastic IP"),
        "{}",
        run.stdout
    );
    assert_eq!(address_count(&emulator).await, 0, "no Elastic IP");
    let seats = instances(&emulator).await;
    assert_eq!(seats.len(), 6, "more seats than the address quota");
    for seat in &seats {
        assert!(seat.public_ip_address().is_some(), "{seat:?}");
    }
}

#[tokio::test]
async fn an_unreadable_quota_is_a_warning_and_up_goes_on() {
    let emulator = Emulator::start();
    emulator.behave(json!({"quota_denied": true})).await;
    let workspace = Workspace::new("name = \"trial\"\n");
    let run = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("could not read the Elastic IP quota (AccessDeniedException)")
            && run
                .stderr
                .contains("could not read the On-Demand vCPU quota (AccessDeniedException)")
            && run.stderr.contains("going on without it"),
        "{}",
        run.stderr
    );
    assert_eq!(instances(&emulator).await.len(), 1);
    assert_eq!(address_count(&emulator).await, 1);
}

#[tokio::test]
async fn up_is_refused_when_the_addresses_are_taken_and_doctor_shows_the_headroom() {
    let emulator = Emulator::start();
    for _ in 0..5 {
        emulator.ec2().allocate_address().send().await.unwrap();
    }
    let workspace = Workspace::new("name = \"trial\"\n");
    let doctor = glbox(&emulator, &workspace, &["doctor", "--output", "json"]);
    let findings = doctor.json();
    let check = |name: &str| {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == name)
            .unwrap_or_else(|| panic!("no {name}: {findings}"))
            .clone()
    };
    let addresses = check("elastic ip quota");
    assert_eq!(addresses["verdict"], "fail", "{addresses}");
    assert!(addresses["detail"]
        .as_str()
        .unwrap()
        .contains("1 new Elastic IP(s) needed; 5 of the account's 5 in use"));
    let vcpus = check("vcpu quota");
    assert_eq!(vcpus["verdict"], "ok", "{vcpus}");
    assert!(vcpus["detail"]
        .as_str()
        .unwrap()
        .contains("c5.2xlarge needs 8 vCPUs; 0 of the account's 1024"));

    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    assert_refused(
        &run,
        &mutating(&emulator.recorded_actions()),
        &[
            "5 of the account's 5",
            "--desired-value 6",
            "network.elastic_ip = false",
        ],
    );
    assert!(instances(&emulator).await.is_empty());
}

/// A subnet of the default VPC (whose main route table goes to its
/// internet gateway) that, like every non-default subnet, assigns no
/// public IPv4 at launch.
async fn subnet_without_public_ips(emulator: &Emulator, vpc: Option<&str>, cidr: &str) -> String {
    let ec2 = emulator.ec2();
    let vpc = match vpc {
        Some(vpc) => vpc.to_string(),
        None => ec2
            .describe_vpcs()
            .filters(Filter::builder().name("is-default").values("true").build())
            .send()
            .await
            .unwrap()
            .vpcs()[0]
            .vpc_id()
            .unwrap()
            .to_string(),
    };
    let subnet = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    let subnet = subnet.subnet().unwrap();
    assert_eq!(subnet.map_public_ip_on_launch(), Some(false));
    subnet.subnet_id().unwrap().to_string()
}

#[tokio::test]
async fn a_subnet_without_public_ips_gets_one_asked_at_launch() {
    let emulator = Emulator::start();
    let subnet = subnet_without_public_ips(&emulator, None, "172.31.200.0/24").await;
    // The emulator honours MapPublicIpOnLaunch: a plain launch there has
    // no public address.
    let image = emulator
        .ec2()
        .describe_images()
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let plain = emulator
        .ec2()
        .run_instances()
        .image_id(image)
        .instance_type("t3.micro".into())
        .subnet_id(&subnet)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let plain = plain.instances()[0].clone();
    assert_eq!(plain.public_ip_address(), None);
    crate::common::past_fresh_id_window().await;
    emulator
        .ec2()
        .terminate_instances()
        .instance_ids(plain.instance_id().unwrap())
        .send()
        .await
        .unwrap();

    let config = format!(
        "name = \"trial\"\n[instance]\nsubnet_id = \"{subnet}\"\n[network]\nelastic_ip = false\n"
    );
    let workspace = Workspace::new(&config);
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let launches: Vec<crate::common::Request> = emulator
        .recorded()
        .into_iter()
        .filter(|r| r.action == "RunInstances")
        .collect();
    // EC2 refuses a new instance profile for a moment, so the launch may
    // be repeated (one instance in the end, below); every try asks.
    assert!(!launches.is_empty());
    for launch in &launches {
        assert!(
            launch
                .body
                .contains("NetworkInterface.1.AssociatePublicIpAddress=true"),
            "{}",
            launch.body
        );
    }
    let boxes = instances(&emulator).await;
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0].subnet_id(), Some(subnet.as_str()));
    assert!(boxes[0].public_ip_address().is_some(), "{:?}", boxes[0]);
    assert_eq!(boxes[0].security_groups().len(), 1, "the box's group");

    // Converged: a second up changes nothing.
    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    // Labs share the launch: their seats get public addresses there too.
    let lab = Workspace::new(&format!(
        "[instance]\nsubnet_id = \"{subnet}\"\n{}",
        lab_config(2, "")
    ));
    glbox(&emulator, &lab, &["lab", "up", "--yes", "--no-bootstrap"]).assert_ok();
    let all = instances(&emulator).await;
    assert_eq!(all.len(), 3);
    for instance in &all {
        assert!(instance.public_ip_address().is_some(), "{instance:?}");
    }
}

#[tokio::test]
async fn a_subnet_without_a_way_to_the_internet_is_refused_in_plan() {
    let emulator = Emulator::start();
    let vpc = emulator
        .ec2()
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let subnet = subnet_without_public_ips(&emulator, Some(&vpc), "10.20.1.0/24").await;
    let workspace = Workspace::new(&format!(
        "name = \"trial\"\n[instance]\nsubnet_id = \"{subnet}\"\n"
    ));
    emulator.start_recording();
    let plan = glbox(&emulator, &workspace, &["plan"]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(
        plan.stderr.contains(&subnet)
            && plan.stderr.contains("has no route to the internet")
            && plan.stderr.contains("NAT gateway")
            && plan.stderr.contains("ssmmessages"),
        "{}",
        plan.stderr
    );
    let up = glbox(&emulator, &workspace, &["up", "--yes", "--no-bootstrap"]);
    assert_eq!(up.code, 1, "{}", up.stderr);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
    assert!(instances(&emulator).await.is_empty());
}
