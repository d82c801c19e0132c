//! The service assembled: the router (whose OpenAPI document is generated from
//! the same route list, so the two cannot drift), and `launch`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Router, middleware};
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::Health;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, Json};
use crate::metrics::Metrics;
use crate::{
    accounts, contacts, events, groups, me, messages, moments, official, sessions, sms, wallet,
};
use switchboard_service::clock::{Clock, EntropyExt, SystemClock};
use switchboard_service::config::Config;
use switchboard_service::password::Hasher;
use switchboard_service::sms::{
    ConsoleGateway, Deliveries, SmsGateway, WEBHOOK_TIMEOUT, WebhookGateway,
};
use switchboard_store::Store;

pub use crate::state::{App, AppState, Services};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Config(#[from] switchboard_service::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] switchboard_store::StoreError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("serving: {0}")]
    Serve(#[from] std::io::Error),
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard service", description = "Accounts by phone number, sessions, two-step verification, contacts, groups, messages, the per-account event log, the wallet and official accounts."),
    modifiers(&BearerAuth),
    components(schemas(switchboard_protocol::ErrorBody, switchboard_protocol::ErrorCode)),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Service health
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The routes and their OpenAPI document, from one list.
pub fn routes(dev: bool) -> (Router<App>, utoipa::openapi::OpenApi) {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(sms::request_code))
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::recover))
        .routes(routes!(sessions::sign_in, sessions::list))
        .routes(routes!(sessions::sms_sign_in))
        .routes(routes!(sessions::revoke_current))
        .routes(routes!(sessions::revoke_one))
        .routes(routes!(me::get_me, me::update_me))
        .routes(routes!(me::change_public_id))
        .routes(routes!(me::change_password))
        .routes(routes!(me::verify_identity))
        .routes(routes!(me::totp_setup, me::totp_disable))
        .routes(routes!(me::totp_confirm))
        .routes(routes!(contacts::get_user))
        .routes(routes!(contacts::create_request, contacts::list_requests))
        .routes(routes!(contacts::accept_request))
        .routes(routes!(contacts::list_contacts))
        .routes(routes!(groups::create, groups::list))
        .routes(routes!(groups::get))
        .routes(routes!(groups::add_members))
        .routes(routes!(groups::remove_member))
        .routes(routes!(messages::send))
        .routes(routes!(events::sync))
        .routes(routes!(events::events))
        .routes(routes!(wallet::get_wallet))
        .routes(routes!(wallet::transactions))
        .routes(routes!(wallet::top_up))
        .routes(routes!(wallet::transfer))
        .routes(routes!(wallet::create_envelope))
        .routes(routes!(wallet::get_envelope))
        .routes(routes!(wallet::claim))
        .routes(routes!(official::create, official::list))
        .routes(routes!(official::get))
        .routes(routes!(official::add_operator, official::list_operators))
        .routes(routes!(official::remove_operator))
        .routes(routes!(official::follow, official::unfollow))
        .routes(routes!(official::publish, official::articles))
        .routes(routes!(official::conversations))
        .routes(routes!(official::claim))
        .routes(routes!(official::create_api_key, official::list_api_keys))
        .routes(routes!(official::revoke_api_key))
        .routes(routes!(moments::fetch))
        .routes(routes!(moments::post))
        .routes(routes!(moments::feed))
        .routes(routes!(moments::of_user))
        .routes(routes!(moments::delete))
        .routes(routes!(moments::like))
        .routes(routes!(moments::comment));
    // Images are the one body larger than the service's 64 KiB default.
    api = api.merge(OpenApiRouter::new().routes(routes!(moments::upload)).layer(
        axum::extract::DefaultBodyLimit::max(switchboard_protocol::moments::MEDIA_MAX_BYTES + 1),
    ));
    if dev {
        api = api.routes(routes!(sms::dev_outbox));
    }
    let (router, mut doc) = api.split_for_parts();
    crate::contract::complete_responses(&mut doc);
    (router, doc)
}

