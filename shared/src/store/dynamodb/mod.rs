//! The DynamoDB adapter. Data fields are stored as top-level attributes beside the reserved
//! key attributes, so items read naturally in the console and counters can use `ADD`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    Update, WriteRequest,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value};

use super::{
    Condition, Cursor, Index, Item, Key, MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS, Page, Projection, Query,
    RESERVED_ATTRIBUTES, Store, StoreError, WriteOp, dedupe_last_wins, prefix_upper_bound, validate_query,
    validate_transaction,
};

mod codec;
mod errors;

use codec::*;
use errors::*;

/// Parallel BatchWriteItem / BatchGetItem calls per request.
const BATCH_CONCURRENCY: usize = 8;
/// Query calls one page may make while a filter skips items.
const MAX_QUERY_CALLS_PER_PAGE: usize = 10;
/// A filtered page reads at most this many times its size: DynamoDB's Limit counts items
/// before the filter, and skipped items cost reads too. The page may then come back short,
/// with a cursor.
const FILTERED_READ_FACTOR: usize = 3;

type Attrs = HashMap<String, AttributeValue>;

/// How the adapter retries what the SDK does not: transaction conflicts, throttled
/// transactions and unprocessed batch items. Pauses grow exponentially to `cap` with "equal
/// jitter" (half fixed, half random), so writers that collided spread out instead of
/// colliding again in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Calls in all (for batches: calls that made no progress).
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// About 4 s of pauses at most: long enough to ride out a hot key, short enough for an
    /// API request to answer 503 well within API Gateway's 29 s.
    fn default() -> Self {
        Self { attempts: 8, base: Duration::from_millis(25), cap: Duration::from_secs(1) }
    }
}

impl RetryPolicy {
    pub fn pause(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retry: RetryPolicy,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), retry: RetryPolicy::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

impl DynamoStore {
    /// Sends a single-item call, retrying conflicts and throttling (the SDK's own retries
    /// cover throttling too, but not `TransactionConflictException` on an item a running
    /// transaction holds).
    async fn call<T, E, R, Fut>(&self, what: &str, mut send: impl FnMut() -> Fut) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let mut attempt = 0;
        loop {
            match send().await {
                Ok(out) => return Ok(out),
                Err(e) => {
                    let (class, error) = sdk_error(what, e);
                    attempt += 1;
                    if !matches!(class, Class::Conflict | Class::Throttled) || attempt >= self.retry.attempts {
                        return Err(error);
                    }
                    tokio::time::sleep(self.retry.pause(attempt)).await;
                }
            }
        }
    }

    /// BatchWriteItem in chunks of 25, several chunks in flight.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let chunks: Vec<Vec<WriteRequest>> =
            requests.chunks(MAX_BATCH_WRITE_ITEMS).map(<[WriteRequest]>::to_vec).collect();
        stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Unprocessed items (throttling) are resent after a jittered pause; only calls that made
    /// no progress count against the retry budget.
    async fn write_chunk(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut stalled = 0;
        loop {
            let sent = requests.clone();
            let out = self
                .call("BatchWriteItem", || {
                    self.client.batch_write_item().request_items(&self.table, sent.clone()).send()
                })
                .await?;
            let left = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if left.is_empty() {
                return Ok(());
            }
            stalled = if left.len() < requests.len() { 0 } else { stalled + 1 };
            if stalled >= self.retry.attempts {
                return Err(StoreError::Busy(format!(
                    "dynamodb: {} items still unprocessed after retries",
                    left.len()
                )));
            }
            requests = left;
            tokio::time::sleep(self.retry.pause(stalled)).await;
        }
    }

