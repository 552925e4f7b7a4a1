use secrecy::ExposeSecret;

use super::*;

const BASE: &str = r#"
[store]
sqlite = "/tmp/cw.db"

[key_ring]
active = "k1"
keys = [{ id = "k1", env = "CW_KEY" }]

[connections.ad.corp]
urls = ["ldaps://127.0.0.1:636"]
bind_dn = "CN=cw-delegate,OU=ServiceAccounts,DC=example,DC=com"
bind_password = { env = "CW_AD_PASSWORD" }
user_dn = "OU=ServiceAccounts,DC=example,DC=com"

[connections.windows.winhost]
address = "127.0.0.1"
port = 4445
admin_user = "cwadmin"
admin_password = { env = "CW_WIN_PASSWORD" }
"#;

fn with(rotations: &str) -> String {
    format!("{BASE}\n{rotations}")
}

fn good_rotation(name: &str, user: &str, u: &str, p: &str) -> String {
    format!(
        r#"
[[rotations]]
name = "{name}"
target = {{ windows = {{ host = "winhost", user = "{user}" }} }}
secrets = {{ username = "{u}", password = "{p}" }}
schedule = {{ interval_days = 30 }}
"#
    )
}

fn err(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_full_configuration_loads() {
    let text = with(
        r#"
[scheduler]
concurrency = 8
heartbeat_interval = "30m"

[[sinks]]
file = { dir = "/run/cw" }

[[rotations]]
name = "web-db"
description = "svc-app1 for the web tier"
target = { ad = { connection = "corp", sam_account_name = "svc-app1" } }
policy = { ad_complexity = { length = 20, display_name = "Web DB" } }
secrets = { username = "WEB_USER", password = "WEB_PASSWORD" }
schedule = { cron = "0 3 * * SAT", window = "1h", time_zone = "Europe/Paris" }
reconcile_on_drift = true

[[rotations]]
name = "local-backup"
target = { windows = { host = "winhost", user = "cwlocal1" } }
method = "target"
initial_password = { value = "Import-Me-0nce!" }
policy = { infisical = { length = 32, required = { digits = 2 }, allowedSymbols = "-_" } }
secrets = { username = "BACKUP_USER", password = "BACKUP_PASSWORD" }
schedule = { interval_days = 7, rotate_at = "02:30", time_zone = "America/New_York", auto_rotation = false }

[[rotations]]
name = "lazy-role"
target = { ad = { connection = "corp", upn = "svc-app2@example.com" } }
policy = { vault_hcl = '''
length = 24
rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
rule "charset" { charset = "0123456789" min-chars = 1 }
''' }
secrets = { username = "LAZY_USER", password = "LAZY_PASSWORD" }
schedule = { ttl = "24h" }

[[libraries]]
name = "ops"
connection = "corp"
accounts = ["svc-app5", "svc-app6"]
ttl = "1h"
max_ttl = "4h"
"#,
    );
    let c = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        c.store,
        StoreConfig::Sqlite {
            path: "/tmp/cw.db".into()
        }
    );
    assert_eq!(c.scheduler.concurrency, 8);
    assert_eq!(c.scheduler.heartbeat_interval, Duration::from_secs(1800));
    assert_eq!(c.scheduler.max_retry_cycles, 3);
    assert_eq!(c.rotations.len(), 3);
    let web = c.rotation("web-db").unwrap();
    assert_eq!(web.method, Method::Root);
    assert_eq!(web.policy_format, PolicyFormat::AdComplexity);
    assert_eq!(web.policy.length(), 20);
    // The account name is forbidden in generated passwords, as AD would refuse it.
    assert!(
        web.policy
            .forbidden_substrings()
            .iter()
            .any(|s| s.eq_ignore_ascii_case("svc-app1"))
    );
    assert!(web.reconcile_on_drift);
    assert!(web.heartbeat);
    let local = c.rotation("local-backup").unwrap();
    assert_eq!(local.method, Method::Target);
    assert_eq!(local.policy.length(), 32);
    assert!(!local.schedule.as_ref().unwrap().is_automatic());
    match &local.initial_password {
        Some(SecretInput::Value(v)) => assert_eq!(v.expose_secret(), "Import-Me-0nce!"),
        other => panic!("{other:?}"),
    }
    let lazy = c.rotation("lazy-role").unwrap();
    assert_eq!(
        lazy.schedule.as_ref().unwrap().lazy_ttl(),
        Some(Duration::from_secs(86_400))
    );
    assert_eq!(lazy.target.username(), "svc-app2@example.com");
    assert_eq!(c.libraries[0].max_ttl, Duration::from_secs(4 * 3600));
    assert_eq!(
        c.sinks,
        vec![SinkConfig::File {
            dir: "/run/cw".into()
        }]
    );
}