/// Builds the state (opening the database) and the complete router. Cancelling `shutdown`
/// closes the long-lived event streams.
pub async fn build(
    config: Config,
    services: Services,
    shutdown: CancellationToken,
) -> Result<(Router, App), LaunchError> {
    config.validate()?;
    // Before the database: a bad certificate stops the service before it touches anything.
    let tls = crate::tls::TlsReloader::from_config(&config.tls)?;
    let url = database_url(&config)?;
    let store: Arc<dyn Store> = switchboard_store::open(&url).await?;
    // Official accounts made before names were unique by their look get their key now (a
    // no-op once done; several nodes starting at once set the same keys).
    let unkeyed = store
        .official_name_keys_backfill(&switchboard_service::text::lookalike_key)
        .await?;
    if !unkeyed.is_empty() {
        tracing::warn!(
            official_accounts = ?unkeyed,
            "these official accounts' names look like older ones' and keep no name key: \
             rename them so customers can tell them apart"
        );
    }
    let (sms, dev_outbox): (Arc<dyn SmsGateway>, _) = if config.sms.gateway == "webhook" {
        let gw = WebhookGateway::new(config.sms.webhook_url.clone()).map_err(LaunchError::Setup)?;
        (Arc::new(gw), None)
    } else {
        let gw = Arc::new(ConsoleGateway::default());
        (gw.clone(), Some(gw))
    };
    let hasher =
        Hasher::new(2, services.entropy.clone()).map_err(|e| LaunchError::Setup(e.message))?;
    // Outside development mode `validate` has made sure a key is set. In development mode an
    // unset one is made up for this process: hashes from another run match nothing, which
    // only matters to data nobody keeps.
    let id_number_key = if config.identity.hmac_secret.is_empty() {
        switchboard_service::identity::IdNumberKey::new(services.entropy.bytes::<32>().to_vec())
    } else {
        switchboard_service::identity::IdNumberKey::new(
            config.identity.hmac_secret.expose().as_bytes(),
        )
    };
    let dev = config.dev;
    let cluster = switchboard_store::is_shared(&url).then(|| crate::node::Node::new(&url));
    if let (Some(node), true) = (&cluster, services.clock_from_database) {
        // Measured once before serving; the cluster task keeps measuring.
        let before = SystemClock.now_ms();
        let db = store.db_now_ms().await?;
        let after = SystemClock.now_ms();
        node.time.set_offset_ms(db - (before + after) / 2);
    }
    let clock = crate::node::clock(
        cluster.as_ref(),
        services.clock,
        services.clock_from_database,
    );
    let funding = match services.funding {
        Some(funding) => funding,
        None => switchboard_service::funding::from_config(config.dev, &config.funding)
            .map_err(LaunchError::Setup)?,
    };
    let app_config_media = config.media.clone();
    let app: App = Arc::new(AppState {
        trusted_proxies: config.trusted_proxy_nets()?,
        config,
        store,
        clock,
        entropy: services.entropy,
        sms,
        sms_deliveries: Deliveries::default(),
        id_number_key,
        dev_outbox: if dev { dev_outbox } else { None },
        hasher,
        identity: services.identity,
        funding,
        metrics: Metrics::default(),
        hub: crate::hub::Hub::default(),
        blobs: if app_config_media.s3_bucket.is_empty() {
            Arc::new(switchboard_service::blobs::DirBlobStore::new(media_dir(
                &app_config_media.dir,
                &url,
            )?))
        } else {
            Arc::new(
                switchboard_service::blobs::S3BlobStore::new(&app_config_media)
                    .map_err(|e| LaunchError::Setup(e.to_string()))?,
            )
        },
        cluster,
        clock_from_database: services.clock_from_database,
        tls,
        shutdown,
    });
    if let Some(node) = &app.cluster {
        app.hub.connect_outbox(node.outbox.clone());
    }

    let (api, openapi) = routes(dev);
    let openapi = Arc::new(openapi);
    let router = api
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(openapi.as_ref().clone()) }),
        )
        .fallback(|| async { Error::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            Error::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            crate::admin::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                Error::internal("a request handler panicked").into_response()
            },
        ))
        .with_state(app.clone());
    Ok((router, app))
}

