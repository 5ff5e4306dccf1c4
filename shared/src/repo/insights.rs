//! Outcome counters per group (position, company, signal type, source, campaign), kept
//! incrementally with atomic increments so reading them costs O(groups), never a scan.
//!
//! Each lead counts at most once per kind: a marker item is created (`NotExists`) in the
//! same transaction as the increments, so a second reply, a retried request or a
//! concurrent writer cannot count it again. `source` is the outreach channel: the event's
//! source for outcomes, the push destination for `pushed`; a lead counts once per kind in
//! each channel it was seen in.
//!
//! Counters are sharded so that no partition takes every event of a workspace: a lead's
//! increments go to the shard of its id, and reading a group sums its shards
//! (`keys::scatter_gather`). Markers live in the lead's own partition.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | group counters (one part per shard) | `W#{ws}#INS#{shard of lead}` | `INS#{dimension}#{group}` |
//! | counted marker | `W#{ws}#LEAD#{lead}` | `CNT#{kind}` and `CNT#{kind}@{channel}` |

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::keys::{self, all_shards, sharded};
use super::leads;
use crate::domain::feedback::OutcomeKind;
use crate::domain::lead::Lead;
use crate::store::{Condition, Cursor, Item, Key, MAX_TRANSACT_ITEMS, Page, Query, Store, StoreError, WriteOp};

/// Longest group value kept (longer positions or company names are cut).
pub const MAX_GROUP_CHARS: usize = 200;
const ATTEMPTS: usize = 30;

/// The document's `group_by` enum comes from this type (snake_case, as `as_str` spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Dimension {
    Position,
    Company,
    SignalType,
    Source,
    Campaign,
}

impl Dimension {
    pub const ALL: [Dimension; 5] =
        [Dimension::Position, Dimension::Company, Dimension::SignalType, Dimension::Source, Dimension::Campaign];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Position => "position",
            Dimension::Company => "company",
            Dimension::SignalType => "signal_type",
            Dimension::Source => "source",
            Dimension::Campaign => "campaign",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }

    fn prefix(self) -> String {
        format!("INS#{}#", self.as_str())
    }
}

/// Free-text groups compare case- and spacing-insensitively ("VP  Sales" = "vp sales");
/// a missing value is the empty group (shown as `null`).
pub fn normalize_group(value: Option<&str>) -> String {
    let text = value.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    text.chars().take(MAX_GROUP_CHARS).collect()
}

/// Push destinations as channels: `webhook_url` pushes count under `webhook`.
pub fn normalize_channel(channel: &str) -> String {
    match channel.trim().to_ascii_lowercase().as_str() {
        "webhook_url" => "webhook".to_owned(),
        other => other.to_owned(),
    }
}

/// The counters of a workspace, before sharding.
pub(crate) fn counters_partition(workspace_id: &str) -> String {
    format!("W#{workspace_id}#INS")
}

/// The part of a group's counters that `lead_id`'s increments go to.
fn group_key(workspace_id: &str, lead_id: &str, dimension: Dimension, group: &str) -> Key {
    Key::new(sharded(&counters_partition(workspace_id), lead_id), format!("{}{group}", dimension.prefix()))
}

/// The groups a lead belongs to by its own fields (`source` depends on the event).
fn lead_groups(lead: &Lead) -> [(Dimension, String); 4] {
    [
        (Dimension::Position, normalize_group(lead.position.as_deref())),
        (Dimension::Company, normalize_group(lead.company.as_deref())),
        (Dimension::SignalType, normalize_group(lead.signal_type.as_deref())),
        (Dimension::Campaign, lead.campaign_id.clone()),
    ]
}

fn marker(workspace_id: &str, lead_id: &str, kind: OutcomeKind, channel: Option<&str>) -> Key {
    let sk = match channel {
        None => format!("CNT#{}", kind.as_str()),
        Some(channel) => format!("CNT#{}@{channel}", kind.as_str()),
    };
    Key::new(leads::partition(workspace_id, lead_id), sk)
}

/// The markers that say whether this lead was already counted for these kinds.
pub fn marker_keys(workspace_id: &str, lead_id: &str, kinds: &[OutcomeKind], channel: &str) -> Vec<Key> {
    kinds
        .iter()
        .flat_map(|kind| {
            [marker(workspace_id, lead_id, *kind, None), marker(workspace_id, lead_id, *kind, Some(channel))]
        })
        .collect()
}

/// Markers this process has seen exist. A marker is only ever created, never removed (and a
/// lead's id is never reused), so once seen it needs no re-read: an event for a lead already
/// counted for its kinds reads the lead alone, where it read the lead and two to four
/// markers. Whoever adds a way to remove markers (resetting insights, say) must drop this
/// cache. Bounded: past [`KNOWN_MARKERS`] keys it forgets them all and learns again from
/// the store.
#[derive(Debug, Default)]
pub struct KnownMarkers {
    keys: std::sync::Mutex<HashSet<Key>>,
}

