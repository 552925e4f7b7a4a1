//! `credwheel`: the operator CLI over the credwheel facade.
//!
//! ```text
//! credwheel --config credwheel.toml validate
//! credwheel --config credwheel.toml --json status
//! credwheel rotate NAME | reconcile NAME | creds ROLE
//! credwheel check-out SET | check-in SET | library status SET
//! credwheel run
//! ```
//!
//! Output is human-readable by default and JSON with `--json`; logs go to stderr
//! (human, or JSON with `--json` / `--log-format json`). Only `creds` ever prints a
//! password.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints; only `creds` prints a secret.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use credwheel::Config;
use credwheel::config::{PolicyFormat, SinkConfig, StoreConfig, Target};
use credwheel::schedule::{NextDue, format_instant};
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
    Validate,
    /// Status of every rotation (last success, next due, last error, state).
    Status,
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
    /// Library commands.
    Library {
        #[command(subcommand)]
        command: LibraryCommand,
    },
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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

    match cli.command {
        Command::Validate => {
            validate(&config, cli.json);
            ExitCode::SUCCESS
        }
        other => {
            let what = match other {
                Command::Status => "status",
                Command::Rotate { .. } => "rotate",
                Command::Reconcile { .. } => "reconcile",
                Command::Creds { .. } => "creds",
                Command::CheckOut { .. } => "check-out",
                Command::CheckIn { .. } => "check-in",
                Command::Library { .. } => "library status",
                Command::Run => "run",
                Command::Validate => "validate",
            };
            if cli.json {
                println!(
                    "{}",
                    json!({ "error": format!("{what}: not available in this build") })
                );
            } else {
                eprintln!("{what}: not available in this build");
            }
            ExitCode::from(3)
        }
    }
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
