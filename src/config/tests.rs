//! The loader end to end: layers, defaults, and a refusal for every kind
//! of bad value.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::*;

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glbox.toml");
    std::fs::write(&path, text).unwrap();
    let sources = Sources {
        explicit_file: Some(path),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        region_flag: None,
    };
    load(&sources)
}

#[test]
fn defaults_fill_everything_but_the_name() {
    let s = load_text("name = \"trial\"\n", &[]).unwrap();
    assert_eq!(s.region, "us-east-1");
    assert_eq!(s.instance_type, "c5.2xlarge");
    assert_eq!(s.os, Os::Ubuntu2404);
    assert_eq!(s.access, Access::Ssm);
    assert_eq!(s.root_volume_gib, 50);
    assert_eq!(s.http_cidrs.len(), 2);
    assert!(s.elastic_ip);
    assert_eq!(
        s.data_volume,
        DataVolumeSettings {
            size_gib: 100,
            iops: 3000,
            throughput_mibps: 125
        }
    );
}

#[test]
fn the_shipped_example_is_valid_and_states_the_defaults() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/glbox.toml");
    let from_example = load(&Sources {
        explicit_file: Some(example.into()),
        env: BTreeMap::new(),
        region_flag: None,
    })
    .unwrap();
    assert_eq!(from_example, load_text("name = \"trial\"\n", &[]).unwrap());
}

#[test]
fn layers_apply_in_order_file_env_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glbox.toml");
    std::fs::write(
        &path,
        "name = \"a\"\nregion = \"eu-west-1\"\n[data_volume]\nsize_gib = 200\n",
    )
    .unwrap();
    let mut sources = Sources {
        explicit_file: Some(path),
        env: [
            ("GLBOX_NAME".to_string(), "b".to_string()),
            ("GLBOX_REGION".to_string(), "eu-west-2".to_string()),
            ("AWS_REGION".to_string(), "ap-south-1".to_string()),
        ]
        .into(),
        region_flag: None,
    };
    let s = load(&sources).unwrap();
    assert_eq!((s.name.as_str(), s.region.as_str()), ("b", "eu-west-2"));
    assert_eq!(s.data_volume.size_gib, 200);
    sources.region_flag = Some("eu-north-1".into());
    assert_eq!(load(&sources).unwrap().region, "eu-north-1");
}

#[test]
fn a_dns_zone_with_a_name_and_an_elastic_ip_is_accepted() {
    let s = load_text(
            "name = \"a\"\n[dns]\nroute53_zone_id = \"/hostedzone/Z123\"\n[gitlab]\nexternal_url = \"https://git.example.com\"\n",
            &[],
        )
        .unwrap();
    assert_eq!(s.dns_zone_id.as_deref(), Some("Z123"));
    let s = load_text(
            "name = \"a\"\n[network]\nhttp_cidrs = [\"0.0.0.0/0\"]\n[gitlab]\nexternal_url = \"https://git.example.com\"\n",
            &[],
        )
        .unwrap();
    assert!(
        s.gitlab.letsencrypt,
        "port 80 open to all of IPv4 is enough"
    );
}

#[test]
fn gitlab_defaults_and_https_turns_on_letsencrypt() {
    let s = load_text("name = \"a\"\n", &[]).unwrap();
    assert_eq!(s.gitlab.edition, Edition::Ce);
    assert_eq!(s.gitlab.version, GitlabVersion::Latest);
    assert_eq!(s.gitlab.external_url, None);
    assert!(!s.gitlab.letsencrypt);
    let s = load_text(
            "name = \"a\"\n[gitlab]\nedition = \"ee\"\nversion = \"18.5.1\"\nexternal_url = \"https://git.example.com/\"\n",
            &[],
        )
        .unwrap();
    assert_eq!(s.gitlab.version, GitlabVersion::Pinned("18.5.1".into()));
    assert_eq!(
        s.gitlab.external_url.as_deref(),
        Some("https://git.example.com")
    );
    assert!(s.gitlab.letsencrypt);
    let s = load_text(
            "name = \"a\"\n[gitlab]\nexternal_url = \"https://git.example.com:8443\"\nletsencrypt = false\n",
            &[],
        )
        .unwrap();
    assert!(!s.gitlab.letsencrypt);
    assert_eq!(url_host("https://git.example.com:8443"), "git.example.com");
}

#[test]
fn aws_region_variable_is_the_default_region() {
    let s = load_text("name = \"a\"\n", &[("AWS_REGION", "eu-central-1")]).unwrap();
    assert_eq!(s.region, "eu-central-1");
}

#[test]
fn env_lists_and_booleans_parse() {
    let s = load_text(
        "name = \"a\"\n",
        &[
            ("GLBOX_NETWORK_HTTP_CIDRS", "10.0.0.0/8, 192.168.0.0/16"),
            ("GLBOX_NETWORK_ELASTIC_IP", "false"),
        ],
    )
    .unwrap();
    assert_eq!(s.http_cidrs.len(), 2);
    assert!(!s.elastic_ip);
}

