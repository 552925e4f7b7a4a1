//! `credwheel`: the operator CLI over the credwheel facade.
//!
//! ```text
//! credwheel --config credwheel.toml validate
//! credwheel --config credwheel.toml --json status
//! credwheel rotate NAME | reconcile NAME | creds ROLE
//! credwheel check-out SET | check-in SET | library status SET
//! credwheel run
//! credwheel reseal
//! ```
//!
//! Output is human-readable by default and JSON with `--json`; logs go to stderr
//! (human, or JSON with `--json` / `--log-format json`). Only `creds` ever prints a
//! password.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints; only `creds` prints a secret.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use credwheel::config::{PolicyFormat, SinkConfig, StoreConfig, Target};
use credwheel::schedule::{NextDue, format_instant};
use credwheel::{Config, Credwheel, Outcome, PolicyVerdict, RotationStatus};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(
    name = "credwheel",
    version,
    about = "Rotate Windows and Active Directory passwords"
)]
struct Cli {
    /// The configuration file (TOML, or JSON when it ends in .json).
    #[arg(
        long,
        short,
        env = "CREDWHEEL_CONFIG",
        default_value = "credwheel.toml"
    )]
    config: PathBuf,
    /// Print results as JSON (and log as JSON unless --log-format says otherwise).
    #[arg(long, global = true)]
    json: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load and validate the configuration, print a summary; starts nothing.
    Validate {
        /// Also open the store and ask each target for its password rules (a
        /// Windows host's, an AD account's fine-grained or the domain's), and refuse
        /// a policy the target would reject. Changes no password.
        #[arg(long)]
        online: bool,
    },
    /// Status of every rotation (last success, next due, last error, state).
    Status {
        /// Only the rotations that need an operator (automation stopped).
        #[arg(long)]
        needs_operator: bool,
    },
    /// Rotate one rotation now (does not move its schedule).
    Rotate {
        /// The rotation's name.
        name: String,
    },
    /// Reset the password with the admin connection and re-sync the store.
    Reconcile {
        /// The rotation's name.
        name: String,
    },
    /// Print the current and last password of a rotation (rotating it first when a
    /// lazy TTL has passed). The only command that prints a secret.
    Creds {
        /// The rotation's name.
        role: String,
    },
    /// Check an account out of a library.
    CheckOut {
        /// The library's name.
        set: String,
        /// Lending time, shorter than the library's (e.g. "30m").
        #[arg(long)]
        ttl: Option<String>,
        /// Who borrows (default: the user running the command).
        #[arg(long)]
        borrower: Option<String>,
        /// Write the password to this file (created with mode 0600); it is never
        /// printed.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Check an account back in (rotates its password).
    CheckIn {
        /// The library's name.
        set: String,
        /// The account to check in (needed when several are out).
        #[arg(long)]
        account: Option<String>,
        /// Who returns it (default: the user running the command).
        #[arg(long)]
        borrower: Option<String>,
        /// Check in on behalf of anyone (operator override).
        #[arg(long)]
        force: bool,
    },
    /// Extend a check-out lease (never beyond the library's max_ttl).
    Renew {
        /// The library's name.
        set: String,
        /// The account whose lease to extend (needed when several are out).
        #[arg(long)]
        account: Option<String>,
        /// How long from now (default and at most: the library's ttl), e.g. "30m".
        #[arg(long)]
        ttl: Option<String>,
        /// Who holds the lease (default: the user running the command).
        #[arg(long)]
        borrower: Option<String>,
    },
    /// Library commands.
    Library {
        #[command(subcommand)]
        command: LibraryCommand,
    },
    /// Stop automatic rotation (and heartbeats) of a rotation.
    Pause {
        /// The rotation's name.
        name: String,
    },
    /// Resume automation; clears "needs operator".
    Resume {
        /// The rotation's name.
        name: String,
    },
    /// Re-seal every stored record under the key ring's active key.
    Reseal,
    /// Run the scheduler in the foreground, one line per rotation.
    Run,
}

