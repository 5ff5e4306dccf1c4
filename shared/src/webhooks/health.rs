//! Endpoint health: a failure streak that disables an endpoint, cleared by a success.

use crate::context::AppContext;
use crate::domain::webhook::{DisablePolicy, Webhook};
use crate::repo::{UpdateError, update_versioned, webhooks};

/// Success ends an endpoint's failure streak; a delivery that failed every retry extends
/// it and may disable the endpoint.
pub(super) async fn track_endpoint_health(ctx: &AppContext, workspace_id: &str, webhook_id: &str, delivered: bool) {
    let policy = DisablePolicy {
        after_failed_deliveries: ctx.config.webhook_disable_after_failures,
        after_failing_for: ctx.config.webhook_disable_after,
    };
    let now = ctx.now();
    let key = webhooks::key(workspace_id, webhook_id);
    let result = update_versioned(
        &*ctx.store,
        &key,
        |w: &mut Webhook| {
            if delivered {
                // Err: nothing to clear, nothing to write.
                return if w.record_success() { Ok(()) } else { Err(()) };
            }
            if w.record_failure(policy, now) {
                tracing::warn!(
                    webhook_id = w.id,
                    streak = w.failure_streak,
                    "endpoint disabled after repeated failures"
                );
            }
            Ok(())
        },
        |w| webhooks::item(workspace_id, w),
    )
    .await;
    if let Err(UpdateError::Store(e)) = result {
        tracing::warn!(webhook_id, error = %e, "endpoint health not recorded");
    }
}
