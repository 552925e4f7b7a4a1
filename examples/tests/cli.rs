//! The operator CLI: `validate` accepts a good file and refuses bad ones with the
//! field's path, starting nothing (exit code 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly.

use std::process::Command;

const GOOD: &str = r#"
[store]
sqlite = "/nonexistent/never-opened.db"
[key_ring]
active = "k1"
keys = [{ id = "k1", env = "CW_TEST_KEY" }]
[connections.windows.h1]
address = "127.0.0.1"
admin_user = "admin"
admin_password = { env = "CW_TEST_ADMIN" }
[[rotations]]
name = "r1"
target = { windows = { host = "h1", user = "svc1" } }
initial_password = { value = "Never-Printed-42" }
secrets = { username = "R1_USER", password = "R1_PASSWORD" }
schedule = { interval_days = 1, rotate_at = "02:30", time_zone = "America/New_York" }
"#;

fn run(config: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credwheel.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_credwheel"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_prints_a_summary_without_secrets() {
    let (code, out, err) = run(GOOD, &["validate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("configuration is valid"));
    assert!(out.contains("windows:h1/svc1"));
    assert!(out.contains("every 1 day at 02:30 America/New_York"));
    assert!(!out.contains("Never-Printed-42") && !err.contains("Never-Printed-42"));
    // The store was not opened.
    assert!(!std::path::Path::new("/nonexistent/never-opened.db").exists());
    let (code, out, _) = run(GOOD, &["--json", "validate"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["rotations"][0]["name"], "r1");
}

#[test]
fn malformed_configurations_are_refused_naming_the_field() {
    let cases = [
        (
            "schedule = { interval_days = 1, rotate_at",
            "schedule = { interval_days = 1, rotateAt",
            "rotations[0].schedule.rotateAt",
        ),
        (
            "interval_days = 1,",
            "interval_days = 0,",
            "rotations[0].schedule.interval_days",
        ),
        (
            "\"America/New_York\"",
            "\"America/Nowhere\"",
            "rotations[0].schedule.time_zone",
        ),
        (
            "schedule = { interval_days = 1, rotate_at = \"02:30\", time_zone = \"America/New_York\" }",
            "schedule = { cron = \"0 3 * * *\" }",
            "rotations[0].schedule.window",
        ),
        (
            "secrets =",
            "policy = { infisical = { length = 2, required = { digits = 3 } } }\nsecrets =",
            "rotations[0].policy.infisical",
        ),
    ];
    for (from, to, field) in cases {
        let bad = GOOD.replace(from, to);
        assert_ne!(bad, GOOD, "{from}");
        for cmd in ["validate", "run", "status"] {
            let (code, out, err) = run(&bad, &[cmd]);
            assert_eq!(code, 2, "{cmd} {field}: {out}{err}");
            assert!(err.contains(field), "{cmd}: {err}");
        }
        let (code, out, _) = run(&bad, &["--json", "validate"]);
        assert_eq!(code, 2);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["valid"], false);
        assert!(
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{out}"
        );
    }
}