/// Where images are kept: `media.dir`, else `media/` beside a SQLite file, else the platform
/// data dir.
fn media_dir(configured: &str, database_url: &str) -> Result<std::path::PathBuf, LaunchError> {
    if !configured.is_empty() {
        return Ok(configured.into());
    }
    if let Some(file) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|f| f.split('?').next().unwrap_or(f))
        .filter(|f| !f.is_empty() && !f.contains(":memory:"))
    {
        let dir = std::path::Path::new(file)
            .parent()
            .unwrap_or(std::path::Path::new("."));
        return Ok(dir.join("media"));
    }
    let dirs = directories::ProjectDirs::from("", "", "switchboard-server").ok_or_else(|| {
        LaunchError::Setup("no home directory to keep images in; set media.dir".into())
    })?;
    Ok(dirs.data_dir().join("media"))
}

/// The database URL, defaulting to a file in the platform data dir.
pub fn database_url(config: &Config) -> Result<String, LaunchError> {
    if !config.database_url.is_empty() {
        return Ok(config.database_url.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "switchboard-server").ok_or_else(|| {
        LaunchError::Setup("no home directory to keep the database in; pass --database".into())
    })?;
    Ok(format!(
        "sqlite://{}",
        dirs.data_dir().join("server.db").display()
    ))
}

/// Serves on `listener` (and `/metrics` on `config.admin_listen`) until `shutdown` is
/// cancelled, then finishes in-flight requests, stops the background tasks and closes the
/// database.
pub async fn launch(
    config: Config,
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), LaunchError> {
    let admin_addr = config.admin_listen;
    let (router, app) = build(config, services, shutdown).await?;
    let admin = TcpListener::bind(admin_addr).await.map_err(|e| {
        LaunchError::Setup(format!("cannot listen on {admin_addr} (admin_listen): {e}"))
    })?;
    serve(router, app, listener, Some(admin)).await
}

/// Serves a built service with its background tasks until `app.shutdown` is cancelled; the
/// operator's router (`/metrics`) on `admin`, if given.
pub async fn serve(
    router: Router,
    app: App,
    listener: TcpListener,
    admin: Option<TcpListener>,
) -> Result<(), LaunchError> {
    // `validate` checks the configured address; this checks the one actually served (a caller
    // may hand over any listener).
    if app.config.dev {
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            return Err(LaunchError::Setup(format!(
                "development mode serves every SMS code at /v1/dev/sms-outbox, so it listens only \
                 on a loopback address, not {addr}"
            )));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(admin) = admin {
        tasks.spawn(crate::admin::serve_admin(app.clone(), admin));
    }
    tasks.spawn(every(app.clone(), Duration::from_secs(600), prune));
    let sweep = Duration::from_millis(app.config.wallet.refund_sweep_ms.max(10));
    tasks.spawn(every(app.clone(), sweep, refund));
    tasks.spawn(crate::cluster::run(app.clone()));
    let served = match app.tls.clone() {
        Some(tls) => crate::tls::serve(listener, router, tls, app.shutdown.clone()).await,
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(app.shutdown.clone().cancelled_owned())
            .await
        }
    };
    app.shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    // Codes already answered for are still delivered, within the gateway's own time limit.
    app.sms_deliveries.drain(WEBHOOK_TIMEOUT).await;
    app.store.close().await;
    served.map_err(LaunchError::from)
}

/// Runs `job` now and then every `period` until the service stops; a failure is logged and
/// retried next period.
async fn every<F, Fut>(app: App, period: Duration, job: F)
where
    F: Fn(App) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    loop {
        if let Err(e) = job(app.clone()).await {
            tracing::warn!(error = %e.message, "background job failed; will retry");
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

/// Deletes SMS codes and rate-limit records once no limit can count them any more.
async fn prune(app: App) -> Result<(), Error> {
    const KEEP_MS: i64 = 25 * 3600 * 1000;
    match app.store.prune(app.clock.now_ms() - KEEP_MS).await? {
        Some(n) if n > 0 => tracing::debug!(rows = n, "pruned old SMS codes and rate records"),
        Some(_) => {}
        None => tracing::debug!("another node is pruning; skipped"),
    }
    Ok(())
}

/// Returns unclaimed red-envelope money after expiry.
async fn refund(app: App) -> Result<(), Error> {
    let n = wallet::refund_due(&app).await?;
    if n > 0 {
        tracing::info!(envelopes = n, "refunded expired red envelopes");
    }
    Ok(())
}
