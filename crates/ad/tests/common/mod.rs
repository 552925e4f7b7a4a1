//! Helpers shared by the live test binaries: account locks, outside tools.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::time::Duration;

use credwheel_ad::{AdClient, Builder, Config};
use credwheel_policy::AdComplexity;
use credwheel_testlab::AdLab;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, MutexGuard};

pub const OUTSIDE_DN: &str = "CN=cw-outside,CN=Users,DC=example,DC=com";

/// Tests sharing an account never run at the same time.
pub async fn lock(account: &str) -> MutexGuard<'static, ()> {
    static LOCKS: [Mutex<()>; 9] = [const { Mutex::const_new(()) }; 9];
    let i = match account {
        "svc-app1" => 0,
        "svc-app2" => 1,
        "svc-app3" => 2,
        "svc-app4" => 3,
        "svc-app5" => 4,
        "svc-app6" => 5,
        "jsmith2" => 6,
        "cw-outside" => 7,
        _ => 8,
    };
    LOCKS[i].lock().await
}

pub fn samba_tool(lab: &AdLab, args: &[&str]) {
    let out = Command::new("samba-tool")
        .args(args)
        .arg("-s")
        .arg(&lab.smb_conf)
        .output()
        .expect("run samba-tool");
    assert!(
        out.status.success(),
        "samba-tool {:?}: {}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Outside tool: reset to the lab password and unlock.
pub fn reset(lab: &AdLab, sam: &str) {
    let pw = format!("--newpassword={}", lab.account_password.expose_secret());
    samba_tool(lab, &["user", "setpassword", sam, &pw]);
    samba_tool(lab, &["user", "unlock", sam]);
}

pub fn dn_of(lab: &AdLab, sam: &str) -> String {
    format!("CN={sam},{}", lab.service_ou)
}

/// Outside witness: does OpenLDAP's client (verified LDAPS) bind as `dn` with this
/// password? (`ldapsearch` of the root DSE bound as the account: `ldapwhoami` binds
/// too but then fails on Samba, which lacks the WhoAmI extended operation.)
pub fn witness_binds(lab: &AdLab, dn: &str, password: &str) -> bool {
    Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_pem)
        .env("LDAPTLS_REQCERT", "demand")
        .args([
            "-H",
            "ldaps://127.0.0.1",
            "-x",
            "-LLL",
            "-D",
            dn,
            "-w",
            password,
        ])
        .args(["-b", "", "-s", "base", "1.1"])
        .output()
        .expect("run ldapsearch")
        .status
        .success()
}

/// Outside witness: `pwdLastSet` as `ldapsearch` as Administrator sees it.
pub fn witness_pwd_last_set(lab: &AdLab, dn: &str) -> String {
    let out = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_pem)
        .env("LDAPTLS_REQCERT", "demand")
        .args([
            "-H",
            "ldaps://127.0.0.1",
            "-x",
            "-LLL",
            "-D",
            &lab.admin_dn,
            "-w",
        ])
        .arg(lab.admin_password.expose_secret())
        .args(["-b", dn, "-s", "base", "pwdLastSet"])
        .output()
        .expect("run ldapsearch");
    assert!(out.status.success(), "ldapsearch {dn}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("pwdLastSet: "))
        .expect("pwdLastSet present")
        .to_owned()
}

pub fn base(lab: &AdLab) -> Builder {
    Config::builder()
        .url(&lab.url)
        .ca_pem_file(&lab.ca_pem)
        .base_dn(&lab.base_dn)
        .connect_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(20))
}

pub fn admin(lab: &AdLab) -> AdClient {
    AdClient::new(
        base(lab)
            .bind(&lab.admin_dn, lab.admin_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap()
}

pub fn delegate(lab: &AdLab) -> AdClient {
    AdClient::new(
        base(lab)
            .bind(&lab.delegate_dn, lab.delegate_password.clone())
            .build()
            .unwrap(),
    )
    .unwrap()
}

pub fn new_password() -> SecretString {
    AdComplexity::new(24).build().unwrap().generate()
}

/// Outside witness: how many times the directory wrote the account's password
/// (the `unicodePwd` version in `replPropertyMetaData`, as `ldapsearch` as
/// Administrator reads it).
pub fn witness_password_writes(lab: &AdLab, dn: &str) -> u32 {
    use base64::Engine as _;
    let out = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_pem)
        .env("LDAPTLS_REQCERT", "demand")
        .args([
            "-H",
            "ldaps://127.0.0.1",
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-D",
            &lab.admin_dn,
            "-w",
        ])
        .arg(lab.admin_password.expose_secret())
        .args(["-b", dn, "-s", "base", "replPropertyMetaData"])
        .output()
        .expect("run ldapsearch");
    assert!(out.status.success(), "ldapsearch {dn}");
    let text = String::from_utf8_lossy(&out.stdout);
    let b64 = text
        .lines()
        .find_map(|l| l.strip_prefix("replPropertyMetaData:: "))
        .expect("replPropertyMetaData present");
    let b = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let count = u32_at(8) as usize;
    (0..count)
        .map(|i| 16 + 48 * i)
        .find(|o| u32_at(*o) == 0x9005a)
        .map(|o| u32_at(o + 4))
        .expect("unicodePwd metadata")
}

/// Counts every counter increment by name and labels.
#[derive(Default)]
pub struct Counters(pub std::sync::Mutex<Vec<String>>);

struct OneCounter(String, &'static Counters);
impl metrics::CounterFn for OneCounter {
    fn increment(&self, _: u64) {
        self.1.0.lock().unwrap().push(self.0.clone());
    }
    fn absolute(&self, _: u64) {}
}

impl metrics::Recorder for &'static Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        metrics::Counter::from_arc(std::sync::Arc::new(OneCounter(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self,
        )))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// Installs the process-wide counting recorder (once) and returns it.
pub fn install_counters() -> &'static Counters {
    static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(Counters::default);
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| metrics::set_global_recorder(&*COUNTERS).unwrap());
    &COUNTERS
}
