//! The AWS side of one deployment, end to end: the glbox binary against the
//! moto emulator, every outcome checked through the AWS API.

use crate::common::{glbox, glbox_with_env, mutating, Emulator, Workspace};
use aws_sdk_ec2::types::{Filter, Instance, Volume};
use base64::Engine;

const TRIAL: &str = "name = \"trial\"\n";

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

async fn live_instances(ec2: &aws_sdk_ec2::Client, name: &str) -> Vec<Instance> {
    let out = ec2
        .describe_instances()
        .filters(tag_filter("glbox:deployment", name))
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .cloned()
        .collect()
}

async fn volumes(ec2: &aws_sdk_ec2::Client, name: &str, role: &str) -> Vec<Volume> {
    ec2.describe_volumes()
        .filters(tag_filter("glbox:deployment", name))
        .filters(tag_filter("glbox:role", role))
        .send()
        .await
        .unwrap()
        .volumes()
        .to_vec()
}

async fn security_groups(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    ec2.describe_security_groups()
        .filters(tag_filter("glbox:deployment", name))
        .send()
        .await
        .unwrap()
        .security_groups()
        .to_vec()
}

async fn addresses(ec2: &aws_sdk_ec2::Client, name: &str) -> Vec<aws_sdk_ec2::types::Address> {
    ec2.describe_addresses()
        .filters(tag_filter("glbox:deployment", name))
        .send()
        .await
        .unwrap()
        .addresses()
        .to_vec()
}

/// Ingress rules as (port, cidr) pairs, sorted.
fn ingress(group: &aws_sdk_ec2::types::SecurityGroup) -> Vec<(i32, String)> {
    let mut rules: Vec<(i32, String)> = group
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            let port = p.from_port().unwrap_or(-1);
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip())
                .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
                .map(move |c| (port, c.to_string()))
        })
        .collect();
    rules.sort();
    rules
}

/// The ids of the single instance, security group, data volume and Elastic
/// IP of a deployment that `up` just created.
struct Ids {
    instance: String,
    group: String,
    volume: String,
    public_ip: String,
}

async fn ids(ec2: &aws_sdk_ec2::Client, name: &str) -> Ids {
    let text = |value: Option<&str>| value.expect("created by up").to_string();
    Ids {
        instance: text(live_instances(ec2, name).await[0].instance_id()),
        group: text(security_groups(ec2, name).await[0].group_id()),
        volume: text(volumes(ec2, name, "data").await[0].volume_id()),
        public_ip: text(addresses(ec2, name).await[0].public_ip()),
    }
}

fn up(emulator: &Emulator, workspace: &Workspace) -> crate::common::Run {
    let run = glbox(emulator, workspace, &["up", "--no-bootstrap", "--yes"]);
    run.assert_ok();
    run
}

