//! Prefixed, time-sortable ids: `cmp_01JD…`, `req_01JD…`, `wh_01JD…` (ULIDs).

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new())
}

pub const CAMPAIGN: &str = "cmp";
pub const REQUEST: &str = "req";
pub const WORKSPACE: &str = "ws";
pub const API_KEY: &str = "key";
pub const WEBHOOK_TOKEN: &str = "wtk";
pub const PUSH: &str = "push";
pub const EVENT: &str = "evt";
pub const WEBHOOK: &str = "wh";
pub const DELIVERY: &str = "dlv";
pub const MESSAGE: &str = "msg";

/// Lead ids start with the id of the ingest request that created them (the webhook-campaign
/// setup guide: "leads will appear with the request ID as a prefix"), then their position
/// in it.
pub fn lead_id(request_id: &str, position: usize) -> String {
    format!("{request_id}_{position:04}")
}

/// Whether `id` looks like one of ours with this prefix (cheap input check before a lookup).
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.len() <= 128
        && id
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_ids_start_with_the_request_id_and_sort_by_position() {
        let request = new_id(REQUEST);
        let (a, b) = (lead_id(&request, 2), lead_id(&request, 10));
        assert!(a.starts_with(&format!("{request}_")));
        assert!(a < b);
        assert!(has_prefix(&a, REQUEST));
        assert!(!has_prefix("cmp_", CAMPAIGN));
        assert!(!has_prefix("cmp_../x", CAMPAIGN));
    }
}
