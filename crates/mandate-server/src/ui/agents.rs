//! The signed-in person's "agents acting for you" page and self-service API.

use axum::Router;

use crate::state::AppState;

/// Routes under `{issuer}`; merged into the tenant router.
pub fn routes() -> Router<AppState> {
    Router::new()
}