#[tokio::test]
async fn up_creates_exactly_one_complete_deployment() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    emulator.start_recording();
    up(&emulator, &workspace);
    let requests = emulator.recorded();
    let ec2 = emulator.ec2();

    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances.len(), 1, "exactly one instance");
    let instance = &instances[0];
    let instance_id = instance.instance_id().unwrap();
    assert_eq!(instance.instance_type().unwrap().as_str(), "c5.2xlarge");
    assert_eq!(tag(instance.tags(), "Name"), Some("glbox-trial"));
    assert_eq!(tag(instance.tags(), "glbox:managed-by"), Some("glbox"));
    assert_eq!(tag(instance.tags(), "glbox:os"), Some("ubuntu-24.04"));
    let metadata = instance.metadata_options().unwrap();
    assert_eq!(metadata.http_tokens().unwrap().as_str(), "required");
    assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
    assert!(instance
        .iam_instance_profile()
        .unwrap()
        .arn()
        .unwrap()
        .ends_with("/glbox-trial-us-east-1"));
    assert!(
        instance.key_name().is_none(),
        "SSM mode launches without a key pair"
    );

    // User data: base64 of a cloud-config, read back through the API.
    let attribute = ec2
        .describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(attribute.user_data().unwrap().value().unwrap())
        .unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    assert!(user_data.starts_with("#cloud-config\n"));

    let roots = volumes(&ec2, "trial", "root").await;
    assert_eq!(roots.len(), 1, "the root volume is tagged at launch");
    assert_eq!(roots[0].encrypted(), Some(true));
    assert_eq!(roots[0].volume_type().unwrap().as_str(), "gp3");
    assert_eq!(roots[0].size(), Some(50));

    let data = volumes(&ec2, "trial", "data").await;
    assert_eq!(data.len(), 1);
    let data = &data[0];
    assert_eq!(data.encrypted(), Some(true));
    assert_eq!(data.volume_type().unwrap().as_str(), "gp3");
    assert_eq!(
        (data.size(), data.iops(), data.throughput()),
        (Some(100), Some(3000), Some(125))
    );
    assert_eq!(
        data.availability_zone(),
        instance.placement().unwrap().availability_zone()
    );
    let attachment = &data.attachments()[0];
    assert_eq!(attachment.instance_id(), Some(instance_id));
    assert_eq!(attachment.device(), Some("/dev/sdf"));
    let volume_id = data.volume_id().unwrap();
    assert!(
        user_data.contains(&format!("glbox-prepare-data '{volume_id}' /var/opt/gitlab")),
        "the user data mounts the data volume by its id"
    );
    let rendered = glbox(&emulator, &workspace, &["render", "user-data"]);
    rendered.assert_ok();
    assert_eq!(
        rendered.stdout, user_data,
        "render shows exactly what was sent"
    );

    let groups = security_groups(&ec2, "trial").await;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        ingress(&groups[0]),
        vec![
            (80, "0.0.0.0/0".to_string()),
            (80, "::/0".to_string()),
            (443, "0.0.0.0/0".to_string()),
            (443, "::/0".to_string())
        ],
        "HTTP(S) only: no port 22 in SSM mode"
    );
    assert!(instance
        .security_groups()
        .iter()
        .any(|g| g.group_id() == groups[0].group_id()));

    let eips = addresses(&ec2, "trial").await;
    assert_eq!(eips.len(), 1);
    assert_eq!(eips[0].instance_id(), Some(instance_id));

    let iam = emulator.iam();
    let role = iam
        .get_role()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert!(role
        .tags()
        .iter()
        .any(|t| t.key() == "glbox:deployment" && t.value() == "trial"));
    let attached = iam
        .list_attached_role_policies()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap();
    // No managed policy: AmazonSSMManagedInstanceCore would let the box
    // read every parameter of the account (tests/it/iam_policy.rs evaluates
    // the role's whole effective policy).
    assert!(
        attached.attached_policies().is_empty(),
        "{:?}",
        attached.attached_policies()
    );
    let inline = iam
        .get_role_policy()
        .role_name("glbox-trial-us-east-1")
        .policy_name("glbox-own-parameters")
        .send()
        .await
        .unwrap();
    let document = glbox::aws::iam::parse_policy(inline.policy_document()).unwrap();
    assert_eq!(
        document["Statement"][0]["Resource"][0], "arn:aws:ssm:us-east-1:*:parameter/glbox/trial/*",
        "the instance may read only its own parameters"
    );
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap();
    assert_eq!(profile.roles()[0].role_name(), "glbox-trial-us-east-1");

    // Tags at launch, a client token, and never a separate CreateTags.
    let run = requests
        .iter()
        .find(|r| r.action == "RunInstances")
        .unwrap();
    assert!(
        run.body
            .contains("TagSpecification.1.ResourceType=instance"),
        "{}",
        run.body
    );
    assert!(
        run.body.contains("ClientToken=glbox-trial-"),
        "{}",
        run.body
    );
    assert!(!requests.iter().any(|r| r.action == "CreateTags"));
    let key_pairs = ec2.describe_key_pairs().send().await.unwrap();
    assert!(key_pairs.key_pairs().is_empty(), "no key pair in SSM mode");
}