fn error_of(text: &str, env: &[(&str, &str)]) -> ConfigError {
    load_text(text, env).expect_err("configuration should be rejected")
}

#[test]
fn bad_values_name_field_value_and_fix() {
    // (config file, environment, field named, value quoted)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
            ("name = \"Trial\"", &[], "name", "Trial"),
            ("name = \"a_b\"", &[], "name", "a_b"),
            ("name = \"abcdefghijabcdefghijabcdefghijab\"", &[], "name", "abcdefghij"),
            ("", &[], "name", ""),
            ("name = \"a\"\nregion = \"us-east\"", &[], "region", "us-east"),
            ("name = \"a\"\n[instance]\ntype = \"c5\"", &[], "instance.type", "c5"),
            ("name = \"a\"\n[instance]\nos = \"debian\"", &[], "instance.os", "debian"),
            ("name = \"a\"\n[instance]\nami = \"ami-xyz\"", &[], "instance.ami", "ami-xyz"),
            ("name = \"a\"\n[instance]\nroot_volume_gib = 5", &[], "instance.root_volume_gib", "5"),
            ("name = \"a\"\n[instance]\nsubnet_id = \"sub-1\"", &[], "instance.subnet_id", "sub-1"),
            ("name = \"a\"\n[access]\nmethod = \"telnet\"", &[], "access.method", "telnet"),
            ("name = \"a\"\n[access]\nssh_cidrs = [\"1.2.3.4/32\"]", &[], "access.ssh_cidrs", "1.2.3.4"),
            ("name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_cidrs = [\"1.2.3.4/33\"]", &[], "access.ssh_cidrs", "1.2.3.4/33"),
            ("name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \"/nonexistent/key.pub\"", &[], "access.ssh_public_key", "/nonexistent"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"10.0.0.1/8\"]", &[], "network.http_cidrs", "10.0.0.1/8"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"everywhere\"]", &[], "network.http_cidrs", "everywhere"),
            ("name = \"a\"\n[data_volume]\nsize_gib = 70000", &[], "data_volume.size_gib", "70000"),
            ("name = \"a\"\n[data_volume]\niops = 100", &[], "data_volume.iops", "100"),
            ("name = \"a\"\n[data_volume]\nthroughput_mibps = 1000", &[], "data_volume.throughput_mibps", "1000"),
            ("name = \"a\"", &[("GLBOX_DATA_VOLUME_SIZE_GIB", "big")], "GLBOX_DATA_VOLUME_SIZE_GIB", "big"),
            ("name = \"a\"", &[("GLBOX_INSTANCE_TYP", "x")], "GLBOX_INSTANCE_TYP", ""),
            ("name = \"a\"\n[gitlab]\nedition = \"premium\"", &[], "gitlab.edition", "premium"),
            ("name = \"a\"\n[gitlab]\nversion = \"18.5\"", &[], "gitlab.version", "18.5"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"gitlab.example.com\"", &[], "gitlab.external_url", "gitlab.example.com"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"ftp://x.example\"", &[], "gitlab.external_url", "ftp://"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://x.example/gitlab\"", &[], "gitlab.external_url", "/gitlab"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://bad_host\"", &[], "gitlab.external_url", "bad_host"),
            ("name = \"a\"\n[gitlab]\nexternal_url = \"https://203.0.113.7\"", &[], "gitlab.external_url", "203.0.113.7"),
            ("name = \"a\"\n[gitlab]\nletsencrypt = true", &[], "gitlab.letsencrypt", "true"),
            ("name = \"a\"\n[gitlab]\nroot_email = \"root\"", &[], "gitlab.root_email", "root"),
            ("name = \"a\"\n[network]\nhttp_cidrs = [\"10.0.0.0/8\", \"::/0\"]\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "network.http_cidrs", "10.0.0.0/8,::/0"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"example.com\"\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "dns.route53_zone_id", "example.com"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"\n[gitlab]\nexternal_url = \"http://203.0.113.7\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[dns]\nroute53_zone_id = \"Z123\"\n[network]\nelastic_ip = false\n[gitlab]\nexternal_url = \"https://git.example.com\"", &[], "dns.route53_zone_id", "Z123"),
            ("name = \"a\"\n[verify]\nurl = \"127.0.0.1:8080\"", &[], "verify.url", "127.0.0.1:8080"),
            ("name = \"a\"\n[gitlab]\nroot_email = \"o'brien@example.com\"", &[], "gitlab.root_email", "o'brien"),
        ];
    for (text, env, field, value) in cases {
        let err = error_of(text, env);
        assert_eq!(&err.field, field, "for {text:?}: {err}");
        assert!(err.value.contains(value), "for {text:?}: {err}");
        assert!(!err.fix.is_empty(), "for {text:?}: {err}");
    }
}

