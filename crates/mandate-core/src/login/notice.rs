//! Sending the security notices ([`crate::mail::Notice`]) to the person an event is about.
//! The operations that record a noticeable event call [`after`] with the record, right after
//! recording it; what is noticeable is decided from the record. Notices go to the account's
//! address (verified or not: it is the only one there is) when mail is configured; a notice
//! that cannot be queued is logged, never an error of the operation.

use crate::audit::AuditEvent;
use crate::domain::model::User;
use crate::error::StoreError;
use crate::mail::{Content, Message, Notice, check_address};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, UserStore};

/// Send the notice `ev` calls for, if any, to `user`.
pub fn after<S: ?Sized>(p: &Provider<S>, t: &TenantCtx, user: &User, ev: &AuditEvent) {
    if let Some(n) = Notice::for_event(ev) {
        send(p, t, user, n, None);
    }
}

/// Record `ev` and send the notice it calls for to the person it is about (its subject, else
/// its actor, when a user): the one way operations record a noticeable event, so no path that
/// records one forgets the notice. The notice follows the record; a person who is gone gets none.
pub async fn record<S: AuditSink + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    ev: &AuditEvent,
) -> Result<(), StoreError> {
    p.store.record(ev).await?;
    if Notice::for_event(ev).is_none() || p.mailer().is_none() {
        return Ok(());
    }
    if let Some(id) = ev.data_subject()
        && let Some(user) = p.store.user(t.id(), id).await?
    {
        after(p, t, &user, ev);
    }
    Ok(())
}

/// Send `notice` to `user` (in `lang`, else the default locale).
pub fn send<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user: &User,
    notice: Notice,
    lang: Option<&str>,
) {
    let (Some(mailer), Some(to)) = (p.mailer(), user.email.as_deref()) else {
        return;
    };
    if check_address(to).is_err() {
        return;
    }
    let m = Message {
        tenant_id: t.id().to_string(),
        tenant_name: t.tenant.name.clone(),
        user_id: Some(user.id.clone()),
        to: to.to_string(),
        lang: lang.map(str::to_string),
        content: Content::Notice(notice),
    };
    if let Err(e) = mailer.send(m) {
        tracing::warn!(error = %e, "security notice not sent");
    }
}