#[tokio::test]
async fn a_second_up_makes_zero_mutating_calls() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);

    emulator.start_recording();
    let again = up(&emulator, &workspace);
    let actions = emulator.recorded_actions();
    assert!(!actions.is_empty(), "the second up still looks");
    assert_eq!(
        mutating(&actions),
        Vec::<String>::new(),
        "all calls: {actions:?}"
    );
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    let plan = glbox(
        &emulator,
        &workspace,
        &["plan", "--no-bootstrap", "--output", "json"],
    );
    plan.assert_ok();
    let plan = plan.json();
    assert_eq!(plan["changes"], false);
    assert!(plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["action"] == "no_change"));
}

#[tokio::test]
async fn out_of_band_changes_are_repaired_in_place() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let Ids {
        instance: instance_id,
        group: group_id,
        volume: volume_id,
        ..
    } = ids(&ec2, "trial").await;

    // Someone removes an HTTPS rule and opens SSH to the world.
    ec2.revoke_security_group_ingress()
        .group_id(&group_id)
        .ip_protocol("tcp")
        .from_port(443)
        .to_port(443)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&group_id)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    // ...detaches the data volume, disassociates the address, attaches a
    // managed policy to the role, and stops the instance.
    ec2.detach_volume()
        .volume_id(&volume_id)
        .instance_id(&instance_id)
        .send()
        .await
        .unwrap();
    let eip = &addresses(&ec2, "trial").await[0];
    ec2.disassociate_address()
        .association_id(eip.association_id().unwrap())
        .send()
        .await
        .unwrap();
    emulator
        .iam()
        .attach_role_policy()
        .role_name("glbox-trial-us-east-1")
        .policy_arn("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
        .send()
        .await
        .unwrap();
    ec2.stop_instances()
        .instance_ids(&instance_id)
        .send()
        .await
        .unwrap();

    let plan = glbox(
        &emulator,
        &workspace,
        &["plan", "--no-bootstrap", "--output", "json"],
    );
    plan.assert_ok();
    let plan = plan.json();
    let action = |resource: &str| {
        plan["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == resource)
            .unwrap()["action"]
            .clone()
    };
    for resource in [
        "security_group",
        "iam_role",
        "instance",
        "data_volume",
        "elastic_ip",
    ] {
        assert_eq!(action(resource), "update", "{resource}: {plan}");
    }

    up(&emulator, &workspace);
    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0].instance_id(),
        Some(instance_id.as_str()),
        "repaired, not replaced"
    );
    assert_eq!(
        instances[0].state().unwrap().name().unwrap().as_str(),
        "running"
    );
    let group = &security_groups(&ec2, "trial").await[0];
    assert!(
        !ingress(group).iter().any(|(port, _)| *port == 22),
        "the foreign SSH rule is gone"
    );
    assert!(ingress(group).contains(&(443, "0.0.0.0/0".to_string())));
    let data = &volumes(&ec2, "trial", "data").await[0];
    assert_eq!(
        data.attachments()[0].instance_id(),
        Some(instance_id.as_str())
    );
    assert_eq!(
        addresses(&ec2, "trial").await[0].instance_id(),
        Some(instance_id.as_str())
    );
    let attached = emulator
        .iam()
        .list_attached_role_policies()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .unwrap();
    assert!(
        attached.attached_policies().is_empty(),
        "the managed policy is detached: {:?}",
        attached.attached_policies()
    );

    emulator.start_recording();
    up(&emulator, &workspace);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

#[tokio::test]
async fn a_terminated_instance_is_relaunched_onto_the_same_data_and_address() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let Ids {
        instance: old,
        volume: volume_id,
        public_ip: address,
        ..
    } = ids(&ec2, "trial").await;

    ec2.terminate_instances()
        .instance_ids(&old)
        .send()
        .await
        .unwrap();
    up(&emulator, &workspace);

    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances.len(), 1);
    let new = instances[0].instance_id().unwrap();
    assert_ne!(new, old);
    let data = volumes(&ec2, "trial", "data").await;
    assert_eq!(data.len(), 1, "the data volume is reused, not duplicated");
    assert_eq!(data[0].volume_id(), Some(volume_id.as_str()));
    assert_eq!(data[0].attachments()[0].instance_id(), Some(new));
    let eips = addresses(&ec2, "trial").await;
    assert_eq!(eips.len(), 1);
    assert_eq!(
        eips[0].public_ip(),
        Some(address.as_str()),
        "the same public address"
    );
    assert_eq!(eips[0].instance_id(), Some(new));
}