#[test]
fn unknown_keys_and_bad_toml_are_rejected_with_the_key() {
    let err = error_of("name = \"a\"\n[instance]\nsize = \"big\"", &[]);
    assert!(err.problem.contains("unknown field `size`"), "{err}");
    let err = error_of("name = \"a\"\ncolour = 1", &[]);
    assert!(err.problem.contains("colour"), "{err}");
    let err = error_of("name = ", &[]);
    assert!(err.problem.contains("not valid TOML"), "{err}");
    let err = error_of("name = \"a\"\n[data_volume]\nsize_gib = \"big\"", &[]);
    assert!(err.problem.contains("invalid type"), "{err}");
}

#[test]
fn every_key_has_its_variable_and_an_unknown_one_lists_them() {
    let err = error_of("name = \"a\"", &[("GLBOX_INSTANCE_TYP", "x")]);
    assert_eq!(
        err.fix,
        "unset it, or use one of: GLBOX_NAME, GLBOX_REGION, GLBOX_INSTANCE_TYPE, \
         GLBOX_INSTANCE_OS, GLBOX_INSTANCE_AMI, GLBOX_INSTANCE_ROOT_VOLUME_GIB, \
         GLBOX_INSTANCE_SWAP_GIB, GLBOX_INSTANCE_SUBNET_ID, GLBOX_ACCESS_METHOD, \
         GLBOX_ACCESS_SSH_PUBLIC_KEY, GLBOX_ACCESS_SSH_CIDRS, GLBOX_ACCESS_HOST, \
         GLBOX_ACCESS_PORT, GLBOX_ACCESS_SSH_USER, GLBOX_ACCESS_SSH_HOST_KEY, \
         GLBOX_ACCESS_READY_TIMEOUT_MINUTES, GLBOX_NETWORK_HTTP_CIDRS, \
         GLBOX_NETWORK_ELASTIC_IP, GLBOX_DATA_VOLUME_SIZE_GIB, GLBOX_DATA_VOLUME_IOPS, \
         GLBOX_DATA_VOLUME_THROUGHPUT_MIBPS, GLBOX_GITLAB_EDITION, GLBOX_GITLAB_VERSION, \
         GLBOX_GITLAB_EXTERNAL_URL, GLBOX_GITLAB_LETSENCRYPT, GLBOX_GITLAB_ROOT_EMAIL, \
         GLBOX_GITLAB_INSTALL_TIMEOUT_MINUTES, GLBOX_GITLAB_EXTRA_CONFIG, GLBOX_VERIFY_TIMEOUT_MINUTES, \
         GLBOX_VERIFY_URL, GLBOX_EMAIL_ENABLED, GLBOX_EMAIL_DOMAIN, GLBOX_EMAIL_FROM, \
         GLBOX_EMAIL_REPLY_TO, GLBOX_EMAIL_SES_REGION, GLBOX_EMAIL_PORT, \
         GLBOX_EMAIL_ROUTE53_ZONE_ID, GLBOX_EMAIL_TEST_RECIPIENT, GLBOX_DNS_ROUTE53_ZONE_ID, \
         GLBOX_BACKUP_SNAPSHOTS, GLBOX_BACKUP_SNAPSHOT_KEEP, GLBOX_BACKUP_S3, \
         GLBOX_BACKUP_S3_KEEP_DAYS, GLBOX_BACKUP_S3_TIME, GLBOX_BACKUP_COPY_TO_REGION, \
         GLBOX_LAB_NAME, GLBOX_LAB_SEATS, GLBOX_LAB_EXPIRES_IN, GLBOX_LAB_SPOT, \
         GLBOX_LAB_CONCURRENCY"
    );
    let s = load_text(
        "name = \"a\"\n",
        &[
            ("GLBOX_INSTANCE_TYPE", "m7g.2xlarge"),
            ("GLBOX_EMAIL_ROUTE53_ZONE_ID", "Z123"),
        ],
    )
    .unwrap();
    assert_eq!(s.instance_type, "m7g.2xlarge");
}

#[test]
fn a_missing_explicit_config_file_is_an_error() {
    let sources = Sources {
        explicit_file: Some("/nonexistent/glbox.toml".into()),
        env: [("GLBOX_NAME".to_string(), "a".to_string())].into(),
        region_flag: None,
    };
    assert_eq!(load(&sources).unwrap_err().field, "--config");
}

#[test]
fn ssh_with_a_real_public_key_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id.pub");
    std::fs::write(
            &key,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj9ACCVXa4HVhTKD1CCXfPfBm4PNqB+p0Dw8ycZiPx4 me@host\n",
        )
        .unwrap();
    let text = format!(
            "name = \"a\"\n[access]\nmethod = \"ssh\"\nssh_public_key = \"{}\"\nssh_cidrs = [\"203.0.113.7/32\"]",
            key.display()
        );
    let s = load_text(&text, &[]).unwrap();
    let Access::Ssh(ssh) = s.access else {
        panic!("SSH settings expected")
    };
    assert!(matches!(ssh.key, SshKeySource::File { .. }));
    assert_eq!(ssh.cidrs, vec!["203.0.113.7/32".parse::<IpNet>().unwrap()]);

    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n").unwrap();
    let err = load_text(&text, &[]).unwrap_err();
    assert!(err.fix.contains("private key"), "{err}");
}
