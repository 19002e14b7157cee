//! OpenID Connect: a relying-party library end to end, the conformance suite's modules, signing keys.

mod flow;
mod keys;
mod oidcc_basic;
mod oidcc_extra;