#[tokio::test]
async fn a_released_address_is_replaced_and_a_disabled_one_released() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let instance_id = ids(&ec2, "trial").await.instance;
    let old = addresses(&ec2, "trial").await[0].clone();
    ec2.disassociate_address()
        .association_id(old.association_id().unwrap())
        .send()
        .await
        .unwrap();
    ec2.release_address()
        .allocation_id(old.allocation_id().unwrap())
        .send()
        .await
        .unwrap();

    up(&emulator, &workspace);
    let eips = addresses(&ec2, "trial").await;
    assert_eq!(eips.len(), 1);
    assert_ne!(eips[0].allocation_id(), old.allocation_id());
    assert_eq!(eips[0].instance_id(), Some(instance_id.as_str()));

    workspace.write_config("name = \"trial\"\n[network]\nelastic_ip = false\n");
    up(&emulator, &workspace);
    assert!(
        addresses(&ec2, "trial").await.is_empty(),
        "no address left to pay for"
    );
    assert_eq!(
        live_instances(&ec2, "trial").await[0].instance_id(),
        Some(instance_id.as_str())
    );
}

#[tokio::test]
async fn type_change_and_volume_growth_converge_and_shrinking_is_refused() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let id = ids(&ec2, "trial").await.instance;

    workspace.write_config(
        "name = \"trial\"\n[instance]\ntype = \"c5.4xlarge\"\n[data_volume]\nsize_gib = 150\niops = 4000\n",
    );
    let plan = glbox(&emulator, &workspace, &["plan", "--no-bootstrap"]);
    plan.assert_ok();
    assert!(
        plan.stdout.contains("type c5.2xlarge -> c5.4xlarge"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("size_gib 100 -> 150"),
        "{}",
        plan.stdout
    );
    up(&emulator, &workspace);
    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].instance_id(), Some(id.as_str()));
    assert_eq!(instances[0].instance_type().unwrap().as_str(), "c5.4xlarge");
    assert_eq!(
        instances[0].state().unwrap().name().unwrap().as_str(),
        "running"
    );
    let data = &volumes(&ec2, "trial", "data").await[0];
    assert_eq!((data.size(), data.iops()), (Some(150), Some(4000)));

    workspace.write_config(
        "name = \"trial\"\n[instance]\ntype = \"c5.4xlarge\"\n[data_volume]\nsize_gib = 120\niops = 4000\n",
    );
    emulator.start_recording();
    let refused = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("cannot shrink"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("size_gib = 150"),
        "{}",
        refused.stderr
    );
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
}

/// EBS allows one modification of a volume every six hours (ModifyVolume,
/// EC2 API reference; the emulator refuses with
/// VolumeModificationRateExceeded): a second growth within that time is
/// planned "not before" the time DescribeVolumesModifications gives, and
/// `up` does everything else and completes.
#[tokio::test]
async fn a_second_volume_change_within_six_hours_waits_and_up_does_the_rest() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    workspace.write_config("name = \"trial\"\n[data_volume]\nsize_gib = 150\n");
    up(&emulator, &workspace);
    assert_eq!(volumes(&ec2, "trial", "data").await[0].size(), Some(150));

    workspace.write_config(
        "name = \"trial\"\n[instance]\ntype = \"c5.4xlarge\"\n[data_volume]\nsize_gib = 200\n",
    );
    let plan = glbox(&emulator, &workspace, &["plan", "--no-bootstrap"]);
    plan.assert_ok();
    assert!(
        plan.stdout.contains("size_gib 150 -> 200") && plan.stdout.contains("not before 20"),
        "{}",
        plan.stdout
    );
    let run = up(&emulator, &workspace);
    assert!(run.stderr.contains("is not modified now"), "{}", run.stderr);
    assert_eq!(volumes(&ec2, "trial", "data").await[0].size(), Some(150));
    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances[0].instance_type().unwrap().as_str(), "c5.4xlarge");
    assert_eq!(
        instances[0].state().unwrap().name().unwrap().as_str(),
        "running"
    );
}

