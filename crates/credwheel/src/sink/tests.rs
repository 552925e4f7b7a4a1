use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::state::{Key, MemoryStore, Sealer, StateStore};

fn update(version: u64, pw: &str) -> SecretUpdate {
    SecretUpdate::new(
        "web-db",
        version,
        vec![
            SecretEntry::new("WEB_USER", SecretString::from("svc-app1")),
            SecretEntry::new("WEB_PASSWORD", SecretString::from(pw)),
        ],
    )
}

#[tokio::test]
async fn file_sink_writes_each_secret_atomically_with_mode_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    let sink = FileSink::new(&dir);
    sink.write(&update(1, "first-Passw0rd")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("WEB_PASSWORD")).unwrap(),
        "first-Passw0rd"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("WEB_USER")).unwrap(),
        "svc-app1"
    );
    sink.write(&update(2, "second-Passw0rd")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("WEB_PASSWORD")).unwrap(),
        "second-Passw0rd"
    );
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for n in ["WEB_PASSWORD", "WEB_USER"] {
            let mode = std::fs::metadata(dir.join(n)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{n}");
        }
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[tokio::test]
async fn file_sink_refuses_names_that_escape_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = FileSink::new(tmp.path());
    for bad in ["../x", "a/b", ".hidden", ""] {
        let u = SecretUpdate::new("r", 1, vec![SecretEntry::new(bad, SecretString::from("v"))]);
        let e = sink.write(&u).await.unwrap_err();
        assert!(matches!(e, SinkError::BadName { .. }), "{bad}: {e}");
    }
}

#[tokio::test]
async fn file_sink_errors_name_the_path_not_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    // A directory path under a regular file cannot be created.
    let sink = FileSink::new(blocker.join("sub"));
    let e = sink.write(&update(1, "Never-Printed-9")).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("sub"), "{text}");
    assert!(!text.contains("Never-Printed-9"));
}

#[tokio::test]
async fn store_sink_keeps_current_and_last_by_name() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let sealer = Arc::new(Sealer::new("k1", Key::generate().unwrap()).unwrap());
    let sink = StoreSink::new(store.clone(), sealer.clone());
    assert!(sink.read("WEB_PASSWORD").await.unwrap().is_none());
    sink.write(&update(1, "first-Passw0rd")).await.unwrap();
    let s = sink.read("WEB_PASSWORD").await.unwrap().unwrap();
    assert_eq!(s.current.expose_secret(), "first-Passw0rd");
    assert!(s.last.is_none());
    sink.write(&update(2, "second-Passw0rd")).await.unwrap();
    let s = sink.read("WEB_PASSWORD").await.unwrap().unwrap();
    assert_eq!(s.current.expose_secret(), "second-Passw0rd");
    assert_eq!(s.last.unwrap().expose_secret(), "first-Passw0rd");
    // The username did not change: its record has no previous value.
    let u = sink.read("WEB_USER").await.unwrap().unwrap();
    assert_eq!(u.current.expose_secret(), "svc-app1");
    assert!(u.last.is_none());
    // The store holds ciphertext only.
    let id = TargetId::new(STORE_SINK_KIND, "default", "WEB_PASSWORD").unwrap();
    let rec = store.get_record(&id).await.unwrap();
    assert!(!format!("{rec:?}").contains("second-Passw0rd"));
    // Another namespace is separate.
    let other = StoreSink::new(store, sealer).with_namespace("staging");
    assert!(other.read("WEB_PASSWORD").await.unwrap().is_none());
}

#[test]
fn debug_output_never_shows_values() {
    let u = update(1, "Debug-Hidden-7");
    assert!(!format!("{u:?}").contains("Debug-Hidden-7"));
    assert!(format!("{u:?}").contains("WEB_PASSWORD"));
}
