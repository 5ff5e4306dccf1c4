//! What tests and the bench share: the records the sample events in `events/` refer to
//! (`samples`, also used by `make bench`), and, in test builds only, fixtures (a temporary
//! embedded database, clients of the moto server `make test` starts) and local receivers.

pub mod samples;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
pub mod mail;
#[cfg(test)]
pub mod receivers;
#[cfg(test)]
pub use fixtures::*;

/// Two tests of one scenario (an `async fn(AppContext)`): `$embedded` on a temporary
/// embedded store, `$dynamodb` on the moto server `make test` starts.
#[cfg(test)]
macro_rules! on_both_stores {
    ($scenario:ident => $embedded:ident, $dynamodb:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $embedded() {
            let (ctx, _dir) = $crate::testing::embedded_context();
            $scenario(ctx).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $dynamodb() {
            let (ctx, _dir) = $crate::testing::dynamo_context().await;
            $scenario(ctx).await;
        }
    };
}
#[cfg(test)]
pub(crate) use on_both_stores;
