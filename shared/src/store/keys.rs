//! Key primitives shared by the repositories' key scheme (`repo::keys`, which documents
//! it) and the adapters' data migrations, which rewrite stored keys into that scheme.

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
