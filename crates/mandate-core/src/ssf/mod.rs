//! OpenID Shared Signals Framework 1.0 transmitter: revocations recorded in the audit trail are
//! published as Security Event Tokens (RFC 8417) carrying CAEP 1.0 events, so that a resource
//! server that validates JWTs locally learns of them within a second.
//!
//! - [`stream`]: stream configuration (SSF §8.1.1) as receivers send it, validated.
//! - [`events`]: which audit records are signals, and the SETs they become.
//! - [`transmitter`]: stream management (create, read, update, delete, status, verification)
//!   for an authenticated receiver, audited.
//! - [`tail`]: the per-tenant pass that turns new audit records into queued SETs, moving a
//!   cursor in the same transaction so that nothing is lost or queued twice across restarts and
//!   nodes.
//! - [`poll`]: RFC 8936 poll requests (acknowledgements, errors, `maxEvents`).
//! - [`model`]: the stored data (streams, subjects), below the flow and its storage port.
//! - [`store`]: the storage the transmitter needs.

pub mod events;
pub mod model;
pub mod poll;
pub mod store;
pub mod stream;
pub mod tail;
pub mod transmitter;

pub use store::SsfStore;

use mandate_token::jws::sign as jwt_sign;

/// The scope a receiver's access token needs for stream management and polling.
pub const SSF_SCOPE: &str = "mandate:ssf";

pub use model::{POLL_METHOD, PUSH_METHOD};

/// CAEP 1.0 §3.1: a session (here: a token, a mandate, an agent's or a person's access) ended.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 §3.2: claims of tokens already issued changed (here: an agent resumed).
pub const TOKEN_CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
/// SSF 1.0 §8.1.4.1: the verification event, sent on request whatever the stream asked for.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// The event types a stream can ask for.
pub const EVENTS_SUPPORTED: [&str; 2] = [SESSION_REVOKED, TOKEN_CLAIMS_CHANGE];

/// The `typ` header of every SET (RFC 8417 §2.3).
pub const SET_TYP: &str = "secevent+jwt";
