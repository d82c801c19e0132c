//! A port-0 service over a temp SQLite file with a hand-driven clock, for tests. Dropping it
//! shuts the service down and removes its files.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::{ManualClock, OsEntropy};
use crate::identity::ChecksumVerifier;
use crate::{Config, Services};

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: ManualClock,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A development-mode service (console SMS gateway, dev outbox) with default limits.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with the config adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the test database");
        let mut config = Config {
            dev: true,
            ..Config::default()
        };
        config.log.file = false;
        config.database_url = format!("sqlite://{}", dir.path().join("server.db").display());
        adjust(&mut config);
        Self::launch_in(dir, config, ManualClock::new()).await
    }

    async fn launch_in(dir: tempfile::TempDir, config: Config, clock: ManualClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let services = Services {
            clock: Arc::new(clock.clone()),
            entropy: Arc::new(OsEntropy),
            identity: Arc::new(ChecksumVerifier),
        };
        // Build first so a bad config fails the test here, with its message.
        let (router, app) = crate::build(config.clone(), services)
            .await
            .expect("service builds");
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
            app.store.close().await;
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            clock,
            config,
            shutdown,
            task: Some(task),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The folder holding the database (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the service and starts it again on the same database and clock (a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::launch_in(dir, self.config.clone(), self.clock.clone()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
