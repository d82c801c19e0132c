//! `switchboard`: the same core as the desktop app, without a window.
//!
//! ```text
//! switchboard [--data-dir DIR] [--ca-file PEM] profile add --server URL --login ID_OR_PHONE --password-stdin [--name NAME] [--color HEX] [--allow-insecure-http]
//! switchboard [--data-dir DIR] profile list
//! switchboard [--data-dir DIR] profile remove NAME_OR_ID
//! switchboard [--data-dir DIR] send --profile NAME_OR_ID --to PUBLIC_ID "text"
//! switchboard [--data-dir DIR] run
//! ```
//! Exit codes: 0 ok, 2 usage, 1 failure with a one-line reason on stderr.
//!
//! Services are reached over HTTPS/WSS with the system's root certificates, plus the CA in
//! `--ca-file` (or `SWITCHBOARD_CA_FILE`) for a private deployment. Plain `http://` goes only
//! to this computer, unless a profile is added with `--allow-insecure-http`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use switchboard_core::official::OfficialRole;
use switchboard_core::official::{InboxFilter, PublishTarget};
use switchboard_core::vault::KeyringVault;
use switchboard_core::{
    ConnState, ConversationId, Engine, EventBody, ProfileEventKind, ProfileId, SignIn, TlsConfig,
};

#[derive(Parser)]
#[command(
    version,
    about = "Every Switchboard account signed in at once, without a window."
)]
struct Args {
    /// Where profiles live (instead of the platform data dir).
    #[arg(long, global = true, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A CA certificate (PEM) to trust besides the system's, for a private deployment.
    #[arg(long, global = true, env = switchboard_core::tls::CA_FILE_ENV)]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Add, list and remove profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCmd,
    },
    /// Send a message from one profile.
    Send {
        /// The profile's id, or its name (refused when several profiles share it).
        #[arg(long)]
        profile: String,
        /// A contact's public ID, or a group's id (`g_…`).
        #[arg(long, value_parser = conversation)]
        to: ConversationId,
        text: String,
    },
    /// Keep every profile live; one line per event on stdout.
    Run,
    /// Official accounts operated by any profile: list them, read the customer inbox, answer
    /// as one, publish to several.
    Official {
        #[command(subcommand)]
        command: OfficialCmd,
    },
}

