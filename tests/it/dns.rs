//! The external URL's DNS record, end to end: the glbox binary against the
//! moto emulator (Route 53 and SSM through the real SDK) and, for the path
//! without a hosted zone, a DNS server on 127.0.0.1
//! (tests/emulator/dns_server.py) standing in for public resolvers.
//!
//! Covered: with `dns.route53_zone_id` the A record and its ownership mark
//! are in Route 53 and INSYNC (the launcher keeps changes PENDING for two
//! GetChange polls) before the bootstrap is sent, a second `up` changes
//! nothing, `plan`/`status` JSON show the record; a record someone else
//! made is refused before anything is made; `down` removes only its own.
//! Without a zone `up` prints the record and waits until the resolver
//! answers with the Elastic IP; `--no-wait-dns` installs with Let's
//! Encrypt off and a later `up` turns it on, while `verify` names "DNS
//! does not point at this box" as the cause; Let's Encrypt with port 80
//! not open to the internet is refused with no AWS request at all.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::{glbox, glbox_with_env, mutating, Emulator, Run, Workspace};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use base64::Engine;

const HOST: &str = "git.example.com";
const OWNER_MARK: &str = "\"glbox:deployment=trial region=us-east-1\"";

/// The DNS server of tests/emulator/dns_server.py, answering from a JSON
/// file the test rewrites.
struct Resolver {
    _child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: tempfile::TempDir,
}

