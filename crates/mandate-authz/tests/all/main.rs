//! mandate-authz behaviour tests, one binary: the engine, OpenFGA's own conformance suite (in memory
//! and through the store on both databases), Cedar policy, and a property test against a
//! reference evaluator.

mod engine;
mod openfga_conformance;
mod openfga_conformance_store;
mod policy;
mod reference;