#[test]
fn the_initial_password_never_appears_in_debug_output_or_errors() {
    let text = with(
        r#"
[[rotations]]
name = "x"
target = { windows = { host = "winhost", user = "cwlocal1" } }
initial_password = { value = "Sup3r-Secret-Import" }
secrets = { username = "U", password = "P" }
schedule = { interval_days = 0 }
"#,
    );
    let e = err(&text);
    assert!(!format!("{e} {e:?}").contains("Sup3r-Secret-Import"));
    let ok = text.replace("interval_days = 0", "interval_days = 1");
    let c = Config::from_toml_str(&ok).unwrap();
    assert!(!format!("{c:?}").contains("Sup3r-Secret-Import"));
}

#[test]
fn json_has_the_same_structure() {
    let json = r#"{
      "key_ring": { "active": "k1", "keys": [{ "id": "k1", "file": "/etc/cw/k1" }] },
      "connections": { "windows": { "w1": {
          "address": "127.0.0.10", "admin_user": "admin",
          "admin_password": { "file": "/etc/cw/w1" } } } },
      "rotations": [{
          "name": "a", "target": { "windows": { "host": "w1", "user": "svc" } },
          "secrets": { "username": "A_U", "password": "A_P" },
          "schedule": { "interval_days": 1, "rotate_at": "04:00" } }]
    }"#;
    let c = Config::from_json_str(json).unwrap();
    assert_eq!(c.windows_hosts["w1"].port, 445);
    assert_eq!(
        c.store,
        StoreConfig::Sqlite {
            path: DEFAULT_SQLITE_PATH.into()
        }
    );
    let e = Config::from_json_str(&json.replace("\"rotate_at\"", "\"rotateAt\"")).unwrap_err();
    assert!(e.names("rotations[0].schedule.rotateAt"), "{e}");
    assert!(matches!(
        e.errors()[0].kind(),
        ConfigErrorKind::UnknownField { field } if field == "rotateAt"
    ));
}

#[test]
fn unknown_field_is_named_with_its_path() {
    let text = with(&good_rotation("a", "cwlocal1", "A_U", "A_P").replace(
        "schedule = { interval_days = 30 }",
        "schedule = { interval_days = 30, rotateAtUtc = \"02:00\" }",
    ));
    let e = err(&text);
    assert_eq!(e.errors().len(), 1);
    assert_eq!(e.errors()[0].path(), "rotations[0].schedule.rotateAtUtc");
    assert_eq!(
        e.errors()[0].kind(),
        &ConfigErrorKind::UnknownField {
            field: "rotateAtUtc".into()
        }
    );
    // At the top level too.
    let e = err(&format!("rotation_policy = 1\n{BASE}"));
    assert!(e.names("rotation_policy"), "{e}");
}

#[test]
fn impossible_policy_is_a_config_error() {
    let text = with(&good_rotation("a", "cwlocal1", "A_U", "A_P").replace(
        "schedule",
        r#"policy = { vault_hcl = "length = 4\nrule \"charset\" { charset = \"abc\" min-chars = 5 }" }
schedule"#,
    ));
    let e = err(&text);
    assert!(e.names("rotations[0].policy.vault_hcl"), "{e}");
    assert!(matches!(e.errors()[0].kind(), ConfigErrorKind::Policy(_)));

    let text = with(&good_rotation("a", "cwlocal1", "A_U", "A_P").replace(
        "schedule",
        "policy = { infisical = { length = 2, required = { digits = 3 } } }\nschedule",
    ));
    let e = err(&text);
    assert!(e.names("rotations[0].policy.infisical"), "{e}");

    let text = with(&good_rotation("a", "cwlocal1", "A_U", "A_P").replace(
        "schedule",
        "policy = { ad_complexity = { length = 2 } }\nschedule",
    ));
    let e = err(&text);
    assert!(e.names("rotations[0].policy.ad_complexity"), "{e}");
}