impl Resolver {
    fn start() -> Resolver {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emulator/dns_server.py");
        let mut command = Command::new(crate::common::harness_python());
        command
            .arg(script)
            .arg(dir.path().join("records.json"))
            .arg(dir.path().join("queries.log"))
            .stderr(Stdio::null());
        let (child, stdin, port) = crate::common::start_port_printer(command, "DNS server");
        Resolver {
            _child: child,
            _stdin: stdin,
            port,
            dir,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn publish(&self, host: &str, address: &str) {
        let records = serde_json::json!({ host: [address] });
        std::fs::write(self.path("records.json"), records.to_string()).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The names glbox asked for, in order.
    fn queries(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("queries.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A hosted zone for example.com; returns its bare id.
async fn zone(emulator: &Emulator) -> String {
    let zone = emulator
        .route53()
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("glbox-dns-test")
        .send()
        .await
        .unwrap();
    zone.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}

async fn add_record(emulator: &Emulator, zone_id: &str, name: &str, kind: RrType, value: &str) {
    emulator
        .route53()
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Create)
                        .resource_record_set(
                            ResourceRecordSet::builder()
                                .name(format!("{name}."))
                                .r#type(kind)
                                .ttl(600)
                                .resource_records(
                                    ResourceRecord::builder().value(value).build().unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// The values of the record set of `kind` at `name`, read from Route 53.
async fn record(emulator: &Emulator, zone_id: &str, name: &str, kind: &str) -> Option<Vec<String>> {
    let out = emulator
        .route53()
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .find(|set| set.name().trim_end_matches('.') == name && set.r#type().as_str() == kind)
        .map(|set| {
            set.resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect()
        })
}

/// The deployment's Elastic IP, read from EC2.
async fn elastic_ip(emulator: &Emulator) -> String {
    let out = emulator.ec2().describe_addresses().send().await.unwrap();
    let addresses = out.addresses();
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    addresses[0].public_ip().unwrap().to_string()
}

/// The emulator reports a healthy box to the health checks.
async fn healthy_box(emulator: &Emulator) {
    emulator
        .behave(serde_json::json!({"invocations": [
            {"contains": "# glbox verify:", "status": "Success",
             "stdout": crate::common::healthy_verify_output("18.6.0")}
        ]}))
        .await;
}

/// The gitlab.rb of every bootstrap glbox sent with SendCommand, oldest first.
async fn sent_gitlab_rbs(emulator: &Emulator) -> Vec<String> {
    let out = emulator.ssm().list_commands().send().await.unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let commands = out.commands();
    commands
        .iter()
        .filter_map(|c| {
            let command = &c.parameters()?["commands"][0];
            let script = engine.decode(command.split('\'').nth(1)?).ok()?;
            let script = String::from_utf8(script).ok()?;
            let line = script
                .lines()
                .find_map(|l| l.strip_prefix("GLBOX_GITLAB_RB_B64='"))?;
            let rb = engine.decode(line.trim_end_matches('\'')).unwrap();
            Some(String::from_utf8(rb).unwrap())
        })
        .collect()
}

fn config(extra: &str) -> String {
    format!(
        "name = \"trial\"\n{extra}\n[gitlab]\nexternal_url = \"https://{HOST}\"\n{}",
        crate::common::verify_section("")
    )
}

fn zone_config(zone_id: &str) -> String {
    config(&format!("[dns]\nroute53_zone_id = \"{zone_id}\"\n"))
}

fn position(operations: &[String], wanted: &str) -> usize {
    operations
        .iter()
        .position(|o| o.contains(wanted))
        .unwrap_or_else(|| panic!("no {wanted} in {operations:?}"))
}

#[test]
fn the_record_is_insync_in_route53_before_the_install_and_a_second_up_is_free() {
    let rt = runtime();
    let emulator = Emulator::start();
    rt.block_on(healthy_box(&emulator));
    let zone_id = rt.block_on(zone(&emulator));
    let workspace = Workspace::new(&zone_config(&zone_id));

    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    run.assert_ok();
    let operations = emulator.recorded_operations();
    let address = rt.block_on(elastic_ip(&emulator));
    assert_eq!(
        rt.block_on(record(&emulator, &zone_id, HOST, "A")),
        Some(vec![address.clone()])
    );
    assert_eq!(
        rt.block_on(record(
            &emulator,
            &zone_id,
            &format!("_glbox.{HOST}"),
            "TXT"
        )),
        Some(vec![OWNER_MARK.to_string()])
    );
    // The emulator keeps a change PENDING for two polls: glbox asked until
    // INSYNC, all before the bootstrap went to the box.
    let change = position(&operations, "ChangeResourceRecordSets");
    let install = position(&operations, "SendCommand");
    let polls = operations[change..install]
        .iter()
        .filter(|o| *o == "GetChange")
        .count();
    assert_eq!(polls, 3, "PENDING, PENDING, INSYNC: {operations:?}");
    assert!(position(&operations, "AssociateAddress") < change);
    let rbs = rt.block_on(sent_gitlab_rbs(&emulator));
    assert!(
        rbs[0].contains("letsencrypt['enable'] = true\n"),
        "{}",
        rbs[0]
    );
    assert!(run
        .stdout
        .contains(&format!("DNS record:  {HOST} A {address} (in Route 53)")));

    emulator.start_recording();
    glbox(&emulator, &workspace, &["up", "--yes"]).assert_ok();
    assert_eq!(
        mutating(&emulator.recorded_operations()),
        Vec::<String>::new()
    );

    let plan = glbox(&emulator, &workspace, &["plan", "--output", "json"]);
    let plan = plan.assert_ok().json();
    let item = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "dns_record")
        .cloned()
        .unwrap();
    assert_eq!(item["name"], HOST);
    assert_eq!(item["action"], "no_change");
    let status = glbox(&emulator, &workspace, &["status", "--output", "json"]);
    let status = status.assert_ok().json();
    let entry = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "dns_record")
        .cloned()
        .unwrap();
    assert_eq!(entry["state"], format!("A {address} in Route 53"));
    assert_eq!(status["complete"], true);
}

#[test]
fn a_record_someone_else_made_is_refused_before_anything_is_made() {
    let rt = runtime();
    let emulator = Emulator::start();
    let zone_id = rt.block_on(zone(&emulator));
    rt.block_on(add_record(
        &emulator,
        &zone_id,
        HOST,
        RrType::A,
        "198.51.100.1",
    ));
    let workspace = Workspace::new(&zone_config(&zone_id));

    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "already has a A record for git.example.com (198.51.100.1) that glbox did not make"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fix: "), "{}", run.stderr);
    assert_eq!(
        mutating(&emulator.recorded_operations()),
        Vec::<String>::new()
    );
    assert_eq!(
        rt.block_on(record(&emulator, &zone_id, HOST, "A")),
        Some(vec!["198.51.100.1".to_string()])
    );
}

#[test]
fn down_removes_its_own_record_and_nothing_else() {
    let rt = runtime();
    let emulator = Emulator::start();
    let zone_id = rt.block_on(zone(&emulator));
    rt.block_on(add_record(
        &emulator,
        &zone_id,
        "www.example.com",
        RrType::A,
        "192.0.2.10",
    ));
    let workspace = Workspace::new(&zone_config(&zone_id));
    glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]).assert_ok();
    let address = rt.block_on(elastic_ip(&emulator));
    assert_eq!(
        rt.block_on(record(&emulator, &zone_id, HOST, "A")),
        Some(vec![address])
    );

    // Another deployment for the same name does not own the record.
    let other =
        Workspace::new(&zone_config(&zone_id).replace("name = \"trial\"", "name = \"other\""));
    let run = glbox(&emulator, &other, &["down", "--yes"]);
    run.assert_ok();
    assert!(rt
        .block_on(record(&emulator, &zone_id, HOST, "A"))
        .is_some());

    glbox(&emulator, &workspace, &["down", "--yes"]).assert_ok();
    assert_eq!(rt.block_on(record(&emulator, &zone_id, HOST, "A")), None);
    assert_eq!(
        rt.block_on(record(
            &emulator,
            &zone_id,
            &format!("_glbox.{HOST}"),
            "TXT"
        )),
        None
    );
    assert_eq!(
        rt.block_on(record(&emulator, &zone_id, "www.example.com", "A")),
        Some(vec!["192.0.2.10".to_string()])
    );
}

#[test]
fn without_a_zone_up_prints_the_record_and_waits_until_public_dns_answers() {
    let rt = runtime();
    let emulator = Emulator::start();
    rt.block_on(healthy_box(&emulator));
    let resolver = Resolver::start();
    let workspace = Workspace::new(&config(""));
    let env = [("GLBOX_TEST_RESOLVER", resolver.address())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let run: Run = std::thread::scope(|scope| {
        // The user publishes the record once glbox has asked twice and
        // been told the name does not exist.
        scope.spawn(|| {
            let rt = runtime();
            let started = std::time::Instant::now();
            while resolver.queries().len() < 2 && started.elapsed().as_secs() < 120 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let address = rt.block_on(elastic_ip(&emulator));
            resolver.publish(HOST, &address);
        });
        glbox_with_env(&emulator, &workspace, &["up", "--yes"], &env)
    });
    run.assert_ok();
    let address = rt.block_on(elastic_ip(&emulator));
    assert!(
        run.stderr.contains(&format!(
            "publish this DNS record for GitLab's name (name, type, value): {HOST} A {address}"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "waiting for public DNS to answer {HOST} A {address}"
        )),
        "{}",
        run.stderr
    );
    let queries = resolver.queries();
    assert!(queries.len() >= 3, "{queries:?}");
    assert!(queries.iter().all(|q| q == HOST), "{queries:?}");
    let rbs = rt.block_on(sent_gitlab_rbs(&emulator));
    assert_eq!(rbs.len(), 1);
    assert!(
        rbs[0].contains("letsencrypt['enable'] = true\n"),
        "{}",
        rbs[0]
    );
}

#[test]
fn no_wait_dns_installs_without_letsencrypt_and_a_later_up_turns_it_on() {
    let rt = runtime();
    let emulator = Emulator::start();
    rt.block_on(healthy_box(&emulator));
    let resolver = Resolver::start();
    let workspace = Workspace::new(&config(""));
    let env = [("GLBOX_TEST_RESOLVER", resolver.address())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let run = glbox_with_env(
        &emulator,
        &workspace,
        &["up", "--yes", "--no-wait-dns"],
        &env,
    );
    run.assert_ok();
    assert!(
        run.stderr.contains("installing with Let's Encrypt off"),
        "{}",
        run.stderr
    );
    let rbs = rt.block_on(sent_gitlab_rbs(&emulator));
    assert_eq!(rbs.len(), 1);
    assert!(
        rbs[0].contains("letsencrypt['enable'] = false\n"),
        "{}",
        rbs[0]
    );
    assert!(rbs[0].contains(&format!("external_url 'https://{HOST}'")));

    // verify names the cause of the missing certificate.
    let verify = glbox_with_env(&emulator, &workspace, &["verify"], &env);
    assert_eq!(verify.code, 1, "{}\n{}", verify.stdout, verify.stderr);
    assert!(
        verify.stdout.contains(&format!(
            "DNS does not point at this box: {HOST} should be {}; 127.0.0.1 has no A record for {HOST}",
            rt.block_on(elastic_ip(&emulator))
        )),
        "{}",
        verify.stdout
    );

    // DNS still not there: nothing to do.
    emulator.start_recording();
    glbox_with_env(
        &emulator,
        &workspace,
        &["up", "--yes", "--no-wait-dns"],
        &env,
    )
    .assert_ok();
    assert_eq!(
        mutating(&emulator.recorded_operations()),
        Vec::<String>::new()
    );
    assert!(!resolver.queries().is_empty(), "glbox asked the resolver");

    // Published: the next up installs again, with Let's Encrypt on.
    resolver.publish(HOST, &rt.block_on(elastic_ip(&emulator)));
    glbox_with_env(
        &emulator,
        &workspace,
        &["up", "--yes", "--no-wait-dns"],
        &env,
    )
    .assert_ok();
    let rbs = rt.block_on(sent_gitlab_rbs(&emulator));
    assert_eq!(rbs.len(), 2, "a second install");
    assert!(
        rbs[1].contains("letsencrypt['enable'] = true\n"),
        "{}",
        rbs[1]
    );
}

#[test]
fn letsencrypt_with_port_80_closed_to_the_internet_is_refused_before_any_aws_request() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(&config("[network]\nhttp_cidrs = [\"10.0.0.0/8\"]\n"));
    emulator.start_recording();
    let run = glbox(&emulator, &workspace, &["up", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("network.http_cidrs = \"10.0.0.0/8\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fix: add \"0.0.0.0/0\""),
        "{}",
        run.stderr
    );
    assert_eq!(emulator.recorded_operations(), Vec::<String>::new());
}
