//! What pages show in plain words: scopes, authorization details, agents, times and what a
//! pending CIBA request asks for. Shared by the account pages; names no page.

use mandate_core::OAuthError;
use mandate_core::TenantCtx;
use mandate_core::ciba::PendingRequest;
use mandate_core::domain::agents::Agent;
use mandate_core::domain::branding::scope_description;
use minijinja::context;
use serde_json::Value;

use crate::state::AppState;

/// A scope in plain words: the tenant's own description in the page's language (else in
/// English), else `scope_{name}` in the catalogue, else `scope_other` naming it.
pub(crate) fn scope_words(s: &AppState, t: &TenantCtx, lang: &str, scope: &str) -> String {
    if let Some(d) = scope_description(&t.tenant.settings.scope_descriptions, scope, lang) {
        return d.to_string();
    }
    s.templates
        .message_opt(lang, &format!("scope_{scope}"))
        .unwrap_or_else(|| {
            s.templates
                .message(lang, "scope_other")
                .replace("{scope}", scope)
        })
}

/// How pages name the tenant: its display name, else "this organization".
pub(crate) fn tenant_words(s: &AppState, t: &TenantCtx, lang: &str) -> String {
    t.tenant
        .settings
        .branding
        .display_name
        .clone()
        .unwrap_or_else(|| s.templates.message(lang, "agent_owner_tenant"))
}

fn string_list(v: Option<&Value>) -> Option<String> {
    let items: Vec<String> = match v? {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    (!items.is_empty()).then(|| items.join(", "))
}

/// An RFC 9396 authorization detail in plain words: its type, actions and locations.
pub(crate) fn detail_words(s: &AppState, lang: &str, d: &Value) -> String {
    let kind = d.get("type").and_then(Value::as_str).unwrap_or_default();
    let mut out = match string_list(d.get("actions")) {
        Some(actions) => s
            .templates
            .message(lang, "detail_actions")
            .replace("{type}", kind)
            .replace("{actions}", &actions),
        None => s
            .templates
            .message(lang, "detail_type")
            .replace("{type}", kind),
    };
    if let Some(locations) = string_list(d.get("locations")) {
        out.push(' ');
        out.push_str(
            &s.templates
                .message(lang, "detail_locations")
                .replace("{locations}", &locations),
        );
    }
    out
}

/// The agent as people see it: name, provider, model, version and owner.
pub(crate) async fn agent_view(
    s: &AppState,
    t: &TenantCtx,
    lang: &str,
    a: &Agent,
) -> Result<minijinja::Value, OAuthError> {
    let owner = match &a.owner_user_id {
        Some(id) => s
            .provider
            .store
            .user(t.id(), id)
            .await?
            .map(|u| u.username)
            .unwrap_or_else(|| id.clone()),
        None => tenant_words(s, t, lang),
    };
    Ok(agent_context(a, owner))
}

/// The agent as pages show it, with its owner already in words.
pub(crate) fn agent_context(a: &Agent, owner: String) -> minijinja::Value {
    context! {
        id => a.id,
        name => a.name,
        provider => a.provider,
        model => a.model,
        version => a.version,
        owner,
        status => a.status.as_str(),
        status_reason => a.status_reason,
    }
}

/// A browser as people name it, from its `User-Agent`: "Firefox on Linux". Only the common
/// families; anything else is shown clipped as it came.
pub(crate) fn device_words(ua: &str) -> String {
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") {
        Some("Edge")
    } else if has("OPR/") {
        Some("Opera")
    } else if has("Firefox/") {
        Some("Firefox")
    } else if has("Chrome/") || has("Chromium/") {
        Some("Chrome")
    } else if has("Safari/") {
        Some("Safari")
    } else {
        None
    };
    let os = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} · {o}"),
        (Some(b), None) => b.to_string(),
        _ => ua.chars().take(60).collect(),
    }
}

/// A point in time for people (UTC).
pub(crate) fn when(secs: i64) -> String {
    mandate_core::time::format_instant(secs)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// What a pending request asks for, in plain words (the agents page and the approval page).
pub(crate) fn asks(s: &AppState, t: &TenantCtx, lang: &str, pr: &PendingRequest) -> Vec<String> {
    let r = &pr.request;
    r.delegated_scopes()
        .iter()
        .map(|sc| scope_words(s, t, lang, sc))
        .chain(
            r.authorization_details
                .iter()
                .map(|d| detail_words(s, lang, d)),
        )
        .collect()
}