/// About 7 MB of keys at most.
const KNOWN_MARKERS: usize = 50_000;

impl KnownMarkers {
    /// Those of `keys` seen to exist.
    pub fn among(&self, keys: &[Key]) -> HashSet<Key> {
        let known = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter().filter(|k| known.contains(*k)).cloned().collect()
    }

    /// Notes that `keys` exist (read, or written by a committed transaction).
    pub fn remember<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        let mut known = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if known.len() >= KNOWN_MARKERS {
                known.clear();
            }
            known.insert(key.clone());
        }
    }
}

/// Which of `keys` exist.
pub async fn existing(store: &dyn Store, keys: &[Key]) -> Result<HashSet<Key>, StoreError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(store.batch_get(keys).await?.into_iter().map(|item| item.key).collect())
}

/// Writes to count a lead for `kinds` in `channel`: marker puts, then increments merged by
/// group (a transaction may touch each key once).
#[derive(Debug, Default)]
pub struct CountPlan {
    markers: Vec<WriteOp>,
    increments: BTreeMap<Key, BTreeMap<&'static str, i64>>,
}

impl CountPlan {
    pub fn add(
        &mut self,
        workspace_id: &str,
        lead: &Lead,
        channel: &str,
        kinds: &[OutcomeKind],
        counted: &HashSet<Key>,
    ) -> Result<(), StoreError> {
        for kind in kinds {
            let once = marker(workspace_id, &lead.id, *kind, None);
            if !counted.contains(&once) {
                self.markers.push(put_marker(once)?);
                for (dimension, group) in lead_groups(lead) {
                    self.bump(group_key(workspace_id, &lead.id, dimension, &group), *kind);
                }
            }
            let in_channel = marker(workspace_id, &lead.id, *kind, Some(channel));
            if !counted.contains(&in_channel) {
                self.markers.push(put_marker(in_channel)?);
                self.bump(group_key(workspace_id, &lead.id, Dimension::Source, channel), *kind);
            }
        }
        Ok(())
    }

    fn bump(&mut self, key: Key, kind: OutcomeKind) {
        *self.increments.entry(key).or_default().entry(kind.as_str()).or_default() += 1;
    }

    pub fn len(&self) -> usize {
        self.markers.len() + self.increments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }

    pub fn into_ops(self) -> Vec<WriteOp> {
        let mut ops = self.markers;
        ops.extend(self.increments.into_iter().map(|(key, counters)| WriteOp::Increment {
            key,
            counters: counters.into_iter().map(|(name, n)| (name.to_owned(), n)).collect(),
        }));
        ops
    }
}

fn put_marker(key: Key) -> Result<WriteOp, StoreError> {
    Ok(WriteOp::Put { item: Item::new(key, &json!({}))?, condition: Condition::NotExists })
}

/// Counts leads as pushed to `channel` (`webhook_url`, `heyreach`, `instantly`), once per
/// lead (and once per lead per channel). Safe to call again for the same leads. Costs about
/// one transaction per 14 leads (fewer when they share groups) plus a batch read.
pub async fn record_pushed(
    store: &dyn Store,
    workspace_id: &str,
    channel: &str,
    leads: &[Lead],
) -> Result<(), StoreError> {
    let channel = normalize_channel(channel);
    let mut seen = HashSet::new();
    let unique: Vec<&Lead> = leads.iter().filter(|l| seen.insert(l.id.as_str())).collect();
    // Worst case per lead: 2 markers + 5 groups; pack while a full plan would still fit.
    for chunk in unique.chunks(MAX_TRANSACT_ITEMS / 7) {
        count_chunk(store, workspace_id, &channel, chunk, &[OutcomeKind::Pushed]).await?;
    }
    Ok(())
}