    /// BatchGetItem in chunks of 100, several in flight; `consistent`: strongly consistent
    /// (the port's `batch_get`), or eventually (half the read units) where that is enough.
    async fn batch_get_with(&self, keys: &[Key], consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<Attrs> = keys.iter().filter(|k| seen.insert(*k)).map(key_attrs).collect();
        let chunks: Vec<Vec<Attrs>> = unique.chunks(MAX_BATCH_GET_KEYS).map(<[Attrs]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.get_chunk(chunk, consistent))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn get_chunk(&self, mut keys: Vec<Attrs>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        let mut stalled = 0;
        loop {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys.clone()))
                .consistent_read(consistent)
                .build()
                .map_err(backend)?;
            let out = self
                .call("BatchGetItem", || {
                    self.client.batch_get_item().request_items(&self.table, request.clone()).send()
                })
                .await?;
            for attrs in out.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default() {
                items.push(decode(attrs)?);
            }
            let left = out.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            if left.is_empty() {
                return Ok(items);
            }
            stalled = if left.len() < keys.len() { 0 } else { stalled + 1 };
            if stalled >= self.retry.attempts {
                return Err(StoreError::Busy(format!("dynamodb: {} keys still unprocessed after retries", left.len())));
            }
            keys = left;
            tokio::time::sleep(self.retry.pause(stalled)).await;
        }
    }

    fn transact_item(&self, op: WriteOp) -> Result<TransactWriteItem, StoreError> {
        let table = Some(self.table.clone());
        Ok(match op {
            WriteOp::Put { item, condition } => {
                let cond = condition_expr(condition);
                let put = Put::builder()
                    .set_table_name(table)
                    .set_item(Some(encode(&item)?))
                    .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
                    .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
                    .set_expression_attribute_values(cond.and_then(|c| c.values))
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().put(put).build()
            }
            WriteOp::Delete { key, condition } => {
                let cond = condition_expr(condition);
                let delete = Delete::builder()
                    .set_table_name(table)
                    .set_key(Some(key_attrs(&key)))
                    .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
                    .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
                    .set_expression_attribute_values(cond.and_then(|c| c.values))
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            WriteOp::Check { key, condition } => {
                let cond = condition_expr(condition)
                    .ok_or_else(|| StoreError::InvalidRequest("a check needs a condition".into()))?;
                let check = ConditionCheck::builder()
                    .set_table_name(table)
                    .set_key(Some(key_attrs(&key)))
                    .condition_expression(cond.expression)
                    .set_expression_attribute_names(Some(cond.names))
                    .set_expression_attribute_values(cond.values)
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
            WriteOp::Increment { key, counters } => {
                let (expression, names, values) = increment_update(&counters)?;
                let update = Update::builder()
                    .set_table_name(table)
                    .set_key(Some(key_attrs(&key)))
                    .update_expression(expression)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(backend)?;
                TransactWriteItem::builder().update(update).build()
            }
        })
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .call("GetItem", || {
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .consistent_read(true)
                    .send()
            })
            .await?;
        out.item.map(decode).transpose()
    }

    async fn get_eventually(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .call("GetItem", || self.client.get_item().table_name(&self.table).set_key(Some(key_attrs(key))).send())
            .await?;
        out.item.map(decode).transpose()
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.batch_get_with(keys, true).await
    }

    async fn batch_get_eventually(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.batch_get_with(keys, false).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let cond = condition_expr(condition);
        let attrs = encode(&item)?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
            .set_expression_attribute_values(cond.and_then(|c| c.values));
        self.call("PutItem", || request.clone().send()).await.map(|_| ())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let cond = condition_expr(condition);
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
            .set_expression_attribute_values(cond.and_then(|c| c.values));
        self.call("DeleteItem", || request.clone().send()).await.map(|_| ())
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        let (expression, names, values) = increment_update(counters)?;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        self.call("UpdateItem", || request.clone().send()).await.map(|_| ())
    }

    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        let (add, mut names, mut values) = increment_update(&[(counter.to_owned(), by)])?;
        names.insert("#e".into(), "expires_at".into());
        values.insert(":e".into(), n(expires_at));
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(format!("{add} SET #e = if_not_exists(#e, :e)"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
        let output = self.call("UpdateItem", || request.clone().send()).await?;
        output
            .attributes()
            .and_then(|a| a.get(counter))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Backend(format!("UpdateItem returned no `{counter}`")))
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
        validate_query(q)?;
        let mut page = self.query_index(q).await?;
        // An index that holds only some fields answers with those: the items themselves are
        // read from the table (eventually consistent, as the index is), in the index's order.
        // One deleted meanwhile, or no longer matching the filter, is left out (the page may
        // be short; its cursor stands); each keeps the key it was listed under in this index,
        // so a caller's cursor and merge order follow the index.
        if !q.keys_only && q.index.projection() != Projection::All && !page.items.is_empty() {
            let keys: Vec<Key> = page.items.iter().map(|item| item.key.clone()).collect();
            let mut full: HashMap<Key, Item> =
                self.batch_get_with(&keys, false).await?.into_iter().map(|item| (item.key.clone(), item)).collect();
            let listed = std::mem::take(&mut page.items);
            for entry in listed {
                let Some(mut item) = full.remove(&entry.key) else { continue };
                if let Some((field, value)) = &q.filter
                    && item.data.get(field) != Some(value)
                {
                    continue;
                }
                if let Some(slot) = q.index.slot() {
                    item.indexes[slot] = entry.indexes[slot].clone();
                }
                page.items.push(item);
            }
        }
        Ok(page)
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let items = ops.into_iter().map(|op| self.transact_item(op)).collect::<Result<Vec<_>, _>>()?;
        // One token for every attempt of this transaction: if an attempt succeeded but its
        // answer was lost (a timeout), the retry succeeds as a no-op instead of failing its
        // own conditions against our earlier write.
        let token = ulid::Ulid::new().to_string();
        let request = self.client.transact_write_items().set_transact_items(Some(items)).client_request_token(token);
        let mut attempt = 0;
        loop {
            let (class, error) = match request.clone().send().await {
                Ok(_) => return Ok(()),
                Err(e) => match e.into_service_error() {
                    TransactWriteItemsError::TransactionCanceledException(cancel) => {
                        let codes: Vec<Option<&str>> = cancel.cancellation_reasons().iter().map(|r| r.code()).collect();
                        let (class, op) = cancellation(&codes);
                        let error = match class {
                            Class::Condition => StoreError::TransactionCanceled { failed_op: op },
                            Class::Invalid => StoreError::Refused(format!(
                                "dynamodb TransactWriteItems: operation {op:?} refused: {}",
                                op.and_then(|i| cancel.cancellation_reasons().get(i))
                                    .and_then(|r| r.message())
                                    .unwrap_or("validation error")
                            )),
                            Class::Throttled => StoreError::Busy("dynamodb TransactWriteItems: throttled".into()),
                            _ => StoreError::TransactionCanceled { failed_op: None },
                        };
                        (class, error)
                    }
                    other => {
                        let class = classify(other.code());
                        let text = format!("dynamodb TransactWriteItems: {}", DisplayErrorContext(&other));
                        match class {
                            Class::Conflict => (class, StoreError::TransactionCanceled { failed_op: None }),
                            Class::Throttled => (class, StoreError::Busy(text)),
                            Class::Invalid => (class, StoreError::Refused(text)),
                            _ => (class, StoreError::Backend(text)),
                        }
                    }
                },
            };
            attempt += 1;
            if !matches!(class, Class::Conflict | Class::Throttled) || attempt >= self.retry.attempts {
                return Err(error);
            }
            tokio::time::sleep(self.retry.pause(attempt)).await;
        }
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = dedupe_last_wins(items)
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(encode(item)?)).build().map_err(backend)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(requests).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        let requests = keys
            .iter()
            .filter(|k| seen.insert(*k))
            .map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key_attrs(key))).build().map_err(backend)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(requests).await
    }

    fn kind(&self) -> &'static str {
        "dynamodb"
    }
}

