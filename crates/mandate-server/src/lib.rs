//! Mandate's HTTP surface: thin axum handlers that parse a request, call `mandate-core`, and
//! render the result. No protocol rule lives here.

mod admin;
mod authzen;
mod bearer;
mod cache;
mod client_ip;
mod cookies;
mod cors;
mod error;
mod interaction;
pub mod mail;
mod notify;
mod oauth;
mod oidc;
mod ops;
mod outbound;
mod params;
mod session;
pub mod ssf;
mod state;
mod tenant;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::map_response;
use axum::routing::{get, post};

pub use client_ip::TrustedProxies;
pub use mandate_core::settings::HttpLimits;
use ops::limits::Admit;
pub use ops::metrics::Metrics;
pub use state::{AppState, HttpConfig};
pub use ui::templates::Templates;

/// Largest request body accepted anywhere (forms, JSON).
pub const MAX_BODY: usize = 64 * 1024;

/// Build the application router.
pub fn router(state: AppState) -> Router {
    let tenant_routes = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::openid_configuration),
        )
        .route("/jwks.json", get(oidc::jwks::jwks))
        .route(
            "/authorize",
            get(oauth::authorize::authorize_get).post(oauth::authorize::authorize_post),
        )
        .route("/login", post(interaction::password::login))
        .route(
            "/login/second-factor",
            post(interaction::second_factor::verify),
        )
        .route(
            "/login/second-factor/enrol",
            post(interaction::second_factor::enrol),
        )
        .route(
            "/login/second-factor/continue",
            post(interaction::second_factor::go_on_after),
        )
        .route(
            "/login/second-factor/email-code",
            post(interaction::second_factor::send_email_code),
        )
        .route("/login/continue", post(interaction::continue_request))
        .route("/login/passkey", post(interaction::passkey::sign_in))
        .route(
            "/login/passkey/register",
            post(interaction::passkey::register),
        )
        .route(
            "/login/passkey/options",
            post(interaction::passkey::options),
        )
        .route("/consent", post(ui::consent::consent))
        .route(
            "/token",
            post(oauth::token::token)
                .options(cors::preflight)
                .layer(oauth::client_endpoint()),
        )
        .route(
            "/bc-authorize",
            post(oauth::bc_authorize::bc_authorize).layer(oauth::client_endpoint()),
        )
        .route(
            "/introspect",
            post(oauth::introspect::introspect).layer(oauth::client_endpoint()),
        )
        .route(
            "/revoke",
            post(oauth::revoke::revoke)
                .options(cors::preflight)
                .layer(oauth::client_endpoint()),
        )
        .route(
            "/userinfo",
            get(oidc::userinfo::userinfo_get)
                .post(oidc::userinfo::userinfo_post)
                .options(cors::preflight)
                .layer(map_response(cache::no_store)),
        )
        .route(
            "/logout",
            get(oidc::logout::logout_get).post(oidc::logout::logout_post),
        )
        .route("/logout/confirm", post(oidc::logout::logout_confirm))
        .route("/account", get(ui::account::home_page))
        .route("/account/consents", get(ui::account::consents_page))
        .route("/account/sessions", get(ui::sessions::page))
        .route("/account/sessions/end", post(ui::sessions::end))
        .route(
            "/account/sessions/end-others",
            post(ui::sessions::end_others),
        )
        .route(
            "/account/passkeys",
            get(ui::passkeys::page).post(ui::passkeys::add),
        )
        .route("/account/passkeys/options", post(ui::passkeys::options))
        .route("/account/passkeys/remove", post(ui::passkeys::remove))
        .route(
            "/account/password/remove",
            post(ui::passkeys::remove_password),
        )
        .route("/account/consents/withdraw", post(ui::account::withdraw))
        .route("/account/profile", get(ui::profile::page))
        .route("/account/password", post(ui::profile::change_password))
        .route(
            "/account/email/verify",
            get(ui::profile::verify_page).post(ui::profile::verify),
        )
        .route(
            "/account/email/verify/send",
            post(ui::profile::send_verification),
        )
        .route(
            "/account/password/forgot",
            get(ui::recovery::forgot_page).post(ui::recovery::forgot),
        )
        .route(
            "/account/password/reset",
            get(ui::recovery::reset_page).post(ui::recovery::reset),
        )
        .merge(ui::signin::routes())
        .merge(ui::security::routes())
        .merge(ui::agents::routes())
        .merge(ui::ciba::routes())
        .route("/branding.css", get(ui::branding::css))
        .merge(authzen::routes())
        .merge(ssf::routes())
        // Every page of a tenant carries its branding (ui::branding).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ui::branding::tenant_pages,
        ));
    let admin_routes = Router::new()
        .route("/audit/events", get(admin::audit::events))
        .route(
            "/authz/models",
            get(admin::authz::current_model).post(admin::authz::write_model),
        )
        .route(
            "/authz/tuples",
            get(admin::authz::read_tuples).post(admin::authz::write_tuples),
        )
        .route(
            "/authz/policy",
            axum::routing::put(admin::authz::set_policy),
        )
        .route("/authz/check", post(admin::authz::check))
        .route(
            "/agents",
            get(admin::agents::list_agents).post(admin::agents::create_agent),
        )
        .route(
            "/agents/{id}",
            get(admin::agents::show_agent).delete(admin::agents::delete_agent),
        )
        .route("/agents/{id}/suspend", post(admin::agents::suspend_agent))
        .route("/agents/{id}/resume", post(admin::agents::resume_agent))
        .route(
            "/mandates",
            get(admin::agents::list_mandates).post(admin::agents::create_mandate),
        )
        .route(
            "/mandates/{id}",
            get(admin::agents::show_mandate).delete(admin::agents::revoke_mandate),
        )
        .route(
            "/settings",
            get(admin::settings::show).patch(admin::settings::change),
        )
        .route("/roles", get(admin::roles::list))
        .route("/users/{username}/methods", get(admin::users::methods))
        .route(
            "/users/{username}/methods/totp",
            axum::routing::delete(admin::users::reset_second_factor),
        )
        .route(
            "/users/{username}/passkeys/{id}",
            axum::routing::delete(admin::users::remove_passkey),
        )
        .route(
            "/roles/{role}/users/{username}",
            axum::routing::put(admin::roles::grant).delete(admin::roles::revoke),
        )
        .layer(map_response(cache::no_store));
    Router::new()
        .route("/", get(ui::signin::root))
        .route("/t/{tenant}/", get(ui::signin::home))
        .route("/assets/{version}/{name}", get(ui::assets::asset))
        .route("/healthz", get(ops::health::healthz))
        .route("/readyz", get(ops::health::readyz))
        .route("/metrics", get(ops::metrics::metrics))
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            get(oidc::discovery::oauth_metadata),
        )
        .route(
            "/.well-known/ssf-configuration/t/{tenant}",
            get(ssf::configuration),
        )
        .nest("/t/{tenant}", tenant_routes)
        .nest("/admin/v1/tenants/{tenant}", admin_routes)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            ops::metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serve until `shutdown` resolves, then drain in-flight requests. `limits` bound what one