#[derive(Subcommand, Debug)]
enum LibraryCommand {
    /// Which accounts are available and who borrowed the others.
    Status {
        /// The library's name.
        set: String,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,refinery_core=warn,sspi=warn,smb=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format.unwrap_or(if cli.json {
        LogFormat::Json
    } else {
        LogFormat::Human
    });
    init_tracing(log_format);

    let config = match Config::from_path(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            if cli.json {
                let errors: Vec<Value> = e
                    .errors()
                    .iter()
                    .map(|f| json!({ "field": f.path(), "error": f.kind().to_string() }))
                    .collect();
                println!("{}", json!({ "valid": false, "errors": errors }));
            } else {
                eprintln!("{}: invalid configuration:", cli.config.display());
                for f in e.errors() {
                    eprintln!("  {f}");
                }
            }
            return ExitCode::from(2);
        }
    };

    if let Command::Validate { online: false } = cli.command {
        validate(&config, cli.json);
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(operate(config, cli.command, cli.json)) {
        Ok(()) => ExitCode::SUCCESS,
        // Already reported, field by field.
        Err(e) if e.is::<PoliciesRefused>() => ExitCode::from(2),
        Err(e) => {
            if cli.json {
                println!("{}", json!({ "error": e.to_string() }));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Some target would refuse the passwords of some policy (reported already).
#[derive(Debug)]
struct PoliciesRefused;

impl std::fmt::Display for PoliciesRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a target refuses a password policy")
    }
}

impl std::error::Error for PoliciesRefused {}

/// Asks every target for its password rules; prints what does not fit. A refused
/// policy is a configuration error (exit code 2): nothing starts.
async fn check_policies(
    cw: &Credwheel,
    as_json: bool,
    print_all: bool,
) -> Result<(), PoliciesRefused> {
    let checks = cw.check_policies().await;
    let refused = checks
        .iter()
        .any(|c| matches!(c.verdict, PolicyVerdict::Refused(_)));
    for c in &checks {
        let (verdict, why) = match &c.verdict {
            PolicyVerdict::Fits => ("fits", None),
            PolicyVerdict::Refused(w) => ("refused", Some(w.as_str())),
            PolicyVerdict::Unknown(w) => ("unknown", Some(w.as_str())),
            _ => ("unknown", None),
        };
        if let PolicyVerdict::Unknown(w) = &c.verdict {
            tracing::warn!(field = %c.field, account = %c.account, error = %w, "could not read the target's password rules; rotations will tell");
        }
        if !print_all && verdict != "refused" {
            continue;
        }
        if as_json {
            println!(
                "{}",
                json!({ "field": c.field, "name": c.name, "account": c.account, "policy": verdict, "why": why })
            );
        } else if let Some(w) = why {
            let out = format!("  {} ({}, {}): {verdict}: {w}", c.field, c.name, c.account);
            if verdict == "refused" {
                eprintln!("{out}")
            } else {
                println!("{out}")
            }
        } else {
            println!("  {} ({}, {}): {verdict}", c.field, c.name, c.account);
        }
    }
    if refused {
        if !as_json {
            eprintln!(
                "invalid configuration: a target would refuse the passwords of the policy above; nothing starts"
            );
        }
        return Err(PoliciesRefused);
    }
    Ok(())
}

fn when(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_owned(), format_instant)
}

fn status_json(s: &RotationStatus) -> Value {
    json!({
        "name": s.name,
        "target": s.target,
        "state": s.state.as_str(),
        "paused": s.paused,
        "last_success": s.last_success.map(format_instant),
        "next_due": s.next_due.map(format_instant),
        "expires_at": s.expires_at.map(format_instant),
        "last_error": s.last_error,
        "failures_in_cycle": s.failures.0,
        "failed_cycles": s.failures.1,
        "heartbeat": s.heartbeat.as_ref().map(|(t, r)| json!({"at": format_instant(*t), "result": r})),
        "version": s.version,
    })
}

/// Prints a status table (never a secret).
fn print_status(rows: &[RotationStatus]) {
    println!(
        "{:<18} {:<15} {:<34} {:<21} {:<21} {:<20} LAST ERROR",
        "ROTATION", "STATE", "TARGET", "LAST SUCCESS", "NEXT DUE", "HEARTBEAT"
    );
    for s in rows {
        let state = if s.paused {
            format!("{} (paused)", s.state.as_str())
        } else {
            s.state.as_str().to_owned()
        };
        let next = match (s.next_due, s.expires_at) {
            (Some(t), _) => format_instant(t),
            (None, Some(e)) => format!("read>{}", &format_instant(e)[5..16]),
            _ => "-".to_owned(),
        };
        let hb = s
            .heartbeat
            .as_ref()
            .map_or_else(|| "-".to_owned(), |(_, r)| r.clone());
        println!(
            "{:<18} {:<15} {:<34} {:<21} {:<21} {:<20} {}",
            s.name,
            state,
            s.target,
            when(s.last_success),
            next,
            hb,
            s.last_error.as_deref().unwrap_or("-")
        );
    }
}

fn default_borrower() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "operator".to_owned())
}

