//! What a signed-in person may do about the agents acting for them: see their mandates and
//! revoke them.