impl DynamoStore {
    /// One page of an index (or the table) as DynamoDB answers it: for an index that does not
    /// project everything, each item holds its keys and the projected fields.
    async fn query_index(&self, q: &Query) -> Result<Page, StoreError> {
        let (pk_attr, sk_attr) = q.index.key_attrs();
        let index_name = q.index.name().map(str::to_owned);
        let mut names = HashMap::from([("#p".to_owned(), pk_attr.to_owned())]);
        let mut values = HashMap::from([(":p".to_owned(), s(&q.partition))]);
        let mut key_condition = "#p = :p".to_owned();
        // One condition may name the sort key: a prefix with a bound becomes a range whose
        // ends (the bound itself, keys past the prefix) are dropped below.
        match (&q.sk_prefix, &q.sk_after) {
            (Some(prefix), None) => {
                key_condition.push_str(" AND begins_with(#s, :s)");
                values.insert(":s".into(), s(prefix));
            }
            (None, Some(bound)) => {
                key_condition.push_str(if q.descending { " AND #s < :b" } else { " AND #s > :b" });
                values.insert(":b".into(), s(bound));
            }
            (Some(prefix), Some(bound)) if q.descending => {
                key_condition.push_str(" AND #s BETWEEN :s AND :b");
                values.insert(":s".into(), s(prefix));
                values.insert(":b".into(), s(bound));
            }
            (Some(prefix), Some(bound)) => match prefix_upper_bound(prefix) {
                Some(upper) => {
                    key_condition.push_str(" AND #s BETWEEN :b AND :u");
                    values.insert(":b".into(), s(bound));
                    values.insert(":u".into(), s(&upper));
                }
                None => {
                    key_condition.push_str(" AND #s > :b");
                    values.insert(":b".into(), s(bound));
                }
            },
            (None, None) => {}
        }
        if q.sk_prefix.is_some() || q.sk_after.is_some() {
            names.insert("#s".into(), sk_attr.into());
        }
        let outside = |item: &Item| {
            let Some(sort) = item.index_key(q.index).map(|k| k.sk.as_str()) else { return true };
            q.sk_after.as_deref() == Some(sort) || q.sk_prefix.as_deref().is_some_and(|p| !sort.starts_with(p))
        };
        let mut filter = None;
        if let Some((field, value)) = &q.filter {
            names.insert("#f".into(), field.clone());
            values.insert(":f".into(), filter_attr(value)?);
            filter = Some("#f = :f".to_owned());
        }
        let mut start = match &q.cursor {
            Some(cursor) => {
                cursor.check(q.index, &q.partition)?;
                Some(cursor_attrs(cursor, q.index))
            }
            None => None,
        };
        // Keys only: the table's and the index's key attributes, and the expiry.
        let projection = q.keys_only.then(|| {
            let mut attrs = vec![("#kp", "pk"), ("#ks", "sk"), ("#ke", "expires_at")];
            if q.index != Index::Table {
                attrs.extend([("#kip", pk_attr), ("#kis", sk_attr)]);
            }
            let expression: Vec<&str> = attrs.iter().map(|(alias, _)| *alias).collect();
            names.extend(attrs.iter().map(|(alias, name)| ((*alias).to_owned(), (*name).to_owned())));
            expression.join(", ")
        });
        let limit = q.limit.max(1);
        let mut items = Vec::new();
        let mut exhausted = false;
        let mut read_budget = if filter.is_some() { (limit + 1) * FILTERED_READ_FACTOR } else { usize::MAX };
        // Ask for one more than the page so we know whether a next page exists.
        for _ in 0..MAX_QUERY_CALLS_PER_PAGE {
            if read_budget == 0 {
                break;
            }
            let want = (limit + 1 - items.len()).min(read_budget) as i32;
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index_name.clone())
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_projection_expression(projection.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!q.descending)
                .consistent_read(q.consistent && q.index == Index::Table)
                .limit(want)
                .set_exclusive_start_key(start.take());
            let out = self.call("Query", || request.clone().send()).await?;
            read_budget = read_budget.saturating_sub(out.scanned_count.max(1) as usize);
            for attrs in out.items.unwrap_or_default() {
                let item = decode(attrs)?;
                if !outside(&item) {
                    items.push(item);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                exhausted = true;
                break;
            }
            if items.len() > limit {
                break;
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| Cursor::after(last, q.index))
        } else if exhausted {
            None
        } else {
            // The filter skipped items and the call budget ran out: resume where we stopped.
            start.as_ref().and_then(|attrs| cursor_from(attrs, q.index))
        };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests;
