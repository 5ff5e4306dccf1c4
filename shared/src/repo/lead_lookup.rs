//! Finding a lead from another tool's payload: by our id, LinkedIn profile URL or email;
//! and listing the addresses a workspace knows at a domain (for the finders).
//!
//! The lead item itself carries the lookup keys, in two sparse indexes (keys only on
//! DynamoDB): `gsi2` by normalised email under its domain, `gsi3` by normalised LinkedIn
//! URL. No extra items, so ingest stays at about N/25 batch writes, and an update of the
//! lead keeps its lookup keys in step.
//!
//! | index | partition (`gsiNpk`) | sort (`gsiNsk`) |
//! |---|---|---|
//! | gsi2 | `W#{ws}#D#{domain}#{shard}` | `{email}#LEAD#{lead}` |
//! | gsi3 | `W#{ws}#L#{linkedin}` | `LEAD#{lead}` |
//!
//! `gsi2` is a sharded listing of the domain's addresses ([`keys::sharded`] by email, so all
//! leads of one address share a shard and sit side by side, sorted by address): an email
//! lookup is one query of one shard with the address as sort-key prefix, and a domain's
//! addresses are a scatter-gather over its [`keys::LIST_SHARDS`] shards.
//!
//! Several leads may share an email or profile (the same person in two campaigns). The
//! choice is deterministic: the lead pushed most recently, else the newest lead (ids are
//! time-ordered), among the newest [`MAX_CANDIDATES`].

use super::{keys, leads};
use crate::domain::contact::{normalize_email, normalize_linkedin};
use crate::domain::lead::Lead;
use crate::domain::providers::LeadRef;
use crate::store::{Cursor, Index, Item, Query, Store, StoreError};

pub const MAX_CANDIDATES: usize = 25;

/// The listing partition of a domain's addresses, without the shard suffix.
fn domain_listing(workspace_id: &str, domain: &str) -> String {
    format!("W#{workspace_id}#D#{domain}")
}

/// The shard of the domain listing that holds a normalised address.
pub fn email_partition(workspace_id: &str, email: &str) -> String {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    keys::sharded(&domain_listing(workspace_id, domain), email)
}

fn email_sort(email: &str, lead_id: &str) -> String {
    format!("{email}#LEAD#{lead_id}")
}

/// The leads of one normalised address: its shard, its sort-key prefix.
fn email_query(workspace_id: &str, email: &str) -> Query {
    Query::index(Index::Gsi2, email_partition(workspace_id, email)).prefix(email_sort(email, ""))
}

/// The address and lead id of a `gsi2` sort key.
fn parse_email_sort(sort: &str) -> Option<(&str, &str)> {
    sort.rsplit_once("#LEAD#")
}

fn linkedin_partition(workspace_id: &str, linkedin: &str) -> String {
    format!("W#{workspace_id}#L#{linkedin}")
}

/// Adds a lead's lookup keys to its item (when it has an email or LinkedIn URL).
pub fn with_lookup_keys(mut item: Item, workspace_id: &str, lead: &Lead) -> Item {
    let sort = format!("LEAD#{}", lead.id);
    if let Some(email) = lead.email.as_deref().and_then(normalize_email) {
        item = item.with_index(Index::Gsi2, email_partition(workspace_id, &email), email_sort(&email, &lead.id));
    }
    if let Some(linkedin) = lead.linkedin.as_deref().and_then(normalize_linkedin) {
        item = item.with_index(Index::Gsi3, linkedin_partition(workspace_id, &linkedin), sort);
    }
    item
}

/// Lead ids in one lookup partition, newest first (the index holds keys only).
async fn candidates(store: &dyn Store, query: Query) -> Result<Vec<String>, StoreError> {
    let index = query.index;
    let page = store.query(&query.limit(MAX_CANDIDATES).descending().keys_only()).await?;
    Ok(page
        .items
        .iter()
        .filter_map(|i| {
            let sort = &i.index_key(index)?.sk;
            let id = match index {
                Index::Gsi2 => parse_email_sort(sort)?.1,
                _ => sort.strip_prefix("LEAD#")?,
            };
            Some(id.to_owned())
        })
        .collect())
}

/// The rule for several matches: most recently pushed, then newest.
pub fn choose(mut leads: Vec<Lead>) -> Option<Lead> {
    leads.sort_by(|a, b| (a.pushed_at, &a.id).cmp(&(b.pushed_at, &b.id)));
    leads.pop()
}

async fn best(store: &dyn Store, workspace_id: &str, ids: Vec<String>) -> Result<Option<Lead>, StoreError> {
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(choose(leads::get_many(store, workspace_id, &ids).await?))
}