#[test]
fn bad_time_zone_is_named() {
    let text = with(&good_rotation("a", "cwlocal1", "A_U", "A_P").replace(
        "interval_days = 30",
        "interval_days = 30, time_zone = \"Europe/Atlantis\"",
    ));
    let e = err(&text);
    assert_eq!(e.errors()[0].path(), "rotations[0].schedule.time_zone");
    assert!(matches!(
        e.errors()[0].kind(),
        ConfigErrorKind::Schedule(crate::schedule::ScheduleError::TimeZone { .. })
    ));
}

#[test]
fn cron_without_window_is_named() {
    let text = with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("interval_days = 30", "cron = \"0 3 * * *\""),
    );
    let e = err(&text);
    assert_eq!(e.errors()[0].path(), "rotations[0].schedule.window");
    assert!(matches!(
        e.errors()[0].kind(),
        ConfigErrorKind::Contradiction { .. }
    ));
}

#[test]
fn interval_zero_is_named() {
    let text = with(&format!(
        "{}{}{}",
        good_rotation("a", "cwlocal1", "A_U", "A_P"),
        good_rotation("b", "cwlocal2", "B_U", "B_P"),
        good_rotation("c", "cwlocal3", "C_U", "C_P").replace("= 30", "= 0"),
    ));
    let e = err(&text);
    assert_eq!(
        e.to_string(),
        "rotations[2].schedule.interval_days: must be >= 1"
    );
}

#[test]
fn duplicate_names_are_named() {
    let text = with(&format!(
        "{}{}",
        good_rotation("same", "cwlocal1", "A_U", "A_P"),
        good_rotation("same", "cwlocal2", "B_U", "B_P"),
    ));
    let e = err(&text);
    assert_eq!(e.errors()[0].path(), "rotations[1].name");
    assert_eq!(
        e.errors()[0].kind(),
        &ConfigErrorKind::Duplicate {
            value: "same".into(),
            first: "rotations[0].name".into()
        }
    );
}

#[test]
fn secret_mapping_collisions_are_named() {
    // Across rotations.
    let text = with(&format!(
        "{}{}",
        good_rotation("a", "cwlocal1", "A_U", "SHARED"),
        good_rotation("b", "cwlocal2", "B_U", "SHARED"),
    ));
    let e = err(&text);
    assert_eq!(e.errors()[0].path(), "rotations[1].secrets.password");
    // Within one rotation.
    let e = err(&with(&good_rotation("a", "cwlocal1", "SAME", "SAME")));
    assert_eq!(e.errors()[0].path(), "rotations[0].secrets.password");
    assert!(
        e.to_string().contains("rotations[0].secrets.username"),
        "{e}"
    );
}

#[test]
fn two_rotations_of_one_account_are_refused() {
    let text = with(&format!(
        "{}{}",
        good_rotation("a", "cwlocal1", "A_U", "A_P"),
        good_rotation("b", "CWLOCAL1", "B_U", "B_P"),
    ));
    let e = err(&text);
    assert!(e.names("rotations[1].target"), "{e}");
}

