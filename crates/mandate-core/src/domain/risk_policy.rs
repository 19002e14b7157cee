//! A tenant's risk policy: which signal, from what value on, leads to which action. Plain data
//! kept in the tenant's settings; the engine that applies it is in `risk/`. Rules are
//! checked all at once and the strongest action of those that fire wins, so a policy reads as a
//! list of independent statements ("stuffing from 10 accounts blocks", "travel faster than
//! 1000 km/h asks for a second factor").

use serde::{Deserialize, Serialize};

macro_rules! signals {
    ($($variant:ident => $name:literal, $agent:literal, $doc:literal;)*) => {
        /// Something observed about one attempt (a person signing in, an agent asking for a
        /// token), with a value a rule compares with its threshold.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Signal {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Signal {
            /// Every signal, people's first.
            pub const ALL: &'static [Signal] = &[$(Signal::$variant,)*];

            /// The stable name (policy, audit records, metrics).
            pub fn as_str(self) -> &'static str {
                match self { $(Signal::$variant => $name,)* }
            }

            /// Parse a stable name.
            pub fn parse(s: &str) -> Option<Signal> {
                match s { $($name => Some(Signal::$variant),)* _ => None }
            }

            /// Is it about an agent (else about a person signing in)?
            pub fn is_agent(self) -> bool {
                match self { $(Signal::$variant => $agent,)* }
            }
        }
    };
}

signals! {
    AccountFailures => "account_failures", false,
        "Failed sign-ins of this account name in the failure window (count).";
    AddressFailures => "address_failures", false,
        "Failed sign-ins from this address (IPv6: its /64) in the failure window (count).";
    CredentialStuffing => "credential_stuffing", false,
        "Distinct account names that failed from this address in the failure window (count).";
    NewDevice => "new_device", false,
        "A browser whose device cookie this person never signed in with (1), once they have a history.";
    ImpossibleTravel => "impossible_travel", false,
        "Speed (km/h) needed to come from the place of the person's last sign-in (GeoIP).";
    BreachedPassword => "breached_password", false,
        "The password is one of the bundled most common (breached) passwords (1).";
    UnusualTime => "unusual_time", false,
        "Hours (UTC, around the clock) from the nearest hour this person signed in at before, once enough history.";
    AgentVelocity => "agent_velocity", true,
        "Tokens this agent asked for this person in the agent window, this one included (count).";
    AgentNewResource => "agent_new_resource", true,
        "Resources asked for that the agent never used under this mandate (count), once it has a history.";
    AgentUnusualTime => "agent_unusual_time", true,
        "Hours (UTC) from the nearest hour the agent used this mandate at before, once enough history.";
}

/// What a policy does about an attempt; the stronger wins (the order here, weakest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Go on (the signal is still recorded: a notice).
    Allow,
    /// A person: the sign-in must also prove a second factor (a passkey counts as both).
    SecondFactor,
    /// A person: the sign-in must be phishing-resistant (a passkey, `acr` `phr`).
    Passkey,
    /// An agent: the person must approve this request out of band (CIBA).
    Approval,
    /// A person: refused like too many attempts; the address waits `block_seconds`.
    Block,
    /// An agent: suspended (the person sees why), every token it holds stops working.
    Suspend,
}

impl Action {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::SecondFactor => "second_factor",
            Action::Passkey => "passkey",
            Action::Approval => "approval",
            Action::Block => "block",
            Action::Suspend => "suspend",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Option<Action> {
        [
            Action::Allow,
            Action::SecondFactor,
            Action::Passkey,
            Action::Approval,
            Action::Block,
            Action::Suspend,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// May a rule on a signal about a person (`agent` false) or an agent take this action?
    pub fn fits(self, agent: bool) -> bool {
        match self {
            Action::Allow => true,
            Action::SecondFactor | Action::Passkey | Action::Block => !agent,
            Action::Approval | Action::Suspend => agent,
        }
    }
}

/// One rule: when `signal`'s value is at least `at_least`, take `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRule {
    pub signal: Signal,
    pub at_least: u32,
    pub action: Action,
}

impl RiskRule {
    /// Parse `SIGNAL=ACTION` or `SIGNAL=ACTION@THRESHOLD` (the CLI's form); without a
    /// threshold, the signal's default one.
    pub fn parse(s: &str) -> Result<RiskRule, String> {
        let (signal, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("expected SIGNAL=ACTION[@THRESHOLD], got {s:?}"))?;
        let signal = Signal::parse(signal.trim())
            .ok_or_else(|| format!("unknown risk signal {signal:?}"))?;
        let (action, at_least) = match rest.split_once('@') {
            Some((a, n)) => (
                a,
                n.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("invalid threshold {n:?} (a whole number)"))?,
            ),
            None => (rest, default_threshold(signal)),
        };
        let action = Action::parse(action.trim())
            .ok_or_else(|| format!("unknown risk action {action:?}"))?;
        Ok(RiskRule {
            signal,
            at_least,
            action,
        })
    }
}

