//! Operational endpoints: health, readiness, metrics.

pub mod health;
pub mod limits;
pub mod metrics;