async fn operate(
    config: Config,
    command: Command,
    as_json: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let cw = Credwheel::builder(config).build().await?;
    match command {
        Command::Validate { .. } => {
            check_policies(&cw, as_json, true).await?;
            if !as_json {
                println!("configuration is valid, and every target accepts its policy");
            }
        }
        Command::Status { needs_operator } => {
            let rows = if needs_operator {
                cw.needs_operator().await?
            } else {
                cw.status().await?
            };
            if as_json {
                println!("{}", Value::Array(rows.iter().map(status_json).collect()));
            } else {
                print_status(&rows);
            }
        }
        Command::Rotate { name } => {
            let outcome = cw.rotate_now(&name).await?;
            report(as_json, &name, "rotated", &outcome);
        }
        Command::Reconcile { name } => {
            let outcome = cw.reconcile(&name).await?;
            report(as_json, &name, "reconciled", &outcome);
        }
        Command::Creds { role } => {
            // The one command that prints secrets, as Vault's `read ad/creds/ROLE`.
            let c = cw.creds(&role).await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "username": c.username,
                        "current_password": c.current.expose_secret(),
                        "last_password": c.last.as_ref().map(|l| l.expose_secret()),
                        "last_rotated": c.last_rotated.map(format_instant),
                        "rotated_by_this_read": c.rotated,
                    })
                );
            } else {
                println!("username           {}", c.username);
                println!("current_password   {}", c.current.expose_secret());
                println!(
                    "last_password      {}",
                    c.last.as_ref().map_or("-", |l| l.expose_secret())
                );
                println!("last_rotated       {}", when(c.last_rotated));
            }
        }
        Command::CheckOut {
            set,
            ttl,
            borrower,
            password_file,
        } => {
            let ttl = ttl
                .map(|t| credwheel::schedule::parse_duration(&t))
                .transpose()?;
            let borrower = borrower.unwrap_or_else(default_borrower);
            let out = cw.check_out(&set, &borrower, ttl).await?;
            let written = match &password_file {
                Some(path) => {
                    write_private(path, &out.password)?;
                    Some(path.display().to_string())
                }
                None => None,
            };
            if as_json {
                println!(
                    "{}",
                    json!({
                        "library": set, "account": out.account, "borrower": borrower,
                        "lease_id": out.lease_id, "expires_at": format_instant(out.expires_at),
                        "password_file": written,
                    })
                );
            } else {
                println!(
                    "checked out {} from {set} for {borrower} until {} (lease {})",
                    out.account,
                    format_instant(out.expires_at),
                    out.lease_id
                );
                match written {
                    Some(p) => println!("password written to {p} (mode 0600)"),
                    None => println!("password not shown: use --password-file PATH"),
                }
            }
        }
        Command::CheckIn {
            set,
            account,
            borrower,
            force,
        } => {
            let borrower = borrower.unwrap_or_else(default_borrower);
            let name = cw
                .check_in(&set, &borrower, account.as_deref(), force)
                .await?;
            if as_json {
                println!(
                    "{}",
                    json!({ "library": set, "checked_in": name, "rotated": true })
                );
            } else {
                println!("checked in {name} to {set}; its password was rotated");
            }
        }
        Command::Renew {
            set,
            account,
            ttl,
            borrower,
        } => {
            let ttl = ttl
                .map(|t| credwheel::schedule::parse_duration(&t))
                .transpose()?;
            let borrower = borrower.unwrap_or_else(default_borrower);
            let r = cw.renew(&set, &borrower, account.as_deref(), ttl).await?;
            if as_json {
                println!(
                    "{}",
                    json!({
                        "library": set, "account": r.account, "lease_id": r.lease_id,
                        "expires_at": format_instant(r.expires_at),
                        "max_expires_at": format_instant(r.max_expires_at),
                    })
                );
            } else {
                println!(
                    "renewed {} from {set} until {} (at most until {})",
                    r.account,
                    format_instant(r.expires_at),
                    format_instant(r.max_expires_at)
                );
            }
        }
        Command::Library {
            command: LibraryCommand::Status { set },
        } => {
            let st = cw.library_status(&set).await?;
            if as_json {
                let members: Vec<Value> = st
                    .members
                    .iter()
                    .map(|m| json!({"account": m.account, "available": m.available, "borrower": m.borrower, "expires_at": m.expires_at.map(format_instant)}))
                    .collect();
                println!("{}", json!({ "library": st.name, "accounts": members }));
            } else {
                println!(
                    "{:<20} {:<10} {:<16} EXPIRES",
                    "ACCOUNT", "AVAILABLE", "BORROWER"
                );
                for m in &st.members {
                    println!(
                        "{:<20} {:<10} {:<16} {}",
                        m.account,
                        m.available,
                        m.borrower.as_deref().unwrap_or("-"),
                        when(m.expires_at)
                    );
                }
            }
        }
        Command::Pause { name } => {
            cw.pause(&name).await?;
            report_simple(as_json, &name, "paused");
        }
        Command::Resume { name } => {
            cw.resume(&name).await?;
            report_simple(as_json, &name, "resumed");
        }
        Command::Reseal => {
            let (read, resealed) = cw.reseal().await?;
            if as_json {
                println!("{}", json!({ "records": read, "resealed": resealed }));
            } else {
                println!("{resealed} of {read} records re-sealed under the active key");
            }
        }
        Command::Run => {
            check_policies(&cw, as_json, false).await?;
            if !as_json {
                print_status(&cw.status().await?);
            }
            tracing::info!(
                rotations = cw.config().rotations.len(),
                "scheduler running; Ctrl-C stops it"
            );
            cw.run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
            tracing::info!("scheduler stopped");
        }
    }
    Ok(())
}

