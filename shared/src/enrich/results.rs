//! Stored enrichment results and the 202 / repeat-the-call flow shared by every kind.
//!
//! Items (see `repo::keys`): the result, `W#{ws}#ENR#{id}` / `ENR`; and the lookup of a
//! request, `W#{ws}#ENRQ#{sha256(kind, params)}` / `ENRQ` -> the result's id. Both expire
//! (a pending result after [`PENDING_TTL`], a finished one after its kind's freshness),
//! compared on read. Creating a result and its lookup is one transaction that only
//! succeeds while no fresh lookup exists, so concurrent identical calls share one result.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::EnrichError;
use crate::context::AppContext;
use crate::queue::Task;
use crate::repo::{UpdateError, keys, update_versioned};
use crate::store::{Condition, Item, Key, StoreError, WriteOp};
use crate::support::time::Timestamp;

/// A pending result is abandoned (and a new call starts over) after this long.
pub const PENDING_TTL: Duration = Duration::from_secs(3600);
/// `?webhook_url=` callbacks one result keeps for when it finishes.
pub const MAX_CALLBACKS: usize = 20;
const RESULT_KIND: &str = "ENR";
const LOOKUP_KIND: &str = "ENRQ";

/// Canonical request parameters (trimmed, lower-cased where case does not matter).
pub type Params = BTreeMap<String, String>;

/// The kinds of enrichment. Each has an id prefix and a callback event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    EmailVerifier,
    EmailFinder,
    DomainSearch,
    AuthorFinder,
    PhoneFinder,
}

impl Kind {
    pub const ALL: [Kind; 5] =
        [Kind::EmailVerifier, Kind::EmailFinder, Kind::DomainSearch, Kind::AuthorFinder, Kind::PhoneFinder];

    pub fn id_prefix(self) -> &'static str {
        match self {
            Kind::EmailVerifier => "ver",
            Kind::EmailFinder => "efn",
            Kind::DomainSearch => "dsr",
            Kind::AuthorFinder => "afn",
            Kind::PhoneFinder => "pfn",
        }
    }

    /// The `event` of its `?webhook_url=` callbacks (as in the callback log).
    pub fn event(self) -> &'static str {
        match self {
            Kind::EmailVerifier => "email_verifier",
            Kind::EmailFinder => "email_finder",
            Kind::DomainSearch => "domain_search",
            Kind::AuthorFinder => "author_finder",
            Kind::PhoneFinder => "phone_finder",
        }
    }

    pub fn from_id(id: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| crate::support::ids::has_prefix(id, k.id_prefix()))
    }
}

/// What a kind's work produced: the `data` object and how long it answers repeat calls.
pub struct Computed {
    pub data: Value,
    pub fresh_for: Duration,
}

/// How a worker computes a pending result: [`compute`] (every kind) or [`verification`].
/// A plain function, so a worker's choice names only the code it runs.
pub type Compute =
    for<'a> fn(&'a AppContext, &'a str, Kind, &'a Params) -> BoxFuture<'a, Result<Computed, EnrichError>>;

/// Runs the work of any kind (finder-worker, `leadpush serve`). New kinds add their arm here.
pub fn compute<'a>(
    ctx: &'a AppContext,
    workspace_id: &'a str,
    kind: Kind,
    params: &'a Params,
) -> BoxFuture<'a, Result<Computed, EnrichError>> {
    Box::pin(async move {
        match kind {
            Kind::EmailVerifier => verify(ctx, workspace_id, params).await,
            Kind::EmailFinder => super::find::finders::email_finder(ctx, workspace_id, params).await,
            Kind::DomainSearch => super::find::finders::domain_search(ctx, workspace_id, params).await,
            Kind::AuthorFinder => super::find::finders::author_finder(ctx, workspace_id, params).await,
            Kind::PhoneFinder => super::find::finders::phone_finder(ctx, workspace_id, params).await,
        }
    })
}

/// Runs an email verification only (enrich-worker), so that worker links no finder code
/// (the phone metadata, the crawler, the regex engine). A finder's task never reaches it:
/// it travels on the finders' lane (`queue::Lane::Find`).
pub fn verification<'a>(
    ctx: &'a AppContext,
    workspace_id: &'a str,
    kind: Kind,
    params: &'a Params,
) -> BoxFuture<'a, Result<Computed, EnrichError>> {
    Box::pin(async move {
        match kind {
            Kind::EmailVerifier => verify(ctx, workspace_id, params).await,
            other => Err(EnrichError::Other(format!("{}: a finder's result, not a verification", other.event()))),
        }
    })
}