#[test]
fn contradictions_and_references() {
    // Two schedule kinds.
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("interval_days = 30", "interval_days = 30, ttl = \"1h\""),
    ));
    assert!(e.names("rotations[0].schedule.ttl"), "{e}");
    // No schedule kind.
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("interval_days = 30", "time_zone = \"UTC\""),
    ));
    assert!(e.names("rotations[0].schedule"), "{e}");
    // rotate_at with a ttl.
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("interval_days = 30", "ttl = \"1h\", rotate_at = \"01:00\""),
    ));
    assert!(e.names("rotations[0].schedule.rotate_at"), "{e}");
    // Unknown host.
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P").replace("\"winhost\"", "\"nohost\""),
    ));
    assert!(e.names("rotations[0].target.windows.host"), "{e}");
    // Rotating the admin account through itself.
    let e = err(&with(&good_rotation("a", "cwadmin", "A_U", "A_P")));
    assert!(e.names("rotations[0].target.windows.user"), "{e}");
    // Built-in account.
    let e = err(&with(&good_rotation("a", "Administrator", "A_U", "A_P")));
    assert!(e.names("rotations[0].target.windows.user"), "{e}");
    // Method target without a current password.
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("schedule", "method = \"target\"\nschedule"),
    ));
    assert!(e.names("rotations[0].initial_password"), "{e}");
    // Not a slug.
    let e = err(&with(&good_rotation("Bad_Name", "cwlocal1", "A_U", "A_P")));
    assert!(e.names("rotations[0].name"), "{e}");
    // Plain LDAP without StartTLS.
    let e = err(&BASE.replace("ldaps://127.0.0.1:636", "ldap://127.0.0.1:389"));
    assert!(e.names("connections.ad.corp.urls[0]"), "{e}");
    // Missing key ring.
    let no_ring = BASE.replace(
        "[key_ring]\nactive = \"k1\"\nkeys = [{ id = \"k1\", env = \"CW_KEY\" }]\n",
        "",
    );
    let e = err(&no_ring);
    assert!(e.names("key_ring"), "{e}");
    // Active key not in the ring.
    let e = err(&BASE.replace("active = \"k1\"", "active = \"k9\""));
    assert!(e.names("key_ring.active"), "{e}");
    // Password inside the PostgreSQL URL.
    let e = err(&BASE.replace(
        "sqlite = \"/tmp/cw.db\"",
        "postgres = \"postgresql://cw:hunter2@db/credwheel\"",
    ));
    assert!(e.names("store.postgres"), "{e}");
    assert!(!e.to_string().contains("hunter2"));
    // A CA file is for PostgreSQL only; with it, it is kept.
    let e = err(&BASE.replace(
        "sqlite = \"/tmp/cw.db\"",
        "sqlite = \"/tmp/cw.db\"\nca_file = \"/etc/cw/ca.pem\"",
    ));
    assert!(e.names("store.ca_file"), "{e}");
    let c = Config::from_toml_str(&BASE.replace(
        "sqlite = \"/tmp/cw.db\"",
        "postgres = \"host=db user=cw\"\nca_file = \"/etc/cw/ca.pem\"",
    ))
    .unwrap();
    assert!(matches!(
        c.store,
        StoreConfig::Postgres { ca_file: Some(ref p), .. } if p == Path::new("/etc/cw/ca.pem")
    ));
}

#[test]
fn missing_field_is_named() {
    let e = err(&with(
        "[[rotations]]\nname = \"a\"\nsecrets = { username = \"U\", password = \"P\" }\n",
    ));
    assert_eq!(e.errors()[0].path(), "rotations[0].target");
    assert!(matches!(
        e.errors()[0].kind(),
        ConfigErrorKind::MissingField { .. }
    ));
}

#[test]
fn several_problems_are_all_reported() {
    let text = with(&format!(
        "{}{}",
        good_rotation("a", "cwlocal1", "A_U", "A_P").replace("= 30", "= 0"),
        good_rotation("b", "cwlocal2", "B_U", "B_P").replace("\"winhost\"", "\"nohost\""),
    ));
    let e = err(&text);
    assert!(e.names("rotations[0].schedule.interval_days"), "{e}");
    assert!(e.names("rotations[1].target.windows.host"), "{e}");
}

#[test]
fn syntax_errors_carry_a_position() {
    let e = err("[store\nsqlite = 1");
    assert!(matches!(
        e.errors()[0].kind(),
        ConfigErrorKind::Syntax { .. }
    ));
    assert!(e.to_string().contains("line 1"), "{e}");
    let e = err(&with(
        &good_rotation("a", "cwlocal1", "A_U", "A_P")
            .replace("interval_days = 30", "interval_days = \"thirty\""),
    ));
    assert!(e.names("rotations[0].schedule.interval_days"), "{e}");
}

#[test]
fn secret_refs_resolve_and_name_only_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "from-a-file\n").unwrap();
    let r = SecretRef::File(f);
    assert_eq!(r.resolve().unwrap().expose_secret(), "from-a-file");
    let missing = SecretRef::Env("CREDWHEEL_TEST_SURELY_UNSET_VAR".into());
    let e = missing.resolve().unwrap_err();
    assert!(e.to_string().contains("CREDWHEEL_TEST_SURELY_UNSET_VAR"));
}

#[test]
fn slugs_and_secret_names() {
    for ok in ["a", "web-db", "x1-2-3"] {
        assert!(is_slug(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a.b", &"a".repeat(65)] {
        assert!(!is_slug(bad), "{bad}");
    }
    assert!(is_secret_name("DB_PASSWORD.v2-x"));
    for bad in ["", ".hidden", "a/b", "a b", "../x"] {
        assert!(!is_secret_name(bad), "{bad}");
    }
}
