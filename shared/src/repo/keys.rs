//! The key scheme every item kind follows, so that no partition key takes a workspace's
//! whole write load (DynamoDB: at most 1,000 WCU/s and 3,000 RCU/s per partition key value,
//! tables and indexes alike).
//!
//! - **Workspace configuration** (few items, rarely written: workspace, credentials,
//!   campaigns, webhooks, integrations, API requests, settings, workflows): partition
//!   `W#{ws}`, sort key `{KIND}#{id}`.
//! - **Growing kinds** (leads, events, pushes, deliveries, runs, enrichment results, jobs,
//!   caches): one partition per item, [`item_pk`] = `W#{ws}#{KIND}#{id}`, with sort key
//!   `{KIND}` for the item itself. An item's children (a lead's events and runs, a job's
//!   results) live in their parent's partition under their own sort-key prefix.
//! - **Listings of growing kinds** go through a secondary index whose partition is sharded
//!   by the item's id ([`sharded`]), and are read by scatter-gather over [`LIST_SHARDS`]
//!   partitions.
//! - **Counters many writers touch** are sharded the same way and summed on read.

/// Shards per sharded listing or counter. 16 partitions take 16,000 writes/s together.
pub const LIST_SHARDS: u32 = 16;

/// The partition of one item of a growing kind: `W#{ws}#{kind}#{id}`.
pub fn item_pk(workspace_id: &str, kind: &str, id: &str) -> String {
    format!("W#{workspace_id}#{kind}#{id}")
}

/// A stable shard in `0..LIST_SHARDS` for an id. FNV-1a is fixed by its definition, so the
/// shard of a stored item never changes between builds or platforms.
pub fn shard_of(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % LIST_SHARDS
}

/// The shard of a listing partition that `id` belongs to: `{partition}#{shard:02}`.
pub fn sharded(partition: &str, id: &str) -> String {
    format!("{partition}#{:02}", shard_of(id))
}

/// Every shard of a listing partition, for scatter-gather reads.
pub fn all_shards(partition: &str) -> impl Iterator<Item = String> + '_ {
    (0..LIST_SHARDS).map(move |shard| format!("{partition}#{shard:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed by FNV-1a: a change here would orphan stored listings.
        assert_eq!(shard_of(""), 0x811c_9dc5 % LIST_SHARDS);
        assert_eq!(sharded("W#1#CMP#c", "lead_a"), format!("W#1#CMP#c#{:02}", shard_of("lead_a")));
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            seen.insert(shard_of(&format!("req_01HZ_{i:04}")));
        }
        assert_eq!(seen.len(), LIST_SHARDS as usize, "1000 ids reach every shard");
        assert_eq!(all_shards("P").count(), LIST_SHARDS as usize);
        assert_eq!(item_pk("ws", "LEAD", "l1"), "W#ws#LEAD#l1");
    }
}
