//! Agents and mandates: acting for a person, refusals, self-service, the admin API, the whole story.

mod admin_api;
mod mandates;
mod refusals;
mod self_service;
mod story;
