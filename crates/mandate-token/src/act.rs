//! The `act` claim (RFC 8693 §4.1): who is acting, and nested inside, who acted before. In a
//! delegated token `sub` is the person, the outermost `act.sub` the agent presenting it, and
//! each further `act` the agent it got the token from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most actors read from a claim.
pub const MAX_CHAIN: usize = 33;

/// One actor of a chain, with the one before it nested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The actor's identifier (an agent's client id).
    pub sub: String,
    /// The actor before this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// A chain of one actor.
    pub fn new(sub: impl Into<String>) -> Act {
        Act {
            sub: sub.into(),
            act: None,
        }
    }

    /// This chain with `sub` acting on top of it (the next hop).
    pub fn then(self, sub: impl Into<String>) -> Act {
        Act {
            sub: sub.into(),
            act: Some(Box::new(self)),
        }
    }

    /// Read a claim leniently, as RFC 8693 §4.1 allows other members: an object with a string
    /// `sub`, each nested `act` read the same way (a malformed one ends the chain there, and so
    /// does the [`MAX_CHAIN`]th actor: the work is bounded whatever the token holds).
    pub fn from_claim(v: Option<&Value>) -> Option<Act> {
        fn read(v: Option<&Value>, depth: usize) -> Option<Act> {
            let o = v?.as_object()?;
            let sub = o.get("sub")?.as_str()?.to_string();
            let act = if depth + 1 < MAX_CHAIN {
                read(o.get("act"), depth + 1).map(Box::new)
            } else {
                None
            };
            Some(Act { sub, act })
        }
        read(v, 0)
    }

    /// The actors, outermost (current) first.
    pub fn chain(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
        }
        out
    }

    /// How many actors the chain has.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }

    /// The claim's JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an act chain serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chains_nest_outermost_first_and_serialize_as_issued() {
        let a = Act::new("a").then("b").then("c");
        assert_eq!(a.chain(), ["c", "b", "a"]);
        assert_eq!(a.depth(), 3);
        // Exactly the bytes the server has always issued: `sub` first, then the nested `act`.
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"sub":"c","act":{"sub":"b","act":{"sub":"a"}}}"#
        );
        let v = json!({"sub": "c", "act": {"sub": "b", "iss": "x", "act": {"sub": "a"}}});
        assert_eq!(Act::from_claim(Some(&v)), Some(a));
        assert_eq!(Act::from_claim(Some(&json!({"act": {"sub": "a"}}))), None);
        assert_eq!(
            Act::from_claim(Some(&json!({"sub": "b", "act": 7}))).map(|a| a.depth()),
            Some(1)
        );
        assert_eq!(Act::from_claim(None), None);
        let mut deep = json!({"sub": "a0"});
        for i in 1..100 {
            deep = json!({"sub": format!("a{i}"), "act": deep});
        }
        assert_eq!(Act::from_claim(Some(&deep)).unwrap().depth(), MAX_CHAIN);
    }
}
