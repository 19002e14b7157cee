//! Fine-grained authorization over HTTP: AuthZEN and OpenFGA's own suite.

mod authzen;
mod openfga;
