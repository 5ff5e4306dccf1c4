//! Finding a lead from another tool's payload: by our id, LinkedIn profile URL or email.
//!
//! One small lookup item per lead that has an email or a LinkedIn URL, written beside the
//! lead at ingest: its sort key indexes the email, its `gsi1` key the LinkedIn URL.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | lead lookup | `W#{ws}` | `LKP#E#{email}#{lead}` (`LKP#-#{lead}` without email) | `W#{ws}#LKP#L#{linkedin}` / `{lead}` |
//!
//! Several leads may share an email or profile (the same person in two campaigns). The
//! choice is deterministic: the lead pushed most recently, else the newest lead (ids are
//! time-ordered), among the newest [`MAX_CANDIDATES`].

use serde_json::json;

use super::{leads, workspace_pk};
use crate::domain::contact::{normalize_email, normalize_linkedin};
use crate::domain::lead::Lead;
use crate::domain::providers::LeadRef;
use crate::store::{Item, Key, Query, Store, StoreError};

pub const MAX_CANDIDATES: usize = 25;

fn email_prefix(email: &str) -> String {
    format!("LKP#E#{email}#")
}

fn linkedin_partition(workspace_id: &str, linkedin: &str) -> String {
    format!("W#{workspace_id}#LKP#L#{linkedin}")
}

/// The lookup item of a lead, if it has an email or a LinkedIn URL to be found by.
pub fn item(workspace_id: &str, lead: &Lead) -> Result<Option<Item>, StoreError> {
    let email = lead.email.as_deref().and_then(normalize_email);
    let linkedin = lead.linkedin.as_deref().and_then(normalize_linkedin);
    if email.is_none() && linkedin.is_none() {
        return Ok(None);
    }
    let sk = match &email {
        Some(email) => format!("{}{}", email_prefix(email), lead.id),
        None => format!("LKP#-#{}", lead.id),
    };
    let mut item = Item::new(Key::new(workspace_pk(workspace_id), sk), &json!({"lead_id": lead.id}))?;
    if let Some(linkedin) = linkedin {
        item = item.with_gsi1(linkedin_partition(workspace_id, &linkedin), lead.id.clone());
    }
    Ok(Some(item))
}

async fn candidates(store: &dyn Store, query: Query) -> Result<Vec<String>, StoreError> {
    let page = store.query(&query.limit(MAX_CANDIDATES).descending()).await?;
    Ok(page.items.iter().filter_map(|i| i.data.get("lead_id").and_then(|v| v.as_str()).map(str::to_owned)).collect())
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
    // Lookup items of leads removed since (a failed ingest's undo) simply match nothing.
    Ok(choose(leads::get_many(store, workspace_id, &ids).await?))
}

/// Our id first (when it names a lead of this workspace), then LinkedIn, then email.
pub async fn find(store: &dyn Store, workspace_id: &str, lead: &LeadRef) -> Result<Option<Lead>, StoreError> {
    if let Some(id) = lead.lead_id.as_deref().filter(|id| !id.is_empty() && id.len() <= 128 && !id.contains('#'))
        && let Some(found) = leads::get(store, workspace_id, id).await?
    {
        return Ok(Some(found));
    }
    if let Some(linkedin) = &lead.linkedin {
        let ids = candidates(store, Query::gsi1(linkedin_partition(workspace_id, linkedin))).await?;
        if let Some(found) = best(store, workspace_id, ids).await? {
            return Ok(Some(found));
        }
    }
    if let Some(email) = &lead.email {
        let ids = candidates(store, Query::table(workspace_pk(workspace_id)).prefix(email_prefix(email))).await?;
        return best(store, workspace_id, ids).await;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::time::Timestamp;

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
    fn lookup_items_index_email_in_the_key_and_linkedin_in_gsi1() {
        let item = item("ws_1", &lead("req_1_0001", Some("A@B.co"), Some("https://www.linkedin.com/in/a/"), None))
            .unwrap()
            .unwrap();
        assert_eq!(item.key, Key::new("W#ws_1", "LKP#E#a@b.co#req_1_0001"));
        assert_eq!(item.gsi1, Some(Key::new("W#ws_1#LKP#L#linkedin.com/in/a", "req_1_0001")));
        let only_linkedin = super::item("ws_1", &lead("req_1_0002", None, Some("linkedin.com/in/a"), None)).unwrap();
        assert_eq!(only_linkedin.unwrap().key.sk, "LKP#-#req_1_0002");
        assert!(super::item("ws_1", &lead("req_1_0003", None, Some("@handle"), None)).unwrap().is_none());
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

    /// Ingest writes the lookup items; find goes by id, then LinkedIn, then email, per workspace.
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
