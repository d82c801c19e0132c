//! switchboard-core: the client engine, with no window. Every profile (one signed-in account
//! on one service) runs at once in its own sandbox: its own folder (0700) and SQLite
//! database, its token only in the OS keyring, its own task that a supervisor restarts if it
//! fails. [`Engine`] is the typed API the CLI and the desktop app both call.

pub mod account;
pub mod client;
mod db;
pub mod error;
pub mod ids;
pub mod media;
pub mod moments;
pub mod notify;
pub mod official;
pub mod platform;
pub mod profile;
pub mod registry;
pub mod stats;
pub mod store;
pub mod tls;
pub mod vault;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
pub use crate::error::{CoreError, Result};
pub use crate::ids::{AccountId, ConversationId, GroupId, PublicId};
use crate::profile::ProfileRuntime;
pub use crate::profile::{ConnState, ProfileEvent, ProfileEventKind};
use crate::registry::Registry;
pub use crate::registry::{ProfileId, ProfileRecord};
use crate::store::{Conversation, OutboxEntry, ProfileStore, StoredMessage};
pub use crate::tls::TlsConfig;
use crate::tls::Transport;
use crate::vault::{DatabaseKey, Secrets, Vault};
/// What [`ProfileEventKind::Event`] carries, for front ends that do not depend on the protocol
/// crate themselves.
pub use switchboard_protocol::events::{Event, EventBody, EventKind};

/// How to add a profile by signing in.
#[derive(Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignIn {
    pub server: String,
    pub login: String,
    pub password: String,
    pub name: Option<String>,
    pub color: Option<String>,
    /// For accounts with two-step verification: a TOTP or recovery code.
    pub totp_code: Option<String>,
    /// The user's explicit choice to reach this service over plain http although it is not on
    /// this computer. Without it such a URL is refused; with it the profile is marked "not
    /// encrypted". Meaningless (and not stored) for https and loopback URLs.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("server", &self.server)
            .field("login", &self.login)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

/// A profile as front ends list it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileInfo {
    #[serde(flatten)]
    pub record: ProfileRecord,
    pub state: ConnState,
    pub unread: i64,
}

/// The notifier and where it shows things, shared with its task.
struct Notifications {
    notifier: std::sync::Mutex<notify::Notifier>,
    sink: Arc<dyn notify::NotificationSink>,
}

impl Notifications {
    fn with<T>(&self, f: impl FnOnce(&mut notify::Notifier) -> T) -> T {
        f(&mut self.notifier.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Shows off the async workers: a notification server may be slow to answer.
    async fn show(&self, batch: Vec<notify::Notification>) {
        for n in batch {
            let sink = self.sink.clone();
            let _ = tokio::task::spawn_blocking(move || sink.show(&n)).await;
        }
    }
}

struct Running {
    runtime: Arc<ProfileRuntime>,
    cancel: CancellationToken,
    supervisor: tokio::task::JoinHandle<()>,
}

/// The core: the registry, every live profile, and the bus they publish on.
pub struct Engine {
    data_dir: PathBuf,
    registry: Registry,
    vault: Arc<dyn Vault>,
    bus: broadcast::Sender<ProfileEvent>,
    running: Mutex<HashMap<ProfileId, Running>>,
    device_name: String,
    /// Which certificates every profile's connections trust.
    tls: TlsConfig,
    notifications: std::sync::OnceLock<(Arc<Notifications>, CancellationToken)>,
    /// The profile money last moved from, and when (the wrong-identity guard).
    last_money: std::sync::Mutex<Option<(ProfileId, std::time::Instant)>>,
    /// Held while a profile's database key is looked up or made and its database opened: two
    /// callers must never make two keys for one database.
    opening: Mutex<()>,
    /// Each profile's image cache bound, in bytes.
    media_cache_bytes: std::sync::atomic::AtomicI64,
}

const COLORS: [&str; 6] = [
    "#2f6fed", "#e0662b", "#1f9d6b", "#a845d6", "#d6456a", "#3aa0b8",
];

/// `<data dir>/switchboard`: `--data-dir`/`SWITCHBOARD_DATA_DIR` when given, else the
/// platform's local data dir ([`platform::local_data_dir`]).
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(dir) => Ok(dir.to_path_buf()),
        None => platform::local_data_dir(),
    }
}