async fn verify(ctx: &AppContext, workspace_id: &str, params: &Params) -> Result<Computed, EnrichError> {
    let email = params.get("email").ok_or_else(|| EnrichError::invalid("email", "is required"))?;
    let v = super::verify::verify_email(ctx, workspace_id, email).await?;
    let fresh_for = super::verify::freshness(ctx, &v);
    Ok(Computed { data: serde_json::to_value(&v).map_err(|e| EnrichError::Other(e.to_string()))?, fresh_for })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    pub id: String,
    pub kind: Kind,
    pub params: Params,
    pub state: State,
    pub data: Option<Value>,
    /// URLs (SSRF-checked) to POST the data to when it is ready.
    #[serde(default)]
    pub callbacks: Vec<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// After this it is absent (the item's `expires_at`).
    pub fresh_until: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct Lookup {
    id: String,
}

fn request_hash(kind: Kind, params: &Params) -> String {
    let mut text = kind.event().to_owned();
    for (k, v) in params {
        text.push('\u{1f}');
        text.push_str(k);
        text.push('=');
        text.push_str(v);
    }
    crate::support::secrets::hash(&text)
}

pub fn key(workspace_id: &str, id: &str) -> Key {
    Key::new(keys::item_pk(workspace_id, RESULT_KIND, id), RESULT_KIND)
}

fn lookup_key(workspace_id: &str, kind: Kind, params: &Params) -> Key {
    Key::new(keys::item_pk(workspace_id, LOOKUP_KIND, &request_hash(kind, params)), LOOKUP_KIND)
}

fn item(workspace_id: &str, e: &Enrichment) -> Result<Item, StoreError> {
    Ok(Item::new(key(workspace_id, &e.id), e)?.with_expiry(e.fresh_until.unix_seconds()))
}

/// A result by id (absent, expired or another workspace's: `None`).
pub async fn get(ctx: &AppContext, workspace_id: &str, id: &str) -> Result<Option<Enrichment>, StoreError> {
    if Kind::from_id(id).is_none() {
        return Ok(None);
    }
    match ctx.store.get(&key(workspace_id, id)).await? {
        Some(item) if !item.is_expired(ctx.now().unix_seconds()) => Ok(Some(item.parse()?)),
        _ => Ok(None),
    }
}

/// The answer to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The finished `data`; `cached` when an earlier call produced it.
    Ready { data: Value, cached: bool },
    /// Still running: repeat the call, or read `GET /api/v1/enrichments/{id}`.
    Pending { id: String },
}

/// Finds or starts the result for these parameters, registers the callback, and waits up
/// to `wait` for it.
pub async fn request(
    ctx: &AppContext,
    workspace_id: &str,
    kind: Kind,
    params: Params,
    wait: Duration,
    callback: Option<&str>,
) -> Result<Answer, EnrichError> {
    let deadline = tokio::time::Instant::now() + wait;
    let (mut current, created) = find_or_start(ctx, workspace_id, kind, params).await?;
    if let Some(url) = callback {
        current = register_callback(ctx, workspace_id, current, url).await?;
    }
    let mut pause = Duration::from_millis(20);
    loop {
        if current.state == State::Completed {
            let mut data = current.data.unwrap_or(Value::Null);
            let cached = !created;
            if let Some(object) = data.as_object_mut() {
                object.insert("cached".into(), Value::Bool(cached));
            }
            return Ok(Answer::Ready { data, cached });
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(Answer::Pending { id: current.id });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(250));
        current = match get(ctx, workspace_id, &current.id).await? {
            Some(e) => e,
            None => return Ok(Answer::Pending { id: current.id }),
        };
    }
}

