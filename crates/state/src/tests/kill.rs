//! Real processes: a rotation loop SIGKILLed at random moments, and lazy readers
//! in several processes. The test binary re-executes itself as the child.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};

use crate::{
    Clock, Key, Millis, PasswordSource, RecoverOutcome, RotateOptions, RotationMethod,
    RotationTarget, Rotator, RotatorConfig, Schedule, Sealer, SqliteOptions, SqliteStore,
    StateStore, SystemClock, TargetError, TargetErrorKind, TargetId,
};

const ENV_ROLE: &str = "CREDWHEEL_STATE_KILL_ROLE";
const ENV_DB: &str = "CREDWHEEL_STATE_KILL_DB";
const ENV_TARGET: &str = "CREDWHEEL_STATE_KILL_TARGET";
const ENV_ID: &str = "CREDWHEEL_STATE_KILL_ID";
const KEY: [u8; 32] = [0x24; 32];
const INITIAL: &str = "Kill-Initial-Password-0";
const GRACE_MS: i64 = 3_600_000;

/// An account whose state lives in a file, so that it survives the processes
/// that change it: `password\nprevious\nlast_set\nwrites`. Every write replaces
/// the file atomically (write a temporary file, fsync, rename), like a directory
/// that either applied a change or did not. It keeps accepting the previous
/// password for an hour and reports its own "password last set".
pub(super) struct FileTarget {
    path: PathBuf,
}

struct FileState {
    password: String,
    previous: String,
    last_set: Millis,
    writes: u64,
}

impl FileTarget {
    pub(super) fn create(path: &Path, password: &str) -> Self {
        let t = Self {
            path: path.to_owned(),
        };
        t.store(&FileState {
            password: password.to_owned(),
            previous: String::new(),
            last_set: SystemClock.now() - 86_400_000,
            writes: 0,
        });
        t
    }

    pub(super) fn open(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    fn load(&self) -> FileState {
        let text = std::fs::read_to_string(&self.path).unwrap();
        let mut l = text.split('\n');
        FileState {
            password: l.next().unwrap().to_owned(),
            previous: l.next().unwrap().to_owned(),
            last_set: l.next().unwrap().parse().unwrap(),
            writes: l.next().unwrap().parse().unwrap(),
        }
    }

    fn store(&self, s: &FileState) {
        use std::io::Write as _;
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).unwrap();
        write!(
            f,
            "{}\n{}\n{}\n{}",
            s.password, s.previous, s.last_set, s.writes
        )
        .unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    pub(super) fn password(&self) -> String {
        self.load().password
    }

    pub(super) fn writes(&self) -> u64 {
        self.load().writes
    }

    fn set(&self, new: &SecretString) {
        let old = self.load();
        self.store(&FileState {
            password: new.expose_secret().to_owned(),
            previous: old.password,
            last_set: SystemClock.now(),
            writes: old.writes + 1,
        });
    }
}

#[async_trait]
impl RotationTarget for FileTarget {
    async fn set_password_as_admin(
        &self,
        _account: &TargetId,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        self.set(new_password);
        Ok(())
    }

    async fn change_password(
        &self,
        _account: &TargetId,
        current_password: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), TargetError> {
        if self.load().password != current_password.expose_secret() {
            return Err(TargetError::new(
                TargetErrorKind::BadCredentials,
                "wrong current password",
            ));
        }
        self.set(new_password);
        Ok(())
    }

    async fn verify(
        &self,
        _account: &TargetId,
        password: &SecretString,
    ) -> Result<bool, TargetError> {
        let s = self.load();
        let pw = password.expose_secret();
        Ok(s.password == pw
            || (!s.previous.is_empty()
                && s.previous == pw
                && SystemClock.now() < s.last_set + GRACE_MS))
    }

    async fn password_last_set(&self, _account: &TargetId) -> Result<Option<Millis>, TargetError> {
        Ok(Some(self.load().last_set))
    }
}

struct Random;

impl PasswordSource for Random {
    fn generate(&self, _: &TargetId) -> crate::Result<SecretString> {
        let n: u64 = rand::rng().random();
        Ok(SecretString::from(format!("Kill-Random-{n:016x}")))
    }
}

/// Our clock, `offset` ahead: a recovering process started after the dead one's
/// claim lapsed.
#[derive(Debug)]
struct Ahead(i64);

impl Clock for Ahead {
    fn now(&self) -> Millis {
        SystemClock.now() + self.0
    }
}

fn sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new("k", Key::from_bytes(&KEY).unwrap()).unwrap())
}

fn id() -> TargetId {
    TargetId::new("sam", "killhost", "svc-loop").unwrap()
}

fn child_config() -> RotatorConfig {
    let mut c = RotatorConfig::with_holder(format!("child-{}", std::process::id()));
    c.claim_ttl_ms = 2_000;
    c.target_margin_ms = 500;
    c.max_attempt_ms = 5_000;
    c
}

