//! Mapping sqlx errors to [`StoreError`].

use mandate_core::StoreError;

/// Any database failure, as an opaque backend error.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// For inserts: a unique violation means `what` already exists.
pub(crate) fn on_insert(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what.into()),
        _ => backend(e),
    }
}