/// The newest leads (at most [`MAX_CANDIDATES`]) whose email normalises to `email`.
pub async fn leads_with_email(store: &dyn Store, workspace_id: &str, email: &str) -> Result<Vec<Lead>, StoreError> {
    let Some(email) = normalize_email(email) else { return Ok(Vec::new()) };
    let ids = candidates(store, email_query(workspace_id, &email)).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut leads = leads::get_many(store, workspace_id, &ids).await?;
    leads.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(leads)
}

/// Our id first (when it names a lead of this workspace), then LinkedIn, then email.
pub async fn find(store: &dyn Store, workspace_id: &str, lead: &LeadRef) -> Result<Option<Lead>, StoreError> {
    if let Some(id) = lead.lead_id.as_deref().filter(|id| !id.is_empty() && id.len() <= 128 && !id.contains('#'))
        && let Some(found) = leads::get(store, workspace_id, id).await?
    {
        return Ok(Some(found));
    }
    if let Some(linkedin) = &lead.linkedin {
        let ids = candidates(store, Query::index(Index::Gsi3, linkedin_partition(workspace_id, linkedin))).await?;
        if let Some(found) = best(store, workspace_id, ids).await? {
            return Ok(Some(found));
        }
    }
    if let Some(email) = &lead.email {
        let ids = candidates(store, email_query(workspace_id, email)).await?;
        return best(store, workspace_id, ids).await;
    }
    Ok(None)
}

/// One address a workspace knows at a domain, with the ids of its leads (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAddress {
    pub email: String,
    pub lead_ids: Vec<String>,
}

