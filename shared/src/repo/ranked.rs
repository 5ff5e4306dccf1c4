//! Leads by `predicted_score`, highest first (leads without a score last, then by id).
//!
//! There is no index by score: a score changes with every recomputation, and an index
//! entry per lead would cost a write on each of them. A page reads the whole listing (a
//! campaign's or the workspace's leads, at most [`MAX_RANKED`]) and sorts it; the cursor
//! is the position (score, id) of the last lead returned, so pages stay consistent while
//! scores are rewritten.

use super::leads::{self, LeadFilter};
use crate::domain::lead::Lead;
use crate::store::{Cursor, Item, Page, Store, StoreError};

/// Most leads a listing may hold to be sorted by score (filter by campaign beyond it).
pub const MAX_RANKED: usize = 5_000;
const READ_PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RankError {
    #[error("more than {MAX_RANKED} leads to sort by predicted_score; filter by campaign_id")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The position of a lead in the ranking: sorts ascending as scores descend.
fn rank_key(lead: &Lead) -> String {
    let inverted = match lead.predicted_score {
        Some(score) => 1_000_000 - (score.clamp(0.0, 1.0) * 1_000_000.0).round() as i64,
        None => 9_999_999,
    };
    format!("{inverted:07}#{}", lead.id)
}

/// A cursor's pseudo-partition: the workspace and listing the ranking belongs to.
fn listing(workspace_id: &str, filter: &LeadFilter) -> String {
    let status = filter.status.map(|s| s.as_str()).unwrap_or_default();
    format!("W#{workspace_id}#RANKED#{}#{status}", filter.campaign_id.as_deref().unwrap_or_default())
}

/// One page of the listing by score.
pub async fn list(
    store: &dyn Store,
    workspace_id: &str,
    filter: &LeadFilter,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, RankError> {
    let partition = listing(workspace_id, filter);
    let after = match cursor {
        Some(c) if c.pk == partition && c.ipk.is_none() => Some(c.sk),
        Some(_) => return Err(StoreError::InvalidCursor.into()),
        None => None,
    };
    let mut all: Vec<(String, Item)> = Vec::new();
    let mut next = None;
    loop {
        let page = leads::list(store, workspace_id, filter, READ_PAGE, next).await?;
        for item in page.items {
            all.push((rank_key(&item.parse()?), item));
        }
        if all.len() > MAX_RANKED {
            return Err(RankError::TooMany);
        }
        match page.next {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let rest: Vec<(String, Item)> = all.into_iter().filter(|(key, _)| after.as_ref().is_none_or(|a| key > a)).collect();
    let more = rest.len() > limit;
    let items: Vec<(String, Item)> = rest.into_iter().take(limit).collect();
    let next = if more {
        items.last().map(|(key, _)| Cursor { pk: partition.clone(), sk: key.clone(), ipk: None, isk: None })
    } else {
        None
    };
    Ok(Page { items: items.into_iter().map(|(_, item)| item).collect(), next })
}

/// The ids of the campaign's `count` highest-scored leads not pushed yet (status `new`),
/// best first; leads without a score are never picked.
pub async fn top_new(
    store: &dyn Store,
    workspace_id: &str,
    campaign_id: &str,
    count: usize,
) -> Result<Vec<String>, RankError> {
    let filter =
        LeadFilter { campaign_id: Some(campaign_id.to_owned()), status: Some(crate::domain::lead::LeadStatus::New) };
    let page = list(store, workspace_id, &filter, count, None).await?;
    let mut ids = Vec::with_capacity(page.items.len());
    for item in page.items {
        let lead: Lead = item.parse()?;
        if lead.predicted_score.is_some() {
            ids.push(lead.id);
        }
    }
    Ok(ids)
}
