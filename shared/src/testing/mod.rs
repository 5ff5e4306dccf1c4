//! What tests and the bench share: the records the sample events in `events/` refer to
//! (`samples`, also used by `make bench`), and, in test builds only, fixtures (a temporary
//! embedded database, clients of the moto server `make test` starts) and local receivers.

pub mod samples;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
pub mod receivers;
#[cfg(test)]
pub use fixtures::*;