fn spawn(role: &str, db: &Path, target: &Path, id: &TargetId) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::kill::child_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_ROLE, role)
        .env(ENV_DB, db)
        .env(ENV_TARGET, target)
        .env(
            ENV_ID,
            format!("{}\t{}\t{}", id.kind(), id.scope(), id.account()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A process rotating one account in a loop on SQLite is SIGKILLed at random
/// moments, 30 times; after each kill, `recover()` in another process leaves the
/// stored current password equal to the target's and nothing pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_a_rotating_process_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    let tfile = dir.path().join("target.txt");
    let target = FileTarget::create(&tfile, INITIAL);
    let id = id();
    let store: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
    Rotator::new(store.clone(), sealer(), RotatorConfig::default())
        .enroll_verified(&target, &id, &SecretString::from(INITIAL), Schedule::None)
        .await
        .unwrap();
    let mut settled = 0;
    let mut offset = 0;
    for round in 0..30 {
        let mut child = spawn("rotate", &db, &tfile, &id);
        let ms = rand::rng().random_range(20..400);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // A new process, after the dead one's claim lapsed.
        offset += 10_000;
        let r = Rotator::with_clock(
            store.clone(),
            sealer(),
            Arc::new(Ahead(offset)),
            RotatorConfig::with_holder(format!("recoverer-{round}")),
        );
        let had_pending = store.get_record(&id).await.unwrap().pending.is_some();
        let out = r.recover(&target, &id).await.unwrap();
        assert!(
            matches!(
                out,
                RecoverOutcome::Clean
                    | RecoverOutcome::RolledBack { .. }
                    | RecoverOutcome::RolledForward { .. }
            ),
            "round {round}: {out:?}"
        );
        if had_pending {
            settled += 1;
        }
        let rec = store.get_record(&id).await.unwrap();
        assert!(rec.pending.is_none(), "round {round}: pending left");
        assert_eq!(rec.state, crate::RecordState::Ok, "round {round}");
        let (cur, _) = r.current_password(&id).await.unwrap();
        assert_eq!(
            cur.expose_secret(),
            target.password(),
            "round {round}: stored current is not the target's"
        );
    }
    assert!(
        target.writes() >= 10,
        "the children rotated: {}",
        target.writes()
    );
    assert!(settled >= 1, "no kill landed inside a rotation");
}

/// 4 processes x 50 lazy readers of an expired password on one store: exactly one
/// target write, every reader gets the new password.
pub(super) async fn lazy_readers_in_processes(
    backend: &str,
    location: &str,
    store: Arc<dyn StateStore>,
) {
    let dir = tempfile::tempdir().unwrap();
    let tfile = dir.path().join("target.txt");
    let target = FileTarget::create(&tfile, INITIAL);
    let id = crate::conformance::unique_id("ad");
    let r = Rotator::new(store.clone(), sealer(), RotatorConfig::default());
    let mut rec = r
        .enroll(
            &id,
            &SecretString::from(INITIAL),
            Schedule::Ttl { ttl_ms: 3_600_000 },
        )
        .await
        .unwrap();
    rec.next_due = Some(SystemClock.now() - 60_000);
    store
        .compare_and_swap(&rec, rec.version, None)
        .await
        .unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "tests::kill::child_entry",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_ROLE, format!("read:{backend}"))
                .env(ENV_DB, location)
                .env(ENV_TARGET, &tfile)
                .env(
                    ENV_ID,
                    format!("{}\t{}\t{}", id.kind(), id.scope(), id.account()),
                )
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut got = Vec::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "reader process failed: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        got.extend(
            text.lines()
                .filter_map(|l| l.find("CWREAD ").map(|i| l[i + 7..].to_owned())),
        );
    }
    assert_eq!(got.len(), 200, "every reader answered");
    assert_eq!(target.writes(), 1, "exactly one target write");
    let now = target.password();
    assert_ne!(now, INITIAL);
    assert!(
        got.iter().all(|p| *p == now),
        "every reader got the new password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_readers_in_four_processes_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lazy.db");
    let store: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
    lazy_readers_in_processes("sqlite", db.to_str().unwrap(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_readers_in_four_processes_postgres() {
    let Some(pg) = super::postgres::fresh().await else {
        return;
    };
    let location = format!("{}\t{}", pg.url, pg.schema);
    lazy_readers_in_processes("postgres", &location, pg.store.clone()).await;
    pg.drop_schema().await;
}

/// The child side; run only by the tests above (ignored in normal runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "child process for the process tests"]
async fn child_entry() {
    let (Ok(role), Ok(db), Ok(tfile), Ok(id)) = (
        std::env::var(ENV_ROLE),
        std::env::var(ENV_DB),
        std::env::var(ENV_TARGET),
        std::env::var(ENV_ID),
    ) else {
        return;
    };
    let p: Vec<&str> = id.split('\t').collect();
    let id = TargetId::new(p[0], p[1], p[2]).unwrap();
    let target = Arc::new(FileTarget::open(Path::new(&tfile)));
    if role == "rotate" {
        let store: Arc<dyn StateStore> =
            Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
        let r = Rotator::new(store, sealer(), child_config());
        let mut i = 0u64;
        loop {
            let method = if i.is_multiple_of(2) {
                RotationMethod::AdminReset
            } else {
                RotationMethod::SelfChange
            };
            let out = r
                .rotate(&*target, &id, &Random, RotateOptions::new(method))
                .await
                .unwrap();
            assert!(
                matches!(out, crate::RotationOutcome::Rotated { .. }),
                "{out:?}"
            );
            i += 1;
        }
    }
    let backend = role.strip_prefix("read:").unwrap();
    let store: Arc<dyn StateStore> = match backend {
        "sqlite" => Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap()),
        other => super::open_backend(other, &db).await,
    };
    let r = Arc::new(Rotator::new(
        store,
        sealer(),
        RotatorConfig::with_holder(format!("reader-{}", std::process::id())),
    ));
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut hs = Vec::new();
    for _ in 0..50 {
        let (r, t, id, b) = (r.clone(), target.clone(), id.clone(), barrier.clone());
        hs.push(tokio::spawn(async move {
            b.wait().await;
            r.fresh_credentials(
                &*t,
                &id,
                &Random,
                RotationMethod::AdminReset,
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        }));
    }
    for h in hs {
        let c = h.await.unwrap();
        println!("CWREAD {}", c.current().expose_secret());
    }
}