/// The most a counting signal counts: each decision reads at most this many rows (every
/// request's work is bounded), so a threshold above it could never be reached.
pub const MAX_COUNT: u32 = 500;

impl Signal {
    /// Is its value a count of rows the engine reads (bounded by [`MAX_COUNT`])?
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Signal::AccountFailures
                | Signal::AddressFailures
                | Signal::CredentialStuffing
                | Signal::AgentVelocity
        )
    }
}

/// The threshold a rule on `signal` gets when none is given.
pub fn default_threshold(signal: Signal) -> u32 {
    match signal {
        Signal::AccountFailures => 5,
        Signal::AddressFailures => 20,
        Signal::CredentialStuffing => 10,
        Signal::NewDevice | Signal::BreachedPassword => 1,
        Signal::ImpossibleTravel => 1000,
        Signal::UnusualTime | Signal::AgentUnusualTime => 3,
        Signal::AgentVelocity => 60,
        Signal::AgentNewResource => 1,
    }
}

/// A tenant's risk policy (`mandate tenant risk`); the defaults are documented in
/// docs/risk.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskPolicy {
    /// Off: no signal is computed or recorded (the guessing limits still apply).
    pub enabled: bool,
    pub rules: Vec<RiskRule>,
    /// Seconds over which failed sign-ins count (account, address, stuffing).
    pub failure_window: i64,
    /// Seconds an address waits after a block.
    pub block_seconds: i64,
    /// Sign-ins (or an agent's requests under a mandate) seen before the time signals speak.
    pub min_history: usize,
    /// Seconds over which an agent's token requests count (velocity).
    pub agent_window: i64,
}

/// Most rules in a policy.
pub const MAX_RULES: usize = 64;

impl Default for RiskPolicy {
    fn default() -> Self {
        let rule = |signal, action| RiskRule {
            signal,
            at_least: default_threshold(signal),
            action,
        };
        RiskPolicy {
            enabled: true,
            rules: vec![
                rule(Signal::CredentialStuffing, Action::Block),
                rule(Signal::AccountFailures, Action::Allow),
                rule(Signal::AddressFailures, Action::Allow),
                rule(Signal::NewDevice, Action::Allow),
                rule(Signal::ImpossibleTravel, Action::SecondFactor),
                rule(Signal::BreachedPassword, Action::Allow),
                rule(Signal::UnusualTime, Action::Allow),
                rule(Signal::AgentVelocity, Action::Approval),
                RiskRule {
                    signal: Signal::AgentVelocity,
                    at_least: MAX_COUNT,
                    action: Action::Suspend,
                },
                rule(Signal::AgentNewResource, Action::Allow),
                rule(Signal::AgentUnusualTime, Action::Allow),
            ],
            failure_window: 3600,
            block_seconds: 900,
            min_history: 10,
            agent_window: 600,
        }
    }
}

impl RiskPolicy {
    /// Is the policy coherent? Every action fits its signal, thresholds are positive and
    /// finite, windows are within a day (what the stores keep), at most [`MAX_RULES`] rules.
    pub fn check(&self) -> Result<(), String> {
        if self.rules.len() > MAX_RULES {
            return Err(format!("at most {MAX_RULES} risk rules"));
        }
        for r in &self.rules {
            if !r.action.fits(r.signal.is_agent()) {
                return Err(format!(
                    "{} cannot lead to {} (people: allow, second_factor, passkey, block; \
                     agents: allow, approval, suspend)",
                    r.signal.as_str(),
                    r.action.as_str()
                ));
            }
            if r.at_least == 0 {
                return Err(format!(
                    "the threshold of {} must be a positive number",
                    r.signal.as_str()
                ));
            }
            if r.signal.is_count() && r.at_least > MAX_COUNT {
                return Err(format!(
                    "the threshold of {} must be at most {MAX_COUNT} (what one decision counts)",
                    r.signal.as_str()
                ));
            }
        }
        for (name, v) in [
            ("failure window", self.failure_window),
            ("block", self.block_seconds),
            ("agent window", self.agent_window),
        ] {
            if !(1..=86_400).contains(&v) {
                return Err(format!("the {name} must be 1 to 86400 seconds"));
            }
        }
        if self.min_history > 1000 {
            return Err("the minimum history must be at most 1000".into());
        }
        Ok(())
    }

    /// Replace the rules on the signal of `rule` by it (the CLI's `--rule`).
    pub fn set_rule(&mut self, rule: RiskRule) {
        self.rules.retain(|r| r.signal != rule.signal);
        self.rules.push(rule);
    }
}