#[derive(Subcommand)]
enum OfficialCmd {
    /// profile, id, name, your role, unanswered conversations.
    List,
    /// The customer conversations of every official account the profiles serve, newest
    /// first: profile, official account, customer, unanswered, held by, last message.
    Inbox {
        /// Only those nobody holds.
        #[arg(long)]
        unclaimed: bool,
        /// Only those this profile's account holds.
        #[arg(long)]
        mine: bool,
        /// Only this official account's (`o_…`).
        #[arg(long = "official")]
        official: Option<String>,
    },
    /// Answer a customer as an official account, from the profile that operates it.
    Reply {
        /// The official account (`o_…`).
        #[arg(long = "as")]
        official: String,
        /// The customer's public ID.
        #[arg(long)]
        to: String,
        text: String,
    },
    /// Publish one article to several official accounts, each through the profile that
    /// operates it; one line per account. Running the same command again publishes nothing
    /// twice.
    Publish {
        /// An official account (`o_…`); repeat for several.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        #[arg(long)]
        title: String,
        /// A file with the article's plain text (`-` for standard input).
        #[arg(long)]
        body_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// Sign in and add a profile.
    Add {
        #[arg(long)]
        server: String,
        /// A public ID or a phone number (E.164).
        #[arg(long)]
        login: String,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        /// `#rrggbb`.
        #[arg(long)]
        color: Option<String>,
        /// The current code of the authenticator app, for accounts with two-step verification.
        #[arg(long)]
        totp: Option<String>,
        /// Allow plain http:// to a service that is not on this computer. Anyone on the
        /// network can then read and change this profile's traffic, password included; the
        /// profile is listed as "not encrypted".
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// id, name, account, server, state, unread.
    List,
    /// Sign out, delete the keyring entry and the profile's folder.
    Remove { name_or_id: String },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What was typed after `--to`, as an id: a malformed one is a usage error before anything
/// starts, and never reaches the service as some other id.
fn conversation(typed: &str) -> Result<ConversationId, switchboard_core::CoreError> {
    ConversationId::parse(typed.trim())
}

fn check_color(color: &Option<String>) -> anyhow::Result<()> {
    if let Some(c) = color {
        let ok =
            c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            bail!("--color takes #rrggbb, not {c:?}");
        }
    }
    Ok(())
}

fn state_word(s: &ConnState) -> String {
    match s {
        ConnState::Connecting => "connecting".into(),
        ConnState::Live => "live".into(),
        ConnState::Offline(why) => format!("offline ({why})"),
        ConnState::Certificate(why) => format!("certificate error ({why})"),
        ConnState::SignedOut => "signed out".into(),
        ConnState::Stopped => "ready".into(),
        ConnState::Locked(why) => format!("locked ({why})"),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = switchboard_core::data_dir(args.data_dir.as_deref())?;
    let tls = match &args.ca_file {
        Some(path) => TlsConfig::with_extra_ca_file(path)?,
        None => TlsConfig::system()?,
    };
    let engine = Engine::open_with_tls(&dir, KeyringVault::os()?, tls).await?;
    let result = command(&engine, args.command).await;
    engine.shutdown().await;
    result
}

async fn command(engine: &Engine, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Profile {
            command:
                ProfileCmd::Add {
                    server,
                    login,
                    password_stdin: _,
                    name,
                    color,
                    totp,
                    allow_insecure_http,
                },
        } => {
            check_color(&color)?;
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                bail!("no password on standard input");
            }
            let p = engine
                .add_profile(SignIn {
                    server,
                    login,
                    password,
                    name,
                    color,
                    totp_code: totp,
                    allow_insecure_http,
                })
                .await
                .map_err(|e| match e.code() {
                    // The core's message says an allowance exists; here is how to give it.
                    "insecure_http" => anyhow::anyhow!("{e} (--allow-insecure-http)"),
                    _ => e.into(),
                })?;
            println!("{}\t{}\t{}", p.record.id, p.record.name, p.record.public_id);
        }
        Cmd::Profile {
            command: ProfileCmd::List,
        } => {
            for p in engine.list_profiles().await? {
                let r = &p.record;
                let server = if r.allow_insecure_http {
                    format!("{} (not encrypted)", r.server_url)
                } else {
                    r.server_url.clone()
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.name,
                    r.public_id,
                    server,
                    state_word(&p.state),
                    p.unread
                );
            }
        }
        Cmd::Profile {
            command: ProfileCmd::Remove { name_or_id },
        } => {
            let profile = engine.profile_id_by_name_or_id(&name_or_id).await?;
            engine.remove_profile(&profile).await?;
        }
        Cmd::Send { profile, to, text } => {
            // What was typed becomes an id once; everything after acts on that id.
            let profile = engine.profile_id_by_name_or_id(&profile).await?;
            engine.start_profile(&profile).await?;
            let sent = engine
                .send_and_wait(&profile, &to, &text, Duration::from_secs(20))
                .await?;
            println!("sent {}", sent.client_id);
        }
        Cmd::Official { command } => official(engine, command).await?,
        Cmd::Run => {
            let mut bus = engine.subscribe();
            engine.enable_notifications(Arc::new(
                switchboard_core::platform::notifications::DesktopSink::plain(),
            ));
            engine.start_all().await?;
            let names: std::collections::HashMap<ProfileId, String> = engine
                .list_profiles()
                .await?
                .into_iter()
                .map(|p| (p.record.id.clone(), p.record.name.clone()))
                .collect();
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    ev = bus.recv() => {
                        let Ok(ev) = ev else { continue };
                        let name = names.get(&ev.profile).cloned().unwrap_or_else(|| ev.profile.to_string());
                        match ev.kind {
                            ProfileEventKind::Event(e) => {
                                println!("{name} {} {}", e.body.name(), summary(&e.body));
                            }
                            ProfileEventKind::State(s) => println!("{name} state {}", state_word(&s)),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Brings every signed-in profile up to date with its service (a profile that cannot be
/// reached is named on stderr and left as its last run saw it).
async fn catch_up_all(engine: &Engine) -> anyhow::Result<()> {
    for p in engine.list_profiles().await? {
        if let Err(e) = engine.catch_up(&p.record.id, Duration::from_secs(20)).await {
            eprintln!("switchboard: {}: {e}", p.record.name);
        }
    }
    Ok(())
}

/// The profile that operates `official` with a role that `may` allows, first in sidebar order.
async fn operating(
    engine: &Engine,
    official: &str,
    may: fn(OfficialRole) -> bool,
) -> anyhow::Result<ProfileId> {
    let all = engine.official_accounts().await?;
    if let Some(o) = all.iter().find(|o| o.id == official && may(o.role)) {
        return Ok(o.profile.clone());
    }
    match all.iter().find(|o| o.id == official) {
        Some(o) => bail!(
            "{official}: your role there ({}) does not allow this",
            o.role.as_str()
        ),
        None => bail!("no profile operates {official}"),
    }
}

async fn official(engine: &Engine, cmd: OfficialCmd) -> anyhow::Result<()> {
    catch_up_all(engine).await?;
    let names: std::collections::HashMap<ProfileId, String> = engine
        .list_profiles()
        .await?
        .into_iter()
        .map(|p| (p.record.id.clone(), p.record.name.clone()))
        .collect();
    let name = |p: &ProfileId| names.get(p).cloned().unwrap_or_else(|| p.to_string());
    match cmd {
        OfficialCmd::List => {
            for o in engine.official_accounts().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    name(&o.profile),
                    o.id,
                    o.name,
                    o.role.as_str(),
                    o.unanswered
                );
            }
        }
        OfficialCmd::Inbox {
            unclaimed,
            mine,
            official,
        } => {
            let filter = InboxFilter {
                official,
                mine,
                unclaimed,
            };
            for e in engine.customer_inbox(&filter).await? {
                let last: String = e
                    .last_body
                    .chars()
                    .take(80)
                    .filter(|c| !c.is_control())
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{last}",
                    name(&e.profile),
                    e.official_name,
                    e.customer,
                    e.unanswered,
                    e.claimed_by.as_deref().unwrap_or("-"),
                );
            }
        }
        OfficialCmd::Reply { official, to, text } => {
            let profile = operating(engine, official.trim(), OfficialRole::serves).await?;
            let sent = engine
                .reply_as(&profile, official.trim(), to.trim(), &text)
                .await?;
            println!("sent {} from {}", sent.id, name(&profile));
        }
        OfficialCmd::Publish {
            to,
            title,
            body_file,
        } => {
            let body = if body_file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the article")?;
                s
            } else {
                std::fs::read_to_string(&body_file)
                    .with_context(|| format!("reading {}", body_file.display()))?
            };
            let mut targets = Vec::new();
            for official in &to {
                let official = official.trim().to_string();
                let profile = operating(engine, &official, OfficialRole::publishes).await?;
                targets.push(PublishTarget {
                    profile,
                    official_id: official,
                });
            }
            // The same article to the same accounts is the same publish: a rerun after a lost
            // answer publishes nothing twice.
            let key = {
                use sha2::Digest as _;
                let mut h = sha2::Sha256::new();
                h.update(title.as_bytes());
                h.update([0]);
                h.update(body.as_bytes());
                format!("cli-{:x}", h.finalize())
            };
            let mut failed = false;
            for outcome in engine.publish(&targets, &title, &body, &key).await {
                match (outcome.article, outcome.error) {
                    (Some(a), _) => println!("{}\tpublished {}", outcome.official_id, a.id),
                    (None, Some((code, message))) => {
                        failed = true;
                        println!("{}\tfailed {code}: {message}", outcome.official_id);
                    }
                    (None, None) => {}
                }
            }
            if failed {
                bail!("some official accounts did not publish");
            }
        }
    }
    Ok(())
}

/// One line about an event's data, without money amounts or anything secret.
fn summary(body: &EventBody) -> String {
    match body {
        EventBody::MessageNew(m) => {
            let text: String = m
                .body
                .chars()
                .take(80)
                .filter(|c| !c.is_control())
                .collect();
            format!("{}: {text}", m.from)
        }
        EventBody::RedEnvelopeClaimed(c) => c.public_id.clone(),
        EventBody::SessionRevoked(r) => r.session_id.clone(),
        _ => String::new(),
    }
}
