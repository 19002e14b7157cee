//! The pages in a real browser: Debian's Chromium through playwright-core
//! (`common::chromium`), so what people see, their HTML and scripts, and WebAuthn through the
//! DevTools virtual authenticator. The servers run on `http://localhost:<port>`, an origin
//! WebAuthn accepts. Screenshots: `target/test-output/screenshots/<test>/`.

mod accessibility;
mod account;
mod passkeys;
mod recovery;
mod second_factors;
mod sign_in;
mod webauthn;

use crate::common::{Backend, Chromium, Server};

/// A server on localhost and a Chromium for test `test`, started side by side (each takes a
/// second or two).
async fn start(backend: Backend, test: &str) -> (Server, Chromium) {
    tokio::join!(Server::start_localhost(backend), Chromium::launch(test))
}