fn report(as_json: bool, name: &str, verb: &str, outcome: &Outcome) {
    let version = match outcome {
        Outcome::Rotated { version } => Some(*version),
        _ => None,
    };
    if as_json {
        println!(
            "{}",
            json!({ "rotation": name, verb: version.is_some(), "version": version })
        );
    } else {
        match version {
            Some(v) => println!("{verb} {name} (version {v})"),
            None => println!("{name}: nothing to do"),
        }
    }
}

fn report_simple(as_json: bool, name: &str, verb: &str) {
    if as_json {
        println!("{}", json!({ "rotation": name, "result": verb }));
    } else {
        println!("{name}: {verb}");
    }
}

/// Writes a secret to a new file readable by the owner only.
fn write_private(path: &std::path::Path, secret: &SecretString) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(secret.expose_secret().as_bytes())?;
    f.sync_all()
}

fn policy_format(f: PolicyFormat) -> &'static str {
    match f {
        PolicyFormat::VaultHcl => "vault-hcl",
        PolicyFormat::Infisical => "infisical",
        PolicyFormat::AdComplexity => "ad-complexity",
        _ => "default",
    }
}

fn next_due_text(n: NextDue) -> String {
    match n {
        NextDue::Scheduled(d) => match d.not_after {
            Some(end) => format!("{} (until {})", format_instant(d.slot), format_instant(end)),
            None => format_instant(d.slot),
        },
        NextDue::OnRead { expires_at } => format!("on read after {}", format_instant(expires_at)),
        _ => "manual".into(),
    }
}

