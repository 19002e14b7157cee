//! Security notices: the mails that tell a person something happened to their account, so a
//! change they did not make does not go unnoticed. Which recorded events call for one is
//! decided here, from the audit record itself ([`Notice::for_event`]): the operations that
//! record those events hand the record over (`login::notice::after`), so the notice and the
//! audit trail cannot disagree about what happened.

use crate::audit::{AuditEvent, EventKind, Outcome};

/// What a notice tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A sign-in from a browser that had not signed in to this account before.
    NewSignIn {
        ip: Option<String>,
        user_agent: Option<String>,
    },
    PasskeyAdded {
        name: String,
    },
    PasskeyRemoved {
        name: String,
    },
    /// A second factor (authenticator app, …) was added; `method` is its id.
    SecondFactorAdded {
        method: String,
    },
    SecondFactorRemoved {
        method: String,
    },
    RecoveryCodesGenerated,
    PasswordChanged,
    /// The password was removed (a passkey-only account).
    PasswordRemoved,
    /// Too many failed sign-ins: the account waits until `until` (Unix seconds).
    LockedOut {
        until: i64,
    },
}

fn text(ev: &AuditEvent, key: &str) -> String {
    let s = ev.detail.get(key).and_then(|v| v.as_str()).unwrap_or("");
    super::one_line(s, 64)
}

impl Notice {
    /// The template's name.
    pub fn template(&self) -> &'static str {
        match self {
            Notice::NewSignIn { .. } => "notice_new_sign_in",
            Notice::PasskeyAdded { .. } => "notice_passkey_added",
            Notice::PasskeyRemoved { .. } => "notice_passkey_removed",
            Notice::SecondFactorAdded { .. } => "notice_factor_added",
            Notice::SecondFactorRemoved { .. } => "notice_factor_removed",
            Notice::RecoveryCodesGenerated => "notice_recovery_codes",
            Notice::PasswordChanged => "notice_password_changed",
            Notice::PasswordRemoved => "notice_password_removed",
            Notice::LockedOut { .. } => "notice_locked_out",
        }
    }

    /// The notice an audit record calls for, if any: the successful changes of how a person
    /// signs in, and the lockout of their account (not of an address: that is not theirs).
    pub fn for_event(ev: &AuditEvent) -> Option<Notice> {
        let ok = ev.outcome == Outcome::Success;
        Some(match ev.kind {
            EventKind::PasskeyRegistered if ok => Notice::PasskeyAdded {
                name: text(ev, "name"),
            },
            EventKind::PasskeyRemoved if ok => Notice::PasskeyRemoved {
                name: text(ev, "name"),
            },
            EventKind::SecondFactorEnrolled if ok => Notice::SecondFactorAdded {
                method: text(ev, "method"),
            },
            EventKind::SecondFactorRemoved if ok => Notice::SecondFactorRemoved {
                method: text(ev, "method"),
            },
            EventKind::RecoveryCodesGenerated if ok => Notice::RecoveryCodesGenerated,
            EventKind::PasswordChanged if ok => {
                if ev.detail.get("removed").and_then(|v| v.as_bool()) == Some(true) {
                    Notice::PasswordRemoved
                } else {
                    Notice::PasswordChanged
                }
            }
            // A browser never seen on this account (the risk engine's `new_device`).
            EventKind::LoginSucceeded
                if ev.detail.get("new_device").and_then(|v| v.as_bool()) == Some(true) =>
            {
                Notice::NewSignIn {
                    ip: ev.personal.ip.clone(),
                    user_agent: ev
                        .personal
                        .user_agent
                        .as_deref()
                        .map(|u| super::one_line(u, 120)),
                }
            }
            EventKind::LoginLocked if ev.reason.as_deref() == Some("account") => {
                Notice::LockedOut {
                    until: ev
                        .detail
                        .get("locked_until")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0),
                }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::{Principal, RequestMeta};

    fn ev(kind: EventKind, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(
            "t",
            kind,
            outcome,
            Principal::Anonymous,
            &RequestMeta::default(),
        )
    }

    #[test]
    fn notices_follow_the_audit_record() {
        let added = ev(EventKind::PasskeyRegistered, Outcome::Success)
            .detail(json!({"name": "Laptop\r\nBcc: x"}));
        assert_eq!(
            Notice::for_event(&added),
            Some(Notice::PasskeyAdded {
                name: "Laptop  Bcc: x".into()
            })
        );
        let removed =
            ev(EventKind::PasswordChanged, Outcome::Success).detail(json!({"removed": true}));
        assert_eq!(Notice::for_event(&removed), Some(Notice::PasswordRemoved));
        let locked = ev(EventKind::LoginLocked, Outcome::Failure)
            .reason("account")
            .detail(json!({"locked_until": 99}));
        assert_eq!(
            Notice::for_event(&locked),
            Some(Notice::LockedOut { until: 99 })
        );
        let address = ev(EventKind::LoginLocked, Outcome::Failure).reason("address");
        assert_eq!(Notice::for_event(&address), None);
        assert_eq!(
            Notice::for_event(&ev(EventKind::LoginSucceeded, Outcome::Success)),
            None
        );
        let seen =
            ev(EventKind::LoginSucceeded, Outcome::Success).detail(json!({"new_device": false}));
        assert_eq!(Notice::for_event(&seen), None);
        let meta = RequestMeta {
            ip: Some("192.0.2.7".into()),
            user_agent: Some("Browser\r\nBcc: x".into()),
            ..RequestMeta::default()
        };
        let new = AuditEvent::new(
            "t",
            EventKind::LoginSucceeded,
            Outcome::Success,
            Principal::Anonymous,
            &meta,
        )
        .detail(json!({"new_device": true}));
        assert_eq!(
            Notice::for_event(&new),
            Some(Notice::NewSignIn {
                ip: Some("192.0.2.7".into()),
                user_agent: Some("Browser  Bcc: x".into()),
            })
        );
        assert_eq!(
            Notice::for_event(&ev(EventKind::PasskeyRegistered, Outcome::Failure)),
            None
        );
    }
}
