//! Bad input fails with the field, the value and the fix, and with no AWS
//! request at all (counted by the emulator's recorder).

use crate::common::{glbox, glbox_with_env, Emulator, Workspace};

/// (config file, extra environment, text the error must contain)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const CASES: &[Case] = &[
    ("", &[], "name"),
    ("name = \"Bad_Name\"\n", &[], "Bad_Name"),
    ("name = \"t\"\nregion = \"mars-1\"\n", &[], "region"),
    // Shaped like a region, but AWS has none by that name.
    ("name = \"t\"\nregion = \"us-east-9\"\n", &[], "region = \"us-east-9\": is not an AWS region"),
    ("name = \"t\"\n", &[("AWS_REGION", "eu-middle-1")], "eu-middle-1"),
    ("name = \"t\"\n[instance]\ntype = \"huge\"\n", &[], "instance.type"),
    ("name = \"t\"\n[instance]\nos = \"windows\"\n", &[], "instance.os"),
    ("name = \"t\"\n[instance]\nami = \"ami-NOPE\"\n", &[], "instance.ami"),
    ("name = \"t\"\n[instance]\nroot_volume_gib = 1\n", &[], "instance.root_volume_gib"),
    ("name = \"t\"\n[access]\nmethod = \"rdp\"\n", &[], "access.method"),
    ("name = \"t\"\n[access]\nssh_cidrs = [\"0.0.0.0/0\"]\n", &[], "access.ssh_cidrs"),
    ("name = \"t\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \"missing.pub\"\nssh_cidrs = [\"192.0.2.0/24\"]\n", &[], "access.ssh_public_key"),
    ("name = \"t\"\n[network]\nhttp_cidrs = [\"1.2.3.4/40\"]\n", &[], "network.http_cidrs"),
    ("name = \"t\"\n[data_volume]\nsize_gib = 10\n", &[], "data_volume.size_gib"),
    ("name = \"t\"\n[data_volume]\niops = 99999\n", &[], "data_volume.iops"),
    ("name = \"t\"\n[data_volume]\nthroughput_mibps = 2000\n", &[], "data_volume.throughput_mibps"),
    ("name = \"t\"\n[instance]\ncolor = \"red\"\n", &[], "unknown field `color`"),
    ("name = \"t\"\n[instance\n", &[], "not valid TOML"),
    ("name = \"t\"\n", &[("GLBOX_DATA_VOLUME_SIZE_GIB", "lots")], "GLBOX_DATA_VOLUME_SIZE_GIB"),
    ("name = \"t\"\n", &[("GLBOX_INSTANCE_TPYE", "c5.large")], "GLBOX_INSTANCE_TPYE"),
    ("name = \"t\"\n[email]\nenabled = true\n", &[], "email.domain"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"https://example.com\"\n", &[], "email.domain"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"example.com\"\nport = 25\n", &[], "EC2"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"example.com\"\nport = 2525\n", &[], "email.port"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"example.com\"\nses_region = \"us-east-7\"\n", &[], "email.ses_region"),
    ("name = \"t\"\nregion = \"ap-east-1\"\n[email]\nenabled = true\ndomain = \"example.com\"\n", &[], "SMTP endpoint"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"example.com\"\nfrom = \"gitlab@other.org\"\n", &[], "email.from"),
    ("name = \"t\"\n[email]\nenabled = true\ndomain = \"example.com\"\nroute53_zone_id = \"zone-1\"\n", &[], "email.route53_zone_id"),
    ("name = \"t\"\n[email]\ntest_recipient = \"me'@example.com\"\n", &[], "email.test_recipient"),
    ("name = \"t\"\n", &[("GLBOX_EMAIL_ENABLED", "maybe")], "GLBOX_EMAIL_ENABLED"),
    ("name = \"a-name-that-is-far-too-long-for-aws\"\n", &[], "1-31 characters"),
    ("name = 7\n", &[], "invalid type"),
    ("name = \"t\"\n[gitlab]\nversion = \"18.5\"\n", &[], "gitlab.version"),
    ("name = \"t\"\n[gitlab]\nedition = \"premium\"\n", &[], "gitlab.edition"),
    ("name = \"t\"\n[gitlab]\nexternal_url = \"http://git.example.com\"\nletsencrypt = true\n", &[], "gitlab.letsencrypt"),
    ("name = \"t\"\n[gitlab]\nexternal_url = \"https://203.0.113.7\"\n", &[], "gitlab.external_url"),
    ("name = \"t\"\n[gitlab]\nexternal_url = \"https://git.example.com/gitlab\"\n", &[], "has a path"),
    ("name = \"t\"\n[gitlab]\nroot_email = \"admin\"\n", &[], "gitlab.root_email"),
    ("name = \"t\"\n[verify]\nurl = \"ftp://example.com\"\n", &[], "verify.url"),
    ("name = \"t\"\n[verify]\ntimeout_minutes = 0\n", &[], "verify.timeout_minutes"),
    ("name = \"t\"\n[instance]\nswap_gib = 1\n", &[], "instance.swap_gib"),
    ("name = \"t\"\n[instance]\nsubnet_id = \"sn-1\"\n", &[], "instance.subnet_id"),
    ("name = \"t\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \".\"\nssh_cidrs = [\"192.0.2.0/24\"]\n", &[], "access.ssh_public_key"),
    ("name = \"t\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"192.0.2.0/24\"]\nssh_host_key = \"missing_host_key.pub\"\n", &[], "access.ssh_host_key"),
    ("name = \"t\"\n[access]\nport = 70000\n", &[], "access.port"),
    ("name = \"t\"\n", &[("GLBOX_NETWORK_HTTP_CIDRS", "10.0.0.0/8,not-a-cidr")], "network.http_cidrs"),
];

