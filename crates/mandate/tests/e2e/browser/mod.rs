//! The pages in a real browser: Debian's Chromium through playwright-core
//! (`common::chromium`), so what people see, their HTML and scripts, and WebAuthn through the
//! DevTools virtual authenticator. The servers run on `http://localhost:<port>`, an origin
//! WebAuthn accepts. Screenshots: `target/test-output/screenshots/<test>/`.

mod sign_in;
mod webauthn;
