//! Scope strings (RFC 6749 §3.3): space-delimited, order-free sets of tokens.

use std::collections::BTreeSet;

/// A normalized set of scope tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parse a scope parameter; `None` when it holds characters RFC 6749 §3.3 forbids.
    pub fn parse(s: &str) -> Option<Scope> {
        let mut set = BTreeSet::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return None;
            }
            set.insert(tok.to_string());
        }
        Some(Scope(set))
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Tokens present in both.
    pub fn intersect(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl<S: Into<String>> FromIterator<S> for Scope {
    fn from_iter<I: IntoIterator<Item = S>>(it: I) -> Scope {
        Scope(it.into_iter().map(Into::into).collect())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let s = Scope::parse("profile  openid email openid").unwrap();
        assert_eq!(s.to_string(), "email openid profile");
        assert!(Scope::parse("bad\"scope").is_none());
        assert!(Scope::parse("a\\b").is_none());
        let t = Scope::parse("openid").unwrap();
        assert!(t.is_subset(&s));
        assert_eq!(s.intersect(&t), t);
    }

    /// Scope tokens: a few plain ones, and arbitrary printable ones.
    fn token() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::sample::select(vec!["openid", "email", "read", "write", "pay"])
                .prop_map(str::to_string),
            "[!#-\\[\\]-~]{1,8}",
        ]
    }

    fn scope() -> impl proptest::strategy::Strategy<Value = Scope> {
        use proptest::prelude::*;
        proptest::collection::vec(token(), 0..6).prop_map(|v| v.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn scope_algebra(a in scope(), b in scope(), c in scope()) {
            // The text form parses back to the same set, whatever the order and repeats.
            proptest::prop_assert_eq!(Scope::parse(&a.to_string()), Some(a.clone()));
            let doubled = format!("{a}  {a}");
            proptest::prop_assert_eq!(Scope::parse(&doubled), Some(a.clone()));
            // Intersection: commutative, associative, within both, idempotent.
            proptest::prop_assert_eq!(a.intersect(&b), b.intersect(&a));
            proptest::prop_assert_eq!(a.intersect(&b).intersect(&c), a.intersect(&b.intersect(&c)));
            proptest::prop_assert!(a.intersect(&b).is_subset(&a) && a.intersect(&b).is_subset(&b));
            proptest::prop_assert_eq!(a.intersect(&a), a.clone());
            // Subset: reflexive, and what is within both is within their intersection.
            proptest::prop_assert!(a.is_subset(&a));
            if c.is_subset(&a) && c.is_subset(&b) {
                proptest::prop_assert!(c.is_subset(&a.intersect(&b)));
            }
            if a.is_subset(&b) && b.is_subset(&c) {
                proptest::prop_assert!(a.is_subset(&c));
            }
        }
    }
}