fn make_private_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)?;
    Ok(platform::make_private(path)?)
}

impl Engine {
    /// Opens (creating) the data dir and its registry, trusting the platform's root
    /// certificates. Profiles start with [`start_all`].
    pub async fn open(data_dir: &Path, vault: Arc<dyn Vault>) -> Result<Self> {
        Self::open_with_tls(data_dir, vault, TlsConfig::system()?).await
    }

    /// Like [`open`](Self::open), trusting what `tls` says: e.g. a private deployment's CA
    /// besides the platform's roots ([`TlsConfig::with_extra_ca_pem`], [`TlsConfig::from_env`]).
    pub async fn open_with_tls(
        data_dir: &Path,
        vault: Arc<dyn Vault>,
        tls: TlsConfig,
    ) -> Result<Self> {
        make_private_dir(data_dir)?;
        make_private_dir(&data_dir.join("profiles"))?;
        let registry = Registry::open(&data_dir.join("profiles.db")).await?;
        let (bus, _) = broadcast::channel(4096);
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            registry,
            vault,
            bus,
            running: Mutex::new(HashMap::new()),
            device_name: format!("Switchboard on {}", platform::device_name()),
            tls,
            notifications: std::sync::OnceLock::new(),
            last_money: std::sync::Mutex::new(None),
            opening: Mutex::new(()),
            media_cache_bytes: std::sync::atomic::AtomicI64::new(media::CACHE_BYTES),
        })
    }

    /// Raises native notifications for every profile through `sink` from now on (call before
    /// starting profiles).
    pub fn enable_notifications(&self, sink: Arc<dyn notify::NotificationSink>) {
        let n = Arc::new(Notifications {
            notifier: std::sync::Mutex::new(notify::Notifier::new()),
            sink,
        });
        let cancel = CancellationToken::new();
        if self.notifications.set((n.clone(), cancel.clone())).is_err() {
            return;
        }
        let mut bus = self.bus.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {
                        let batch = n.with(|x| x.tick(notify::local_now()));
                        n.show(batch).await;
                    }
                    ev = bus.recv() => {
                        let ev = match ev {
                            Ok(ev) => ev,
                            // A lagging notifier skips, it never blocks the profiles.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        let batch = match &ev.kind {
                            ProfileEventKind::Event(e) => {
                                let me = n.with(|x| x.public_id(&ev.profile));
                                n.with(|x| x.on_event(&ev.profile, &me, e, notify::local_now()))
                            }
                            ProfileEventKind::State(ConnState::SignedOut) => n.with(|x| x.on_signed_out(&ev.profile)),
                            ProfileEventKind::State(_) => Vec::new(),
                        };
                        n.show(batch).await;
                    }
                }
            }
        });
    }

    pub async fn set_policy(&self, profile: &ProfileId, policy: notify::Policy) -> Result<()> {
        let record = self.registry.find(profile).await?;
        self.registry.set_policy(&record.id, &policy).await?;
        if let Some((n, _)) = self.notifications.get() {
            n.with(|x| x.set_profile(&record.id, &record.name, record.public_id.as_str(), policy));
        }
        Ok(())
    }

    pub async fn policy(&self, profile: &ProfileId) -> Result<notify::Policy> {
        let record = self.registry.find(profile).await?;
        self.registry.policy(&record.id).await
    }

    pub fn set_do_not_disturb(&self, on: bool) {
        if let Some((n, _)) = self.notifications.get() {
            n.with(|x| x.do_not_disturb = on);
        }
    }

    /// The conversation open in a focused window, if any: it raises no notifications.
    pub fn set_focus(&self, focus: Option<(ProfileId, ConversationId)>) {
        if let Some((n, _)) = self.notifications.get() {
            n.with(|x| x.focused = focus.map(|(p, c)| (p, c.into_string())));
        }
    }

    /// Runs a keyring call on a blocking thread: the OS keyring answers over D-Bus (or
    /// Keychain, or Credential Manager) and may take its time; the async workers never wait.
    async fn vault_call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Vault, &ProfileId) -> Result<T> + Send + 'static,
        profile_id: &ProfileId,
    ) -> Result<T> {
        let (vault, id) = (self.vault.clone(), profile_id.clone());
        tokio::task::spawn_blocking(move || call(vault.as_ref(), &id))
            .await
            .map_err(|e| CoreError::Vault(format!("keyring task failed: {e}")))?
    }

    /// The folder this engine keeps everything in (its profiles among it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn profile_dir(&self, id: &ProfileId) -> PathBuf {
        self.data_dir.join("profiles").join(id.as_str())
    }

    async fn secrets(&self, id: &ProfileId) -> Result<Secrets> {
        self.vault_call(|v, id| v.load(id), id).await
    }

    /// Opens a profile's encrypted database with its key from the keyring. A profile from
    /// before encryption gets its key here, stored beside its token *before* the database is
    /// encrypted with it, so a crash in between leaves a plain database and its key, and the
    /// next start encrypts it. An encrypted database whose key is gone is refused, never
    /// given a new key.
    async fn open_store(&self, id: &ProfileId) -> Result<ProfileStore> {
        let _one_at_a_time = self.opening.lock().await;
        let path = self.profile_dir(id).join("profile.db");
        let mut secrets = self.secrets(id).await?;
        let key = match secrets.database_key.clone() {
            Some(key) => key,
            None if path.exists() && !db::is_plain(&path)? => {
                return Err(CoreError::DatabaseKey(path.display().to_string()));
            }
            None => {
                let key = DatabaseKey::generate()?;
                secrets.database_key = Some(key.clone());
                self.vault_call(move |v, id| v.store(id, &secrets), id)
                    .await?;
                key
            }
        };
        ProfileStore::open(&path, &key).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ProfileEvent> {
        self.bus.subscribe()
    }

    /// Signs in and adds the profile; it starts at once.
    pub async fn add_profile(&self, req: SignIn) -> Result<ProfileInfo> {
        // A form's empty optional fields mean "not given".
        let given = |v: Option<String>| v.filter(|x| !x.trim().is_empty());
        let req = SignIn {
            name: given(req.name),
            totp_code: given(req.totp_code),
            color: given(req.color),
            ..req
        };
        let client = Client::new(&req.server, &self.tls, req.allow_insecure_http)?;
        let (session, token) = client
            .sign_in(
                &req.login,
                &req.password,
                req.totp_code.as_deref(),
                &self.device_name,
            )
            .await?;
        let history_until = match client.head(&token).await {
            Ok(head) => head,
            Err(e) => {
                let _ = client.sign_out(&token).await;
                return Err(e);
            }
        };
        let existing = self.registry.list().await?;
        let id = ProfileId::mint();
        let record = ProfileRecord {
            id: id.clone(),
            name: req
                .name
                .unwrap_or_else(|| session.account.display_name.clone()),
            color: req
                .color
                .unwrap_or_else(|| COLORS[existing.len() % COLORS.len()].to_string()),
            position: 0,
            server_url: client.base().to_string(),
            account_id: AccountId::from_service(session.account.account_id.clone()),
            public_id: PublicId::from_service(session.account.public_id.clone()),
            session_id: session.session_id.clone(),
            created_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            history_until,
            // Kept only where it is in use, so the mark means "this profile is in cleartext".
            allow_insecure_http: client.transport() == Transport::Cleartext,
        };
        if let Err(e) = self.registry.insert(&record).await {
            // Do not leave a session behind on the service for a profile that does not exist.
            let _ = client.sign_out(&token).await;
            return Err(e);
        }
        make_private_dir(&self.profile_dir(&id))?;
        let secrets = Secrets {
            token: Some(token.clone()),
            database_key: Some(DatabaseKey::generate()?),
        };
        if let Err(e) = self
            .vault_call(move |v, id| v.store(id, &secrets), &id)
            .await
        {
            let _ = client.sign_out(&token).await;
            self.registry.remove(&id).await?;
            let _ = std::fs::remove_dir_all(self.profile_dir(&id));
            return Err(e);
        }
        self.start(record.clone()).await?;
        self.info(&record).await
    }

    async fn info(&self, record: &ProfileRecord) -> Result<ProfileInfo> {
        // The lock is not held across the read: a busy profile database must not stall
        // every other call on the engine.
        let runtime = self
            .running
            .lock()
            .await
            .get(&record.id)
            .map(|r| r.runtime.clone());
        let (state, unread) = match runtime {
            Some(rt) => {
                // The watch guard is not held across the read (it is not Send).
                let state = rt.state.borrow().clone();
                (state, rt.store.unread_total().await?)
            }
            None => {
                let state = if self.secrets(&record.id).await?.token.is_some() {
                    ConnState::Stopped
                } else {
                    ConnState::SignedOut
                };
                match self.open_store(&record.id).await {
                    Ok(store) => {
                        let unread = store.unread_total().await;
                        store.close().await;
                        (state, unread?)
                    }
                    Err(e @ CoreError::DatabaseKey(_)) => (ConnState::Locked(e.to_string()), 0),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(ProfileInfo {
            record: record.clone(),
            state,
            unread,
        })
    }

    pub async fn list_profiles(&self) -> Result<Vec<ProfileInfo>> {
        let mut out = Vec::new();
        for record in self.registry.list().await? {
            out.push(self.info(&record).await?);
        }
        Ok(out)
    }

    /// Starts every registered profile that has a token. One that cannot start (its database
    /// locked to another keyring, its folder unreadable) is reported and left stopped; the
    /// others start all the same.
    pub async fn start_all(&self) -> Result<()> {
        for record in self.registry.list().await? {
            let id = record.id.clone();
            if let Err(e) = self.start(record).await {
                tracing::warn!(profile = %id, code = e.code(), "the profile could not start");
                if let CoreError::DatabaseKey(_) = e {
                    let _ = self.bus.send(ProfileEvent {
                        profile: id,
                        kind: ProfileEventKind::State(ConnState::Locked(e.to_string())),
                    });
                }
            }
        }
        Ok(())
    }

    /// Starts one profile (the CLI's `send` needs no other).
    pub async fn start_profile(&self, profile: &ProfileId) -> Result<()> {
        let record = self.registry.find(profile).await?;
        self.start(record).await
    }

    async fn start(&self, record: ProfileRecord) -> Result<()> {
        let mut running = self.running.lock().await;
        if running.contains_key(&record.id) {
            return Ok(());
        }
        let Some(token) = self.secrets(&record.id).await?.token else {
            return Ok(());
        };
        let store = self.open_store(&record.id).await?;
        let client = Client::new(&record.server_url, &self.tls, record.allow_insecure_http)?;
        client.stats().state(&ConnState::Connecting);
        let runtime = Arc::new(ProfileRuntime {
            id: record.id.clone(),
            public_id: record.public_id.clone(),
            session_id: record.session_id.clone(),
            client,
            token,
            store,
            bus: self.bus.clone(),
            state: watch::Sender::new(ConnState::Connecting),
            outbox_ready: Notify::new(),
            payments: Mutex::new(()),
            refused: std::sync::Mutex::default(),
            #[cfg(feature = "fault-injection")]
            poisoned: std::sync::atomic::AtomicBool::new(false),
        });
        if let Some((n, _)) = self.notifications.get() {
            let policy = self.registry.policy(&record.id).await?;
            n.with(|x| {
                x.set_profile(&record.id, &record.name, record.public_id.as_str(), policy);
                x.set_history_until(&record.id, record.history_until);
            });
        }
        let cancel = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(runtime.clone(), cancel.clone()));
        running.insert(
            record.id.clone(),
            Running {
                runtime,
                cancel,
                supervisor,
            },
        );
        Ok(())
    }

    /// Every running profile with its account's public ID and its runtime, in sidebar order.
    async fn running_stores(&self) -> Result<Vec<(ProfileId, String, Arc<ProfileRuntime>)>> {
        let order = self.registry.list().await?;
        let running = self.running.lock().await;
        Ok(order
            .into_iter()
            .filter_map(|r| {
                running
                    .get(&r.id)
                    .map(|x| (r.id.clone(), r.public_id.to_string(), x.runtime.clone()))
            })
            .collect())
    }

    async fn runtime(&self, profile: &ProfileId) -> Result<Arc<ProfileRuntime>> {
        let record = self.registry.find(profile).await?;
        let running = self.running.lock().await;
        running
            .get(&record.id)
            .map(|r| r.runtime.clone())
            .ok_or_else(|| CoreError::Invalid(format!("profile {} is signed out", record.name)))
    }

    /// Queues a message; the profile's task sends it now if online, else on reconnect.
    pub async fn send(
        &self,
        profile: &ProfileId,
        to: &ConversationId,
        body: &str,
    ) -> Result<OutboxEntry> {
        self.send_with_images(profile, to, body, &[]).await
    }

    /// Queues a message with up to 9 images (text optional then). Each image is judged and
    /// thumbnailed now and kept in the profile's cache; the task uploads it when it sends the
    /// message, once, whenever the profile is next online.
    pub async fn send_with_images(
        &self,
        profile: &ProfileId,
        to: &ConversationId,
        body: &str,
        images: &[media::ImageUpload],
    ) -> Result<OutboxEntry> {
        let chars = body.chars().count();
        if chars > 4096 || (chars == 0 && images.is_empty()) {
            return Err(CoreError::Invalid(
                "a message has 1 to 4096 characters, or images".into(),
            ));
        }
        let rt = self.runtime(profile).await?;
        let prepared = media::prepare_all(images).await?;
        for p in &prepared {
            rt.store.cache_put(p, None, i64::MAX).await?;
        }
        let keys: Vec<String> = prepared.iter().map(|p| p.key.clone()).collect();
        let client_id = uuid::Uuid::new_v4().to_string();
        let entry = rt
            .store
            .enqueue(
                &client_id,
                to,
                body,
                &keys,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )
            .await?;
        // Only now that the queued message holds them may the cache make room.
        rt.store.cache_trim(self.media_cache_bytes()).await?;
        rt.outbox_ready.notify_one();
        Ok(entry)
    }

    /// Queues a message and waits until the service has it (it left the outbox). A profile
    /// that is signed out, or whose service's certificate is not trusted, fails at once.
    pub async fn send_and_wait(
        &self,
        profile: &ProfileId,
        to: &ConversationId,
        body: &str,
        limit: Duration,
    ) -> Result<OutboxEntry> {
        let entry = self.send(profile, to, body).await?;
        let rt = self.runtime(profile).await?;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if !rt
                .store
                .outbox()
                .await?
                .iter()
                .any(|e| e.client_id == entry.client_id)
            {
                let refused = rt
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&entry.client_id);
                return match refused {
                    Some(e) => Err(CoreError::Api(e)),
                    None => Ok(entry),
                };
            }
            match &*rt.state.borrow() {
                ConnState::SignedOut => {
                    return Err(CoreError::Invalid(
                        "the profile is signed out; add it again".into(),
                    ));
                }
                // Waiting cannot help until the certificate is fixed or its CA trusted; the
                // message stays queued for then.
                ConnState::Certificate(why) => return Err(CoreError::Certificate(why.clone())),
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CoreError::Network(
                    "not delivered yet; it stays queued and goes out the next time the profile runs".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes the profile's task panic (tests of the supervisor only).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_panic(&self, profile: &ProfileId) -> Result<()> {
        let rt = self.runtime(profile).await?;
        rt.poisoned.store(true, std::sync::atomic::Ordering::SeqCst);
        rt.outbox_ready.notify_one();
        Ok(())
    }

    pub async fn conversations(&self, profile: &ProfileId) -> Result<Vec<Conversation>> {
        self.runtime(profile).await?.store.conversations().await
    }

    pub async fn messages(
        &self,
        profile: &ProfileId,
        conversation: &ConversationId,
    ) -> Result<Vec<StoredMessage>> {
        self.runtime(profile)
            .await?
            .store
            .messages(conversation)
            .await
    }

    pub async fn search(&self, profile: &ProfileId, text: &str) -> Result<Vec<StoredMessage>> {
        self.runtime(profile).await?.store.search(text).await
    }

    /// Full-text search across every running profile: (profile id, message), each profile's
    /// hits in order.
    pub async fn search_all(&self, text: &str) -> Result<Vec<(ProfileId, StoredMessage)>> {
        let runtimes: Vec<Arc<ProfileRuntime>> = self
            .running
            .lock()
            .await
            .values()
            .map(|r| r.runtime.clone())
            .collect();
        let mut out = Vec::new();
        for rt in runtimes {
            for m in rt.store.search(text).await? {
                out.push((rt.id.clone(), m));
            }
        }
        Ok(out)
    }

    /// Messages written but not yet accepted by the service, oldest first.
    pub async fn outbox(&self, profile: &ProfileId) -> Result<Vec<OutboxEntry>> {
        self.runtime(profile).await?.store.outbox().await
    }

    /// The profile's conversation was read: its unread count drops to zero.
    pub async fn mark_read(
        &self,
        profile: &ProfileId,
        conversation: &ConversationId,
    ) -> Result<()> {
        self.runtime(profile)
            .await?
            .store
            .mark_read(conversation)
            .await
    }

    /// One profile as the sidebar shows it.
    pub async fn profile(&self, profile: &ProfileId) -> Result<ProfileInfo> {
        let record = self.registry.find(profile).await?;
        self.info(&record).await
    }

    /// The id of the profile a person named on a command line: an id, else a name (see
    /// [`Registry::find_by_name_or_id`]). For the CLI only: a window acts for the profile its
    /// label names, by id, so a profile named like another's id can never stand in for it.
    pub async fn profile_id_by_name_or_id(&self, name_or_id: &str) -> Result<ProfileId> {
        Ok(self.registry.find_by_name_or_id(name_or_id).await?.id)
    }

    pub async fn rename_profile(&self, profile: &ProfileId, name: &str) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 40 {
            return Err(CoreError::Invalid(
                "a profile name has 1 to 40 characters".into(),
            ));
        }
        let record = self.registry.find(profile).await?;
        self.registry.rename(&record.id, name).await?;
        if let Some((n, _)) = self.notifications.get() {
            let policy = self.registry.policy(&record.id).await?;
            n.with(|x| x.set_profile(&record.id, name, record.public_id.as_str(), policy));
        }
        Ok(())
    }

    pub async fn recolor_profile(&self, profile: &ProfileId, color: &str) -> Result<()> {
        let valid = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !valid {
            return Err(CoreError::Invalid(format!(
                "{color:?} is not a colour like #2f6fed"
            )));
        }
        let record = self.registry.find(profile).await?;
        self.registry
            .recolor(&record.id, &color.to_ascii_lowercase())
            .await
    }

    /// Puts the profiles in this order (ids); any not named keep their order after these.
    pub async fn reorder_profiles(&self, ids: &[ProfileId]) -> Result<()> {
        self.registry.reorder(ids).await
    }

    /// Runs one call to the profile's service with its token.
    async fn online<T, F, Fut>(&self, profile: &ProfileId, call: F) -> Result<T>
    where
        F: FnOnce(Client, vault::Token) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let rt = self.runtime(profile).await?;
        call(rt.client.clone(), rt.token.clone()).await
    }

    /// The resource view: each running profile's traffic, events per minute, database size
    /// and connection history (in sidebar order), and the process tree's memory.
    pub async fn resources(&self) -> Result<stats::Resources> {
        let order = self.registry.list().await?;
        let running: Vec<(ProfileId, Arc<ProfileRuntime>)> = {
            let running = self.running.lock().await;
            order
                .iter()
                .filter_map(|r| {
                    running
                        .get(&r.id)
                        .map(|x| (r.id.clone(), x.runtime.clone()))
                })
                .collect()
        };
        let dirs: Vec<PathBuf> = running.iter().map(|(id, _)| self.profile_dir(id)).collect();
        // File sizes and the processes' memory are read off the async workers.
        tokio::task::spawn_blocking(move || {
            let memory = platform::app_memory();
            stats::Resources {
                profiles: running
                    .iter()
                    .zip(dirs)
                    .map(|((id, rt), dir)| rt.client.stats().report(id, &dir))
                    .collect(),
                memory_bytes: memory.map(|(bytes, _)| bytes),
                memory_measure: memory.map(|(_, measure)| measure),
            }
        })
        .await
        .map_err(|e| CoreError::Storage(format!("the resource view failed: {e}")))
    }

    pub async fn state(&self, profile: &ProfileId) -> Result<ConnState> {
        Ok(self.runtime(profile).await?.state.borrow().clone())
    }

    /// Signs the service session out, deletes the keyring entry (token and database key) and
    /// the profile's folder.
    pub async fn remove_profile(&self, profile: &ProfileId) -> Result<()> {
        let record = self.registry.find(profile).await?;
        if let Some(r) = self.running.lock().await.remove(&record.id) {
            r.cancel.cancel();
            let _ = r.supervisor.await;
            r.runtime.store.close().await;
        }
        if let Some(token) = self.secrets(&record.id).await?.token {
            let signed_out =
                match Client::new(&record.server_url, &self.tls, record.allow_insecure_http) {
                    Ok(client) => client.sign_out(&token).await,
                    Err(e) => Err(e),
                };
            if let Err(e) = signed_out {
                // Still remove locally: the user asked for the profile to be gone.
                tracing::warn!(profile = %record.id, code = e.code(), "could not sign the session out");
            }
        }
        self.vault_call(|v, id| v.delete(id), &record.id).await?;
        if let Some((n, _)) = self.notifications.get() {
            n.with(|x| x.remove_profile(&record.id));
        }
        // The folder last: a web view of the profile's may hold it a moment longer.
        platform::remove_dir_when_released(&self.profile_dir(&record.id)).await?;
        self.registry.remove(&record.id).await
    }

    /// Stops every profile and closes every database.
    pub async fn shutdown(&self) {
        if let Some((_, cancel)) = self.notifications.get() {
            cancel.cancel();
        }
        let all: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        for r in &all {
            r.cancel.cancel();
        }
        for r in all {
            let _ = r.supervisor.await;
            r.runtime.store.close().await;
        }
        self.registry.close().await;
    }
}

/// Runs a profile's task, restarting it with back-off if it panics; one profile's failure
/// never touches another's.
async fn supervise(runtime: Arc<ProfileRuntime>, cancel: CancellationToken) {
    let mut delay = Duration::from_millis(200);
    loop {
        let task = tokio::spawn(runtime.clone().run(cancel.clone()));
        match task.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                tracing::error!(profile = %runtime.id, "profile task panicked; restarting");
                runtime
                    .state
                    .send_replace(ConnState::Offline("restarting after a failure".into()));
            }
            Err(_) => return,
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