/// client can hold: open connections, time to send headers and body, idle keep-alive.
pub async fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    tls: Option<TlsFiles>,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Each tenant's relationship graph is loaded now, in the background, rather than by its
    // first decision after a restart.
    let (pdp, store) = (state.pdp.clone(), state.provider.store.clone());
    tokio::spawn(async move {
        match store.list_tenants().await {
            Ok(tenants) => {
                for t in tenants {
                    pdp.warm(&t.id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing tenants to load their graphs"),
        }
    });
    let header_timeout = Duration::from_secs(limits.header_read_timeout.max(1));
    let app = router(state)
        .layer(tower::util::MapRequestLayer::new(
            ops::limits::body_deadline(Duration::from_secs(limits.body_read_timeout.max(1))),
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Nothing may come between the signal and the drain (not even a log line).
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    let configure =
        |builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let ping = Duration::from_secs(limits.http2_keepalive.max(1));
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(ping)
                .keep_alive_timeout(ping)
                .max_concurrent_streams(100);
        };
    match tls {
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(Admit::new(
                    axum_server::accept::DefaultAcceptor,
                    limits.max_connections,
                    header_timeout,
                ))
                .handle(handle);
            configure(server.http_builder());
            server.serve(app).await
        }
        Some(files) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await?;
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(header_timeout);
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(Admit::new(tls, limits.max_connections, header_timeout))
                .handle(handle);
            configure(server.http_builder());
            server.serve(app).await
        }
    }
}

/// Convenience for embedding: state from a provider and the authorization data's store
/// (usually the same database), with default templates and metrics.
pub fn state(
    provider: Arc<mandate_core::Provider>,
    authz_store: Arc<dyn mandate_authz::AuthzStore>,
    config: HttpConfig,
    templates: impl Into<Arc<Templates>>,
) -> AppState {
    AppState::new(state::Shared {
        pdp: Arc::new(mandate_authz::Pdp::new(authz_store, provider.cache_ttl())),
        provider,
        config: Arc::new(config),
        templates: templates.into(),
        metrics: Arc::new(Metrics::new()),
        grants: grants(),
    })
}

/// The grants the token endpoint offers: OAuth's own and CIBA's. A new grant is one file in
/// the core implementing `Grant`, added here.
pub fn grants() -> mandate_core::oauth::grants::Grants {
    mandate_core::oauth::grants::Grants::oauth().with(mandate_core::ciba::grant::CibaGrant)
}
