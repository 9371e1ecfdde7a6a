//! The configuration loader never panics, whatever the file and the
//! environment hold, and every refusal names a field and a fix. Inputs are
//! generated (proptest): arbitrary text, and TOML built from glbox's real
//! keys with values of every type, since near-valid input reaches deeper.

use std::collections::BTreeMap;

use proptest::prelude::*;

/// Every key glbox accepts, by section (as examples/glbox.toml lists them).
const KEYS: &[(&str, &[&str])] = &[
    ("", &["name", "region"]),
    (
        "instance",
        &[
            "type",
            "os",
            "ami",
            "root_volume_gib",
            "swap_gib",
            "subnet_id",
        ],
    ),
    (
        "access",
        &[
            "method",
            "ssh_public_key",
            "ssh_cidrs",
            "host",
            "port",
            "ssh_user",
            "ssh_host_key",
            "ready_timeout_minutes",
        ],
    ),
    ("network", &["http_cidrs", "elastic_ip"]),
    ("data_volume", &["size_gib", "iops", "throughput_mibps"]),
    (
        "gitlab",
        &[
            "edition",
            "version",
            "external_url",
            "letsencrypt",
            "root_email",
            "install_timeout_minutes",
        ],
    ),
    ("verify", &["timeout_minutes", "url"]),
    (
        "email",
        &[
            "enabled",
            "domain",
            "from",
            "reply_to",
            "ses_region",
            "port",
            "route53_zone_id",
            "test_recipient",
        ],
    ),
    ("dns", &["route53_zone_id"]),
];

/// TOML values of every kind, biased towards the edges glbox checks.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-5i64..20_000).prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9@:/._ '+-]{0,40}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"trial\"",
            "\"us-east-1\"",
            "\"ssh\"",
            "\"ssm\"",
            "\"example.com\"",
            "\"https://gitlab.example.com\"",
            "\"0.0.0.0/0\"",
            "\"18.5.1\"",
            "\"\"",
            "[\"10.0.0.0/8\", \"::/0\"]",
            "[1, 2]",
            "{ a = 1 }",
            "1.5",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_string),
    ]
}

/// A configuration file: some of glbox's keys (and sometimes a stray one)
/// in their sections, with generated values.
fn config_file() -> impl Strategy<Value = String> {
    let entries = prop::collection::vec(
        (0..KEYS.len(), any::<prop::sample::Index>(), value()),
        0..12,
    );
    (entries, prop::option::of("[a-z_]{1,10}")).prop_map(|(entries, stray)| {
        let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (section, key, value) in entries {
            let (name, keys) = KEYS[section];
            let key = keys[key.index(keys.len())];
            sections
                .entry(name)
                .or_default()
                .push(format!("{key} = {value}"));
        }
        let mut text = String::new();
        if let Some(lines) = sections.remove("") {
            for line in lines {
                text.push_str(&line);
                text.push('\n');
            }
        }
        if let Some(stray) = stray {
            text.push_str(&format!("{stray} = 1\n"));
        }
        for (name, lines) in sections {
            text.push_str(&format!("[{name}]\n"));
            // A repeated key is a TOML error: keep the first.
            let mut seen = std::collections::BTreeSet::new();
            for line in lines {
                let key = line.split(" = ").next().unwrap_or("").to_string();
                if seen.insert(key) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        }
        text
    })
}

fn environment() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec![
            "GLBOX_NAME",
            "GLBOX_REGION",
            "GLBOX_INSTANCE_TYPE",
            "GLBOX_DATA_VOLUME_SIZE_GIB",
            "GLBOX_NETWORK_HTTP_CIDRS",
            "GLBOX_NETWORK_ELASTIC_IP",
            "GLBOX_EMAIL_ENABLED",
            "GLBOX_EMAIL_PORT",
            "GLBOX_ACCESS_METHOD",
            "GLBOX_UNKNOWN_THING",
            "AWS_REGION",
        ])
        .prop_map(str::to_string),
        "[a-z0-9./,: -]{0,20}",
        0..4,
    )
}

fn check(text: &str, env: BTreeMap<String, String>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glbox.toml");
    std::fs::write(&path, text).unwrap();
    let sources = glbox::config::Sources {
        explicit_file: Some(path),
        env,
        region_flag: None,
    };
    // A panic fails the case; proptest then shrinks it to a small input.
    if let Err(e) = glbox::config::load(&sources) {
        prop_assert!(!e.field.is_empty(), "no field in {e:?}");
        prop_assert!(!e.fix.is_empty(), "no fix in {e:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_configurations_never_panic(text in config_file(), env in environment()) {
        check(&text, env)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text, BTreeMap::new())?;
    }
}