/// The fresh result for the parameters, or a new pending one with its task queued.
/// `true` when this call created it.
async fn find_or_start(
    ctx: &AppContext,
    workspace_id: &str,
    kind: Kind,
    params: Params,
) -> Result<(Enrichment, bool), EnrichError> {
    let store = &*ctx.store;
    let lookup = lookup_key(workspace_id, kind, &params);
    for _ in 0..5 {
        let now = ctx.now();
        if let Some(item) = store.get(&lookup).await?
            && !item.is_expired(now.unix_seconds())
        {
            let Lookup { id } = item.parse()?;
            if let Some(found) = get(ctx, workspace_id, &id).await? {
                return Ok((found, false));
            }
        }
        let id = crate::support::ids::new_id(kind.id_prefix());
        let expires_at = now.plus(PENDING_TTL);
        let pending = Enrichment {
            id: id.clone(),
            kind,
            params: params.clone(),
            state: State::Pending,
            data: None,
            callbacks: Vec::new(),
            created_at: now,
            completed_at: None,
            fresh_until: expires_at,
        };
        let lookup_item = Item::new(lookup.clone(), &Lookup { id: id.clone() })?.with_expiry(expires_at.unix_seconds());
        let ops = vec![
            WriteOp::Put { item: lookup_item, condition: Condition::NotExistsOrExpired { now: now.unix_seconds() } },
            WriteOp::Put { item: item(workspace_id, &pending)?, condition: Condition::NotExists },
        ];
        match store.transact_write(ops).await {
            Ok(()) => {
                let task = Task::Enrich { workspace_id: workspace_id.to_owned(), id: id.clone() };
                if let Err(e) = ctx.queue.send(vec![task.message()]).await {
                    // Without its task the result would never finish: let the next call retry.
                    let _ = store.delete(&lookup, Condition::Always).await;
                    return Err(e.into());
                }
                return Ok((pending, true));
            }
            Err(StoreError::TransactionCanceled { .. } | StoreError::ConditionFailed) => {
                crate::repo::contention_pause(1).await; // another call started it: read theirs
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(EnrichError::Other("could not start the enrichment: too much contention".into()))
}

/// Adds `url` to a pending result's callbacks, or sends the finished data to it now.
async fn register_callback(
    ctx: &AppContext,
    workspace_id: &str,
    current: Enrichment,
    url: &str,
) -> Result<Enrichment, EnrichError> {
    if current.state == State::Completed {
        send_callback(ctx, workspace_id, &current, url).await;
        return Ok(current);
    }
    let updated = update_versioned(
        &*ctx.store,
        &key(workspace_id, &current.id),
        |e: &mut Enrichment| {
            if e.state == State::Completed {
                return Err(());
            }
            if !e.callbacks.iter().any(|u| u == url) && e.callbacks.len() < MAX_CALLBACKS {
                e.callbacks.push(url.to_owned());
            }
            Ok(())
        },
        |e| item(workspace_id, e),
    )
    .await;
    match updated {
        Ok(e) => Ok(e),
        Err(UpdateError::Rejected(())) => {
            // It finished meanwhile: the task will not see this URL, so send it here.
            let done = get(ctx, workspace_id, &current.id).await?.ok_or(EnrichError::NotFound)?;
            send_callback(ctx, workspace_id, &done, url).await;
            Ok(done)
        }
        Err(UpdateError::NotFound) => Err(EnrichError::NotFound),
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}

async fn send_callback(ctx: &AppContext, workspace_id: &str, e: &Enrichment, url: &str) {
    let data = e.data.clone().unwrap_or(Value::Null);
    if let Err(err) = crate::webhooks::queue_callback(ctx, workspace_id, url, e.kind.event(), &data).await {
        tracing::error!(workspace_id, enrichment_id = e.id, error = %err, "callback could not be queued");
    }
}

/// The queued task: computes a pending result once, stores it, and sends its callbacks.
pub async fn run_task(ctx: &AppContext, workspace_id: &str, id: &str, compute: Compute) -> Result<(), EnrichError> {
    let Some(pending) = get(ctx, workspace_id, id).await? else { return Ok(()) };
    if pending.state == State::Completed {
        return Ok(());
    }
    let computed = compute(ctx, workspace_id, pending.kind, &pending.params).await?;
    let now = ctx.now();
    let expires_at = now.plus(computed.fresh_for);
    let data = computed.data;
    let done = update_versioned(
        &*ctx.store,
        &key(workspace_id, id),
        |e: &mut Enrichment| {
            if e.state == State::Completed {
                return Err(()); // a duplicate message finished first
            }
            e.state = State::Completed;
            e.data = Some(data.clone());
            e.completed_at = Some(now);
            e.fresh_until = expires_at;
            Ok(())
        },
        |e| item(workspace_id, e),
    )
    .await;
    let done = match done {
        Ok(done) => done,
        Err(UpdateError::Rejected(())) | Err(UpdateError::NotFound) => return Ok(()),
        Err(UpdateError::Store(e)) => return Err(e.into()),
    };
    // Repeated calls now find the finished result for as long as it is fresh.
    let lookup = Item::new(lookup_key(workspace_id, done.kind, &done.params), &Lookup { id: done.id.clone() })?
        .with_expiry(expires_at.unix_seconds());
    ctx.store.put(lookup, Condition::Always).await?;
    for url in &done.callbacks {
        send_callback(ctx, workspace_id, &done, url).await;
    }
    tracing::info!(workspace_id, enrichment_id = id, kind = done.kind.event(), "enrichment completed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// enrich-worker's `verification` answers verifications and refuses a finder's result
    /// without running it (its bootstrap links no finder code to run it with).
    #[tokio::test]
    async fn the_verification_lane_refuses_a_finders_result_by_name() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let params = Params::from([("domain".to_owned(), "example.com".to_owned())]);
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::EmailVerifier) {
            let Err(EnrichError::Other(message)) = verification(&ctx, "ws_1", kind, &params).await else {
                panic!("{kind:?} was not refused");
            };
            assert_eq!(message, format!("{}: a finder's result, not a verification", kind.event()));
        }
        let Err(EnrichError::Invalid { field, .. }) = verification(&ctx, "ws_1", Kind::EmailVerifier, &params).await
        else {
            panic!("a verification without an email must be invalid");
        };
        assert_eq!(field, "email");
    }
}