fn validate(config: &Config, as_json: bool) {
    let now = jiff_now_ms();
    let store = match &config.store {
        StoreConfig::Sqlite { path } => format!("sqlite {}", path.display()),
        StoreConfig::Postgres { .. } => "postgres".to_owned(),
        _ => "other".to_owned(),
    };
    let rotations: Vec<Value> = config
        .rotations
        .iter()
        .map(|r| {
            let next = r
                .schedule
                .as_ref()
                .map(|s| s.next_due(now, None, now))
                .map_or_else(|| "manual".to_owned(), next_due_text);
            json!({
                "name": r.name,
                "target": r.target.describe(),
                "method": r.method.as_str(),
                "policy": {
                    "format": policy_format(r.policy_format),
                    "length": r.policy.length(),
                    "entropy_bits": (r.policy.entropy_bits() * 10.0).round() / 10.0,
                },
                "schedule": r.schedule.as_ref().map_or_else(|| "manual".to_owned(), |s| s.to_string()),
                "next_due_if_enrolled_now": next,
                "secrets": { "username": r.secrets.username, "password": r.secrets.password },
                "imports_initial_password": r.initial_password.is_some(),
                "heartbeat": r.heartbeat,
                "reconcile_on_drift": r.reconcile_on_drift,
            })
        })
        .collect();
    let libraries: Vec<Value> = config
        .libraries
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "connection": l.connection,
                "accounts": l.accounts,
                "ttl_s": l.ttl.as_secs(),
                "max_ttl_s": l.max_ttl.as_secs(),
            })
        })
        .collect();
    let sinks: Vec<String> = config
        .sinks
        .iter()
        .map(|s| match s {
            SinkConfig::File { dir } => format!("file {}", dir.display()),
            _ => "other".to_owned(),
        })
        .collect();
    if as_json {
        let summary = json!({
            "valid": true,
            "store": store,
            "key_ring": {
                "active": config.key_ring.active,
                "keys": config.key_ring.keys.iter().map(|k| json!({"id": k.id, "source": k.source.describe()})).collect::<Vec<_>>(),
            },
            "ad_connections": config.ad_connections.iter().map(|(n, c)| json!({"name": n, "urls": c.urls, "bind_dn": c.bind_dn})).collect::<Vec<_>>(),
            "windows_hosts": config.windows_hosts.iter().map(|(n, h)| json!({"name": n, "address": h.address, "port": h.port, "admin_user": h.admin_user})).collect::<Vec<_>>(),
            "sinks": sinks,
            "rotations": rotations,
            "libraries": libraries,
        });
        println!("{summary}");
        return;
    }
    println!("configuration is valid");
    println!("store      {store}");
    println!(
        "key ring   active {} of [{}]",
        config.key_ring.active,
        config
            .key_ring
            .keys
            .iter()
            .map(|k| format!("{} ({})", k.id, k.source.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, c) in &config.ad_connections {
        println!("ad         {name}: {} as {}", c.urls.join(" "), c.bind_dn);
    }
    for (name, h) in &config.windows_hosts {
        println!(
            "windows    {name}: {}:{} admin {}",
            h.address, h.port, h.admin_user
        );
    }
    for s in &sinks {
        println!("sink       {s}");
    }
    println!();
    println!(
        "{:<20} {:<32} {:<6} {:<22} {:<40} next due (if enrolled now)",
        "ROTATION", "TARGET", "METHOD", "POLICY", "SCHEDULE"
    );
    for r in &config.rotations {
        let target = match &r.target {
            Target::Ad { .. } | Target::Windows { .. } => r.target.describe(),
            _ => "other".to_owned(),
        };
        let policy = format!(
            "{} len {}",
            policy_format(r.policy_format),
            r.policy.length()
        );
        let schedule = r
            .schedule
            .as_ref()
            .map_or_else(|| "manual".to_owned(), |s| s.to_string());
        let next = r
            .schedule
            .as_ref()
            .map(|s| s.next_due(now, None, now))
            .map_or_else(|| "manual".to_owned(), next_due_text);
        println!(
            "{:<20} {:<32} {:<6} {:<22} {:<40} {next}",
            r.name,
            target,
            r.method.as_str(),
            policy,
            schedule
        );
    }
    for l in &config.libraries {
        println!(
            "library    {}: {} on {} (ttl {}s, max {}s)",
            l.name,
            l.accounts.join(", "),
            l.connection,
            l.ttl.as_secs(),
            l.max_ttl.as_secs()
        );
    }
}

fn jiff_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
