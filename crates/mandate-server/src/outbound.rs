//! The HTTP client for every request Mandate sends (SSF push, CIBA pings and webhooks): rustls
//! with aws-lc-rs and the Mozilla roots, no redirects followed, a connect timeout, and only
//! addresses the outbound rules allow (`mandate_core::outbound`). The rules are applied when
//! connecting, not only when a URL was registered: the scheme (`https`; `http` only to loopback
//! behind the development switch), a literal address, every address a name resolves to (the
//! connection goes to one of the checked addresses, so DNS rebinding between check and
//! connect cannot slip through), and finally the connected peer's address.

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

/// Applies the outbound rules to each connection before and after [`HttpConnector`] makes it.
#[derive(Clone)]
pub struct CheckedConnector(HttpConnector<PublicResolver>);

type Io = hyper_util::rt::TokioIo<tokio::net::TcpStream>;

fn refused(why: String) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        why,
    ))
}

impl tower::Service<hyper::Uri> for CheckedConnector {
    type Response = Io;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let scheme = uri.scheme_str().unwrap_or_default().to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok();
        let connect = self.0.call(uri);
        Box::pin(async move {
            if !mandate_core::outbound::scheme_allowed(&scheme, &host) {
                return Err(refused(format!(
                    "{scheme}://{host} is not allowed outbound"
                )));
            }
            if literal.is_some_and(|ip| !address_allowed(ip)) {
                return Err(refused(format!(
                    "{host} is not an address Mandate may send to"
                )));
            }
            let io = connect.await?;
            let peer = io.inner().peer_addr()?;
            if !address_allowed(peer.ip()) {
                return Err(refused(format!(
                    "{peer} is not an address Mandate may send to"
                )));
            }
            Ok(io)
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<CheckedConnector>;
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
        .wrap_connector(CheckedConnector(http));
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
