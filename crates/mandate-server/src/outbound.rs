//! The HTTP client for every request Mandate sends (SSF push, CIBA pings and webhooks): rustls
//! with aws-lc-rs and the Mozilla roots, no redirects followed, a connect timeout, and host
//! names resolved only to addresses the outbound rules allow
//! (`mandate_core::outbound::address_allowed`): a name that resolves to a private or
//! link-local address fails to connect. (Literal addresses are checked when the URL is
//! registered; the connector does not resolve them.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use mandate_core::outbound::address_allowed;

/// Resolves host names like the system resolver, keeping only allowed addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicResolver;

impl tower::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} has no address Mandate may send to", name.as_str()),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<PublicResolver>>;
/// The outbound HTTP(S) client. It follows no redirects.
pub type HttpClient = Client<Connector, Full<Bytes>>;

/// A client whose connections must be made within `connect_timeout`.
pub fn client(connect_timeout: Duration) -> Result<HttpClient, rustls::Error> {
    let mut http = HttpConnector::new_with_resolver(PublicResolver);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