#[tokio::test]
async fn a_replacement_is_planned_and_needs_confirmation() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let old = ids(&ec2, "trial").await.instance;

    workspace.write_config("name = \"trial\"\n[instance]\nos = \"al2023\"\n");
    let plan = glbox(
        &emulator,
        &workspace,
        &["plan", "--no-bootstrap", "--output", "json"],
    );
    plan.assert_ok();
    let plan = plan.json();
    let instance = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "instance")
        .unwrap()
        .clone();
    assert_eq!(instance["action"], "replace", "{plan}");
    assert_eq!(instance["id"], old.as_str());

    // No terminal and no --yes: nothing happens.
    emulator.start_recording();
    let refused = glbox(&emulator, &workspace, &["up", "--no-bootstrap"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());
    assert_eq!(
        live_instances(&ec2, "trial").await[0].instance_id(),
        Some(old.as_str())
    );

    up(&emulator, &workspace);
    let instances = live_instances(&ec2, "trial").await;
    assert_eq!(instances.len(), 1);
    assert_ne!(instances[0].instance_id(), Some(old.as_str()));
    assert_eq!(tag(instances[0].tags(), "glbox:os"), Some("al2023"));
    let data = volumes(&ec2, "trial", "data").await;
    assert_eq!(data.len(), 1);
    assert_eq!(
        data[0].attachments()[0].instance_id(),
        instances[0].instance_id()
    );
}

#[tokio::test]
async fn ssh_mode_imports_a_generated_key_and_opens_ssh_to_the_caller_only() {
    let emulator = Emulator::start();
    // A stand-in for the "what is my IP" service, over HTTPS on 127.0.0.1.
    let lookup = crate::common::tls::TlsStub::serving(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n52.95.110.1\n",
    );
    let lookup_url = lookup.url();
    let ca_file = lookup.ca_file.display().to_string();
    let workspace = Workspace::new("name = \"trial\"\n[access]\nmethod = \"ssh\"\n");
    let run = glbox_with_env(
        &emulator,
        &workspace,
        &["up", "--no-bootstrap", "--yes"],
        &[
            ("GLBOX_CALLER_IP_URL", &lookup_url),
            ("SSL_CERT_FILE", &ca_file),
        ],
    );
    run.assert_ok();
    assert!(
        run.stderr
            .contains(&format!("52.95.110.1/32 only (as {lookup_url} sees it)")),
        "where the address came from is said:\n{}",
        run.stderr
    );
    let ec2 = emulator.ec2();

    let group = &security_groups(&ec2, "trial").await[0];
    let ssh_rules: Vec<_> = ingress(group)
        .into_iter()
        .filter(|(port, _)| *port == 22)
        .collect();
    assert_eq!(ssh_rules, vec![(22, "52.95.110.1/32".to_string())]);

    let private_key = workspace.state_dir().join("glbox/trial/id_ed25519");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&private_key)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let public = std::fs::read_to_string(private_key.with_extension("pub")).unwrap();
    let pairs = ec2
        .describe_key_pairs()
        .include_public_key(true)
        .send()
        .await
        .unwrap();
    assert_eq!(pairs.key_pairs().len(), 1);
    let pair = &pairs.key_pairs()[0];
    assert_eq!(pair.key_name(), Some("glbox-trial"));
    assert_eq!(tag(pair.tags(), "glbox:deployment"), Some("trial"));
    let imported = pair
        .public_key()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert_eq!(Some(imported), public.split_whitespace().nth(1));
    assert_eq!(
        live_instances(&ec2, "trial").await[0].key_name(),
        Some("glbox-trial")
    );
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));

    // Without a reachable lookup service and without ssh_cidrs: a clear
    // error before any AWS call.
    emulator.start_recording();
    let failed = glbox(&emulator, &workspace, &["plan", "--no-bootstrap"]);
    assert_eq!(failed.code, 2);
    assert!(
        failed.stderr.contains("access.ssh_cidrs"),
        "{}",
        failed.stderr
    );
    assert!(emulator.recorded_actions().is_empty());
}