/// The addresses a workspace knows at `domain` (exactly that domain), sorted by address:
/// a keys-only scatter-gather over the domain's shards, reading at most `max_keys` index
/// entries in all. Returns the addresses and whether the listing was complete.
pub async fn addresses_at_domain(
    store: &dyn Store,
    workspace_id: &str,
    domain: &str,
    max_keys: usize,
) -> Result<(Vec<KnownAddress>, bool), StoreError> {
    let listing = domain_listing(workspace_id, domain);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut complete = true;
    'shards: for partition in keys::all_shards(&listing) {
        let mut cursor: Option<Cursor> = None;
        loop {
            let room = max_keys.saturating_sub(pairs.len());
            if room == 0 {
                complete = false;
                break 'shards;
            }
            let query =
                Query::index(Index::Gsi2, partition.clone()).limit(room.min(1000)).after(cursor.take()).keys_only();
            let page = store.query(&query).await?;
            pairs.extend(page.items.iter().filter_map(|item| {
                let (email, id) = parse_email_sort(&item.index_key(Index::Gsi2)?.sk)?;
                Some((email.to_owned(), id.to_owned()))
            }));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    // Newest lead first within an address (ids are time-ordered).
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut out: Vec<KnownAddress> = Vec::new();
    for (email, id) in pairs {
        match out.last_mut() {
            Some(last) if last.email == email => last.lead_ids.push(id),
            _ => out.push(KnownAddress { email, lead_ids: vec![id] }),
        }
    }
    Ok((out, complete))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::store::Key;
    use crate::support::time::Timestamp;

    fn lead(id: &str, email: Option<&str>, linkedin: Option<&str>, pushed: Option<&str>) -> Lead {
        let fields = LeadFields {
            name: Some("A".into()),
            email: email.map(str::to_owned),
            linkedin: linkedin.map(str::to_owned),
            ..LeadFields::default()
        };
        let mut lead = Lead::new(id.into(), "cmp_1".into(), None, fields, Timestamp::now());
        lead.pushed_at = pushed.and_then(Timestamp::parse);
        lead
    }

    #[test]
    fn lead_items_carry_normalised_email_and_linkedin_lookup_keys() {
        let jane = lead("req_1_0001", Some("A@B.co"), Some("https://www.linkedin.com/in/a/"), None);
        let item = leads::item("ws_1", &jane).unwrap();
        let shard = keys::shard_of("a@b.co");
        assert_eq!(
            item.index_key(Index::Gsi2),
            Some(&Key::new(format!("W#ws_1#D#b.co#{shard:02}"), "a@b.co#LEAD#req_1_0001"))
        );
        assert_eq!(item.index_key(Index::Gsi3), Some(&Key::new("W#ws_1#L#linkedin.com/in/a", "LEAD#req_1_0001")));
        let neither = leads::item("ws_1", &lead("req_1_0003", None, Some("@handle"), None)).unwrap();
        assert_eq!((neither.index_key(Index::Gsi2), neither.index_key(Index::Gsi3)), (None, None));
    }

    #[test]
    fn ambiguity_prefers_the_most_recently_pushed_then_the_newest_lead() {
        let old_pushed = lead("req_1_0001", None, None, Some("2026-05-02T10:00:00Z"));
        let new_pushed = lead("req_1_0002", None, None, Some("2026-05-02T11:00:00Z"));
        let newest = lead("req_2_0001", None, None, None);
        let chosen = choose(vec![newest.clone(), new_pushed.clone(), old_pushed.clone()]).unwrap();
        assert_eq!(chosen.id, new_pushed.id);
        let chosen = choose(vec![lead("req_1_0001", None, None, None), newest.clone()]).unwrap();
        assert_eq!(chosen.id, newest.id);
        assert!(choose(Vec::new()).is_none());
    }

    /// Ingest writes the lookup keys; find goes by id, then LinkedIn, then email, per workspace.
    async fn leads_are_found_by_id_linkedin_or_email(store: Arc<dyn Store>) {
        let store = &*store;
        let jane = lead("req_A_0001", Some("Jane@Acme.com"), Some("https://www.linkedin.com/in/jane-doe"), None);
        let jane_again = lead("req_B_0001", Some("jane@acme.com"), None, None);
        let other = lead("req_B_0002", Some("bob@acme.com"), None, None);
        leads::put_many(store, "ws_1", &[jane.clone(), jane_again.clone(), other.clone()]).await.unwrap();
        leads::put_many(store, "ws_2", &[lead("req_C_0001", Some("carol@acme.com"), None, None)]).await.unwrap();
        let find = |r: LeadRef| async move { find(store, "ws_1", &r).await.unwrap().map(|l| l.id) };
        let by = |id: Option<&str>, linkedin: Option<&str>, email: Option<&str>| LeadRef {
            lead_id: id.map(str::to_owned),
            linkedin: linkedin.map(str::to_owned),
            email: email.map(str::to_owned),
        };
        assert_eq!(find(by(Some("req_B_0002"), None, Some("jane@acme.com"))).await.as_deref(), Some("req_B_0002"));
        assert_eq!(find(by(None, Some("linkedin.com/in/jane-doe"), None)).await.as_deref(), Some("req_A_0001"));
        // Two leads share the email: the newer one (neither was pushed).
        assert_eq!(find(by(None, None, Some("jane@acme.com"))).await.as_deref(), Some("req_B_0001"));
        // An unknown id falls back to the email.
        assert_eq!(find(by(Some("req_Z_0009"), None, Some("bob@acme.com"))).await.as_deref(), Some("req_B_0002"));
        assert_eq!(find(by(None, Some("linkedin.com/in/nobody"), None)).await, None);
        assert_eq!(find(by(None, None, Some("carol@acme.com"))).await, None, "another workspace's lead");
        assert_eq!(find(by(None, None, Some("jane@acme.co"))).await, None, "no prefix matches");

        // The domain's addresses, sorted, each with its leads newest first; never another
        // workspace's, never a subdomain's.
        leads::put_many(store, "ws_1", &[lead("req_D_0001", Some("x@eu.acme.com"), None, None)]).await.unwrap();
        let (known, complete) = addresses_at_domain(store, "ws_1", "acme.com", 100).await.unwrap();
        let want = vec![
            KnownAddress { email: "bob@acme.com".into(), lead_ids: vec!["req_B_0002".into()] },
            KnownAddress { email: "jane@acme.com".into(), lead_ids: vec!["req_B_0001".into(), "req_A_0001".into()] },
        ];
        assert_eq!((known, complete), (want, true));
        let (capped, complete) = addresses_at_domain(store, "ws_1", "acme.com", 2).await.unwrap();
        assert_eq!((capped.iter().map(|k| k.lead_ids.len()).sum::<usize>(), complete), (2, false));
        assert_eq!(addresses_at_domain(store, "ws_2", "acme.com", 100).await.unwrap().0.len(), 1);
        assert!(addresses_at_domain(store, "ws_3", "acme.com", 100).await.unwrap().0.is_empty());
    }

    #[cfg(feature = "embedded")]
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn leads_are_found_by_id_linkedin_or_email() {
            let (db, _dir) = crate::testing::embedded_db();
            let store = std::sync::Arc::new(crate::store::sqlite::SqliteStore::new(db));
            super::leads_are_found_by_id_linkedin_or_email(store).await;
        }
    }

    mod dynamodb {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn leads_are_found_by_id_linkedin_or_email() {
            super::leads_are_found_by_id_linkedin_or_email(crate::testing::dynamo_store().await).await;
        }
    }
}
