//! Provider webhook activity per workspace and provider: deliveries counted by outcome, and
//! the latest delivery of each reason that was not recorded. Every provider delivery writes
//! here, so the counters are sharded by the delivery ([`keys::sharded`]) and summed on
//! read; the "latest" items live beside each shard's counters and the newest wins on read.

use std::collections::BTreeMap;

use super::keys;
use crate::domain::providers::{NotAccepted, NotAcceptedEvent, Provider, WebhookActivity};
use crate::store::{Condition, Item, Key, Store, StoreError};

const KIND: &str = "PWA";
const COUNTS: &str = "COUNTS";
const RECEIVED: &str = "received";
const RECORDED: &str = "recorded";

fn provider_name(provider: Provider) -> &'static str {
    provider.source().as_str()
}

fn shards(workspace_id: &str, provider: Provider) -> Vec<String> {
    keys::all_shards(&keys::item_pk(workspace_id, KIND, provider_name(provider))).collect()
}

fn last_sk(reason: NotAccepted) -> String {
    format!("LAST#{}", reason.as_str())
}

/// Counts one delivery (`by` spreads deliveries over the shards: the event's id or name);
/// `None` means it was recorded.
pub async fn record(
    store: &dyn Store,
    workspace_id: &str,
    provider: Provider,
    by: &str,
    not_accepted: Option<&NotAcceptedEvent>,
) -> Result<(), StoreError> {
    let shard = keys::sharded(&keys::item_pk(workspace_id, KIND, provider_name(provider)), by);
    let outcome = not_accepted.map_or(RECORDED, |event| event.reason.as_str());
    let counters = [(RECEIVED.to_owned(), 1), (outcome.to_owned(), 1)];
    store.increment(&Key::new(shard.clone(), COUNTS), &counters).await?;
    if let Some(event) = not_accepted {
        store.put(Item::new(Key::new(shard, last_sk(event.reason)), event)?, Condition::Always).await?;
    }
    Ok(())
}

/// The sums over every shard, and the newest delivery of each reason.
pub async fn read(store: &dyn Store, workspace_id: &str, provider: Provider) -> Result<WebhookActivity, StoreError> {
    let mut wanted = Vec::new();
    for shard in shards(workspace_id, provider) {
        wanted.push(Key::new(shard.clone(), COUNTS));
        wanted.extend(NotAccepted::ALL.iter().map(|reason| Key::new(shard.clone(), last_sk(*reason))));
    }
    let mut activity = WebhookActivity::default();
    let mut latest: BTreeMap<NotAccepted, NotAcceptedEvent> = BTreeMap::new();
    for item in store.batch_get(&wanted).await? {
        if item.key.sk == COUNTS {
            activity.received += item.counter(RECEIVED);
            activity.recorded += item.counter(RECORDED);
            for reason in NotAccepted::ALL {
                let n = item.counter(reason.as_str());
                if n > 0 {
                    *activity.not_accepted.entry(reason).or_default() += n;
                }
            }
        } else {
            let event: NotAcceptedEvent = item.parse()?;
            if latest.get(&event.reason).is_none_or(|seen| seen.at < event.at) {
                latest.insert(event.reason, event);
            }
        }
    }
    activity.latest_not_accepted = latest.into_values().collect();
    activity.latest_not_accepted.sort_by_key(|event| std::cmp::Reverse(event.at));
    Ok(activity)
}
