//! The audit trail: the hash chain and what operators and investigators read.

mod chain;
mod trail;