async fn count_chunk(
    store: &dyn Store,
    workspace_id: &str,
    channel: &str,
    leads: &[&Lead],
    kinds: &[OutcomeKind],
) -> Result<(), StoreError> {
    for attempt in 0..ATTEMPTS {
        let keys: Vec<Key> = leads.iter().flat_map(|l| marker_keys(workspace_id, &l.id, kinds, channel)).collect();
        let counted = existing(store, &keys).await?;
        let mut plan = CountPlan::default();
        for lead in leads {
            plan.add(workspace_id, lead, channel, kinds, &counted)?;
        }
        if plan.is_empty() {
            return Ok(());
        }
        match store.transact_write(plan.into_ops()).await {
            Ok(()) => return Ok(()),
            // Someone counted one of these leads meanwhile: re-read the markers.
            Err(StoreError::TransactionCanceled { .. }) => super::contention_pause(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(format!("insights counters still contended after {ATTEMPTS} attempts")))
}

/// One page of a dimension's groups, in group order, each group's shards summed into one
/// item.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    dimension: Dimension,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    let shards: Vec<String> = all_shards(&counters_partition(workspace_id)).collect();
    let query = Query::table("").prefix(dimension.prefix()).limit(limit);
    let page = keys::scatter_gather(store, &shards, &query, cursor).await?;
    let mut summed: Vec<Item> = Vec::new();
    for part in page.items {
        match summed.last_mut() {
            Some(group) if group.key.sk == part.key.sk => {
                for (name, value) in part.data {
                    let total = group.counter(&name) + value.as_i64().unwrap_or(0);
                    group.data.insert(name, json!(total));
                }
            }
            _ => summed.push(part),
        }
    }
    Ok(Page { items: summed, next: page.next })
}

/// The group name of a counters item (`None`: leads without a value).
pub fn group_of(dimension: Dimension, item: &Item) -> Option<String> {
    item.key.sk.strip_prefix(&dimension.prefix()).filter(|g| !g.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::support::time::Timestamp;

    fn lead(n: usize, position: &str, campaign: &str) -> Lead {
        let fields =
            LeadFields { name: Some(format!("L{n}")), position: Some(position.into()), ..LeadFields::default() };
        Lead::new(format!("req_T_{n:04}"), campaign.into(), None, fields, Timestamp::now())
    }

    async fn counts(store: &dyn Store, dimension: Dimension) -> BTreeMap<Option<String>, i64> {
        let page = list(store, "ws_1", dimension, 100, None).await.unwrap();
        assert!(page.next.is_none());
        page.items.iter().map(|i| (group_of(dimension, i), i.counter("pushed"))).collect()
    }

    /// 40 leads (three transactions' worth), pushed twice to one channel and partly to another.
    async fn record_pushed_counts_each_lead_once_per_channel(store: Arc<dyn Store>) {
        let store = &*store;
        let mut leads: Vec<Lead> =
            (0..40).map(|n| lead(n, ["CTO", " cto ", "VP  Sales", "Founder"][n % 4], "cmp_A")).collect();
        leads[39].campaign_id = "cmp_B".into();
        leads[38].position = None;
        let again = [leads.clone(), vec![leads[0].clone()]].concat();
        record_pushed(store, "ws_1", "instantly", &leads).await.unwrap();
        record_pushed(store, "ws_1", "instantly", &again).await.unwrap();
        record_pushed(store, "ws_1", "webhook_url", &leads[..3]).await.unwrap();

        let by_position = counts(store, Dimension::Position).await;
        let expected: BTreeMap<Option<String>, i64> =
            [(None, 1), (Some("cto".into()), 20), (Some("founder".into()), 10), (Some("vp sales".into()), 9)].into();
        assert_eq!(by_position, expected);
        let by_source = counts(store, Dimension::Source).await;
        assert_eq!(by_source, [(Some("instantly".into()), 40), (Some("webhook".into()), 3)].into());
        let by_campaign = counts(store, Dimension::Campaign).await;
        assert_eq!(by_campaign, [(Some("cmp_A".into()), 39), (Some("cmp_B".into()), 1)].into());
        // Another workspace sees none of it.
        assert!(list(store, "ws_2", Dimension::Position, 100, None).await.unwrap().items.is_empty());
    }

    #[cfg(feature = "embedded")]
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn record_pushed_counts_each_lead_once_per_channel() {
            let (db, _dir) = crate::testing::embedded_db();
            let store = std::sync::Arc::new(crate::store::sqlite::SqliteStore::new(db));
            super::record_pushed_counts_each_lead_once_per_channel(store).await;
        }
    }

    mod dynamodb {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn record_pushed_counts_each_lead_once_per_channel() {
            super::record_pushed_counts_each_lead_once_per_channel(crate::testing::dynamo_store().await).await;
        }
    }

    #[test]
    fn groups_normalise_and_channels_follow_destinations() {
        assert_eq!(normalize_group(Some("  VP   Sales ")), "vp sales");
        assert_eq!(normalize_group(None), "");
        assert_eq!(normalize_group(Some(&"x".repeat(500))).len(), MAX_GROUP_CHARS);
        assert_eq!(normalize_channel("webhook_url"), "webhook");
        assert_eq!(normalize_channel("Instantly"), "instantly");
        assert_eq!(Dimension::parse("signal_type"), Some(Dimension::SignalType));
        assert_eq!(Dimension::parse("title"), None);
    }
}