#[tokio::test]
async fn down_removes_everything_but_the_data_which_it_keeps_until_asked() {
    let emulator = Emulator::start();
    let workspace = Workspace::new(
        "name = \"trial\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"198.51.100.0/24\"]\n",
    );
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let volume_id = ids(&ec2, "trial").await.volume;

    let down = glbox(&emulator, &workspace, &["down", "--yes"]);
    down.assert_ok();
    assert!(
        down.stdout
            .contains(&format!("Kept data volume {volume_id}")),
        "{}",
        down.stdout
    );
    assert!(live_instances(&ec2, "trial").await.is_empty());
    assert!(security_groups(&ec2, "trial").await.is_empty());
    assert!(addresses(&ec2, "trial").await.is_empty());
    assert!(ec2
        .describe_key_pairs()
        .send()
        .await
        .unwrap()
        .key_pairs()
        .is_empty());
    let iam = emulator.iam();
    assert!(iam
        .get_role()
        .role_name("glbox-trial-us-east-1")
        .send()
        .await
        .is_err());
    assert!(iam
        .get_instance_profile()
        .instance_profile_name("glbox-trial-us-east-1")
        .send()
        .await
        .is_err());
    assert_eq!(
        volumes(&ec2, "trial", "data").await.len(),
        1,
        "the data volume is kept"
    );

    // Idempotent: nothing left to remove, no mutating call.
    emulator.start_recording();
    glbox(&emulator, &workspace, &["down", "--yes"]).assert_ok();
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    let delete = glbox(
        &emulator,
        &workspace,
        &["down", "--yes", "--delete-data", "--output", "json"],
    );
    delete.assert_ok();
    let report = delete.json();
    let snapshot = report["outcome"]["snapshots"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(volumes(&ec2, "trial", "data").await.is_empty());
    let snapshots = ec2
        .describe_snapshots()
        .snapshot_ids(&snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tag(snapshots.snapshots()[0].tags(), "glbox:role"),
        Some("final-snapshot")
    );
    assert_eq!(
        snapshots.snapshots()[0].volume_id(),
        Some(volume_id.as_str())
    );
}

#[tokio::test]
async fn look_alike_resources_are_never_touched() {
    let emulator = Emulator::start();
    let ec2 = emulator.ec2();
    let spec = |resource: aws_sdk_ec2::types::ResourceType, tags: &[(&str, &str)]| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .build()
    };
    // Same Name, another deployment's tag; and one with no glbox tags at all.
    let foreign = [
        ("Name", "glbox-trial-data"),
        ("glbox:deployment", "other"),
        ("glbox:managed-by", "glbox"),
        ("glbox:role", "data"),
    ];
    let untagged = [("Name", "glbox-trial-data")];
    let mut look_alikes = Vec::new();
    for tags in [&foreign[..], &untagged[..]] {
        let volume = ec2
            .create_volume()
            .availability_zone("us-east-1a")
            .size(100)
            .tag_specifications(spec(aws_sdk_ec2::types::ResourceType::Volume, tags))
            .send()
            .await
            .unwrap();
        look_alikes.push(volume.volume_id().unwrap().to_string());
    }
    let address = ec2
        .allocate_address()
        .tag_specifications(spec(
            aws_sdk_ec2::types::ResourceType::ElasticIp,
            &[
                ("Name", "glbox-trial-eip"),
                ("glbox:deployment", "trial-2"),
                ("glbox:managed-by", "glbox"),
                ("glbox:role", "elastic-ip"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let workspace = Workspace::new(TRIAL);
    up(&emulator, &workspace);
    glbox(
        &emulator,
        &workspace,
        &["down", "--yes", "--delete-data", "--no-snapshot"],
    )
    .assert_ok();

    let remaining = ec2
        .describe_volumes()
        .volume_ids(&look_alikes[0])
        .volume_ids(&look_alikes[1])
        .send()
        .await
        .unwrap();
    assert_eq!(remaining.volumes().len(), 2, "look-alike volumes survive");
    let still = ec2
        .describe_addresses()
        .allocation_ids(address.allocation_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.addresses().len(),
        1,
        "another deployment's address survives"
    );
    assert!(volumes(&ec2, "trial", "data").await.is_empty());
}

#[tokio::test]
async fn a_foreign_iam_role_with_glbox_name_is_refused_and_kept() {
    let emulator = Emulator::start();
    let iam = emulator.iam();
    iam.create_role()
        .role_name("glbox-trial-us-east-1")
        .assume_role_policy_document("{\"Version\":\"2012-10-17\",\"Statement\":[]}")
        .send()
        .await
        .unwrap();
    let workspace = Workspace::new(TRIAL);
    emulator.start_recording();
    let refused = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("glbox-trial-us-east-1 exists but is not tagged"),
        "{}",
        refused.stderr
    );
    assert_eq!(mutating(&emulator.recorded_actions()), Vec::<String>::new());

    glbox(&emulator, &workspace, &["down", "--yes"]).assert_ok();
    assert!(
        iam.get_role()
            .role_name("glbox-trial-us-east-1")
            .send()
            .await
            .is_ok(),
        "not glbox's: kept"
    );
}

#[tokio::test]
async fn aws_side_errors_are_found_before_anything_is_created() {
    let emulator = Emulator::start();
    let al2023_x86 = emulator
        .ssm()
        .get_parameter()
        .name("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    let cases = [
        (
            "name = \"trial\"\n[instance]\ntype = \"c5.9000xlarge\"\n".to_string(),
            "\"c5.9000xlarge\" does not exist in us-east-1",
        ),
        (
            format!("name = \"trial\"\n[instance]\ntype = \"m7g.large\"\nami = \"{al2023_x86}\"\n"),
            "instance.ami",
        ),
        (
            "name = \"trial\"\n[instance]\nsubnet_id = \"subnet-0123456789abcdef0\"\n".to_string(),
            "instance.subnet_id",
        ),
    ];
    for (config, expected) in cases {
        let workspace = Workspace::new(&config);
        emulator.start_recording();
        let run = glbox(&emulator, &workspace, &["up", "--no-bootstrap", "--yes"]);
        assert_eq!(run.code, 1, "{config}");
        assert!(run.stderr.contains(expected), "{config}: {}", run.stderr);
        assert!(run.stderr.contains("fix:"), "{}", run.stderr);
        assert_eq!(
            mutating(&emulator.recorded_actions()),
            Vec::<String>::new(),
            "{config}"
        );
    }
}

#[tokio::test]
async fn graviton_types_launch_arm64_images() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"arm\"\n[instance]\ntype = \"m7g.2xlarge\"\n");
    up(&emulator, &workspace);
    let ec2 = emulator.ec2();
    let instance = &live_instances(&ec2, "arm").await[0];
    let image = ec2
        .describe_images()
        .image_ids(instance.image_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(image.images()[0].architecture().unwrap().as_str(), "arm64");
}

#[tokio::test]
async fn the_caller_ip_lookup_takes_only_https_and_a_public_unicast_address() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"trial\"\n[access]\nmethod = \"ssh\"\n");
    let private = crate::common::tls::TlsStub::serving(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n10.0.0.5\n",
    );
    let ca_file = private.ca_file.display().to_string();
    emulator.start_recording();
    for (url, problem) in [
        (
            private.url(),
            "10.0.0.5, which is not a public unicast address",
        ),
        (
            format!("http://127.0.0.1:{}/", private.port),
            "only https:// lookup URLs are accepted",
        ),
    ] {
        let run = glbox_with_env(
            &emulator,
            &workspace,
            &["plan", "--no-bootstrap"],
            &[("GLBOX_CALLER_IP_URL", &url), ("SSL_CERT_FILE", &ca_file)],
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(problem) && run.stderr.contains("access.ssh_cidrs"),
            "{}",
            run.stderr
        );
    }
    assert!(emulator.recorded_actions().is_empty());
}