#[test]
fn every_bad_configuration_is_rejected_before_any_aws_request() {
    let emulator = Emulator::start();
    for (config, env, expected) in CASES {
        let workspace = Workspace::new(config);
        for command in [&["plan"][..], &["up", "--no-bootstrap", "--yes"][..]] {
            emulator.start_recording();
            let run = glbox_with_env(&emulator, &workspace, command, env);
            let requests = emulator.recorded_actions();
            assert_eq!(run.code, 2, "{config:?} {env:?}: {}", run.stderr);
            assert!(run.stderr.contains(expected), "{config:?}: {}", run.stderr);
            assert!(run.stderr.contains("fix:"), "{config:?}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            assert_eq!(
                requests,
                Vec::<String>::new(),
                "{config:?} made AWS requests"
            );
        }
    }
}

#[test]
fn bad_arguments_are_rejected_before_any_aws_request() {
    let emulator = Emulator::start();
    let workspace = Workspace::new("name = \"t\"\n");
    let cases: &[(&[&str], &str)] = &[
        (&["up", "--no-bootstrap", "--region", "nowhere"], "region"),
        (
            &["plan", "--config", "does-not-exist.toml"],
            "does-not-exist.toml",
        ),
        (&["down", "--no-snapshot"], "--delete-data"),
        (&["plan", "--output", "yaml"], "yaml"),
        (&["up", "--wait-email"], "email.enabled"),
        (&["email", "dns"], "email.enabled"),
        (&["email", "rotate", "--yes"], "email.enabled"),
        (&["down", "--delete-email-identity"], "email.enabled"),
        (&["plan", "--config", "."], "--config"),
        (&["up", "--bogus"], "--bogus"),
        (&["render", "everything"], "everything"),
    ];
    for (args, expected) in cases {
        emulator.start_recording();
        let run = glbox(&emulator, &workspace, args);
        assert_ne!(run.code, 0, "{args:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert_eq!(
            emulator.recorded_actions(),
            Vec::<String>::new(),
            "{args:?}"
        );
    }
}
