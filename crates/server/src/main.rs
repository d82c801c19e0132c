//! `switchboard-server [--config FILE] [--listen ADDR] [--database URL] [--dev]`

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use switchboard_server::{Config, Services};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The Switchboard service: accounts by phone number, sessions, two-step verification.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [env: SWITCHBOARD_LISTEN] (default 127.0.0.1:8750).
    #[arg(long)]
    listen: Option<String>,
    /// Database URL, e.g. sqlite:///var/lib/switchboard/server.db [env: SWITCHBOARD_DATABASE_URL].
    #[arg(long)]
    database: Option<String>,
    /// Development mode: console SMS gateway and the dev SMS outbox [env: SWITCHBOARD_DEV=1].
    #[arg(long)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Tools for the wallet's ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCmd,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Verify every invariant of the ledger (balanced journal, cached = derived balances,
    /// conservation, no negative wallet, escrow = unclaimed shares); exit 1 at the first
    /// violation.
    Check,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Flags beat the environment: apply them as the environment variables they stand for,
    // so every value goes through one parser and one validation.
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Some(listen) = args.listen {
        env.insert("SWITCHBOARD_LISTEN".into(), listen);
    }
    if let Some(db) = args.database {
        env.insert("SWITCHBOARD_DATABASE_URL".into(), db);
    }
    if args.dev {
        env.insert("SWITCHBOARD_DEV".into(), "1".into());
    }
    if let Some(Cmd::Ledger {
        command: LedgerCmd::Check,
    }) = args.command
    {
        let config = Config::parse(args.config.as_deref(), &env).context("configuration")?;
        return ledger_check(&config);
    }
    let config = Config::load(args.config.as_deref(), &env).context("configuration")?;
    let _log_guard = init_logging(&config)?;

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let admin = tokio::net::TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {} (admin_listen)", config.admin_listen))?;
        let admin_addr = admin.local_addr()?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            stop.cancel();
        });
        let dev = config.dev;
        // `build` opens and migrates the database and loads the certificate. Once it has
        // returned, the listener (bound above) is served from the next instant and anything that
        // connects meanwhile waits in the backlog: that is readiness, over TLS as over plain
        // HTTP, with no probe that would have to trust the certificate.
        let (router, app) = switchboard_server::build(config, Services::default(), shutdown.clone())
            .await
            .context("starting")?;
        let scheme = if app.tls.is_some() { "https" } else { "http" };
        let serve = tokio::spawn(switchboard_server::app::serve(router, app, listener, Some(admin)));
        println!("listening on {scheme}://{addr}");
        println!("admin on http://{admin_addr}");
        if dev {
            println!("development mode: SMS codes are printed here and at {scheme}://{addr}/v1/dev/sms-outbox?phone=+86...");
        }
        serve.await.context("server task")?.context("serving")?;
        Ok(())
    })
}

fn ledger_check(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let url = switchboard_server::app::database_url(config)?;
        let store = switchboard_store::open(&url).await?;
        let verdict = store.ledger_check().await;
        store.close().await;
        match verdict? {
            None => {
                println!("ledger ok");
                Ok(())
            }
            Some(violation) => anyhow::bail!("ledger violation: {violation}"),
        }
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// stderr always; a daily-rotated file in the platform state dir unless `log.file = false`.
fn init_logging(
    config: &Config,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    let filter = EnvFilter::try_new(&config.log.filter)
        .with_context(|| format!("log.filter {:?}", config.log.filter))?;
    // Colour only on a terminal: under systemd or a pipe, escape codes garble the records.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if !config.log.file {
        tracing_subscriber::registry()
            .with(filter)
            .with(stderr)
            .init();
        return Ok(None);
    }
    let dir = if config.log.dir.is_empty() {
        let dirs = directories::ProjectDirs::from("", "", "switchboard-server")
            .context("no home directory for the log file; set log.dir or log.file = false")?;
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .join("logs")
    } else {
        PathBuf::from(&config.log.dir)
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("switchboard-server")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&dir)
        .context("opening the log file")?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .init();
    Ok(Some(guard))
}
