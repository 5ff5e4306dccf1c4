//! The DynamoDB adapter. Data fields are stored as top-level attributes beside the reserved
//! key attributes, so items read naturally in the console and counters can use `ADD`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    Update, WriteRequest,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value};

use super::{
    Condition, Cursor, Index, Item, Key, MAX_BATCH_GET_KEYS, MAX_BATCH_WRITE_ITEMS, Page, Query, RESERVED_ATTRIBUTES,
    Store, StoreError, WriteOp, dedupe_last_wins, prefix_upper_bound, validate_transaction,
};

/// Parallel BatchWriteItem / BatchGetItem calls per request.
const BATCH_CONCURRENCY: usize = 8;
/// Attempts for unprocessed batch items before giving up (backoff doubles from 25 ms).
const BATCH_ATTEMPTS: u32 = 8;
/// Query calls one page may make while a filter skips items.
const MAX_QUERY_CALLS_PER_PAGE: usize = 10;

type Attrs = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn backend<E: std::error::Error>(e: E) -> StoreError {
    StoreError::Backend(format!("dynamodb: {}", DisplayErrorContext(e)))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

fn encode(item: &Item) -> Result<Attrs, StoreError> {
    let mut attrs = key_attrs(&item.key);
    for index in Index::SECONDARY {
        if let Some(key) = item.index_key(index) {
            let (pk, sk) = index.key_attrs();
            attrs.insert(pk.into(), s(&key.pk));
            attrs.insert(sk.into(), s(&key.sk));
        }
    }
    if let Some(at) = item.expires_at {
        attrs.insert("expires_at".into(), n(at));
    }
    attrs.insert("version".into(), n(item.version));
    for (name, value) in &item.data {
        if RESERVED_ATTRIBUTES.contains(&name.as_str()) {
            return Err(StoreError::InvalidItem(format!("data field `{name}` is reserved")));
        }
        let value: AttributeValue =
            serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::InvalidItem(e.to_string()))?;
        attrs.insert(name.clone(), value);
    }
    Ok(attrs)
}

fn string_attr(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number_attr(attrs: &Attrs, name: &str) -> Option<i64> {
    attrs.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn decode(mut attrs: Attrs) -> Result<Item, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("item without {what}"));
    let pk = string_attr(&attrs, "pk").ok_or_else(|| corrupt("pk"))?;
    let sk = string_attr(&attrs, "sk").ok_or_else(|| corrupt("sk"))?;
    let indexes = Index::SECONDARY.map(|index| {
        let (pk, sk) = index.key_attrs();
        string_attr(&attrs, pk).zip(string_attr(&attrs, sk)).map(|(pk, sk)| Key { pk, sk })
    });
    let expires_at = number_attr(&attrs, "expires_at");
    let version = number_attr(&attrs, "version").unwrap_or(0).max(0) as u64;
    for name in RESERVED_ATTRIBUTES {
        attrs.remove(name);
    }
    let mut data = Map::new();
    for (name, value) in attrs {
        let value: Value =
            serde_dynamo::from_attribute_value(value).map_err(|e| StoreError::Corrupt(format!("{pk}/{sk}: {e}")))?;
        data.insert(name, value);
    }
    Ok(Item { key: Key { pk, sk }, indexes, expires_at, version, data })
}

/// A condition as a DynamoDB expression, or `None` for [`Condition::Always`].
struct ConditionExpr {
    expression: String,
    names: HashMap<String, String>,
    values: Option<Attrs>,
}

fn condition_expr(condition: Condition) -> Option<ConditionExpr> {
    let names = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Some(match condition {
        Condition::Always => return None,
        Condition::NotExists => ConditionExpr {
            expression: "attribute_not_exists(#pk)".into(),
            names: names(&[("#pk", "pk")]),
            values: None,
        },
        Condition::Exists => {
            ConditionExpr { expression: "attribute_exists(#pk)".into(), names: names(&[("#pk", "pk")]), values: None }
        }
        Condition::NotExistsOrExpired { now } => ConditionExpr {
            expression: "attribute_not_exists(#pk) OR #exp <= :now".into(),
            names: names(&[("#pk", "pk"), ("#exp", "expires_at")]),
            values: Some(HashMap::from([(":now".to_owned(), n(now))])),
        },
        Condition::VersionIs(version) => ConditionExpr {
            expression: "#ver = :ver".into(),
            names: names(&[("#ver", "version")]),
            values: Some(HashMap::from([(":ver".to_owned(), n(version))])),
        },
    })
}

fn increment_update(counters: &[(String, i64)]) -> Result<(String, HashMap<String, String>, Attrs), StoreError> {
    if counters.is_empty() {
        return Err(StoreError::InvalidRequest("increment needs at least one counter".into()));
    }
    let mut clauses = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    for (i, (name, delta)) in counters.iter().enumerate() {
        if RESERVED_ATTRIBUTES.contains(&name.as_str()) {
            return Err(StoreError::InvalidItem(format!("counter `{name}` is reserved")));
        }
        clauses.push(format!("#c{i} :c{i}"));
        names.insert(format!("#c{i}"), name.clone());
        values.insert(format!(":c{i}"), n(delta));
    }
    Ok((format!("ADD {}", clauses.join(", ")), names, values))
}

/// A cursor from DynamoDB's LastEvaluatedKey of a query over `index`.
fn cursor_from(attrs: &Attrs, index: Index) -> Option<Cursor> {
    let (ipk, isk) = index.key_attrs();
    let secondary = index != Index::Table;
    Some(Cursor {
        pk: string_attr(attrs, "pk")?,
        sk: string_attr(attrs, "sk")?,
        ipk: string_attr(attrs, ipk).filter(|_| secondary),
        isk: string_attr(attrs, isk).filter(|_| secondary),
    })
}

/// DynamoDB's ExclusiveStartKey for a cursor over `index`: table keys plus index keys.
fn cursor_attrs(cursor: &Cursor, index: Index) -> Attrs {
    let mut attrs = key_attrs(&Key::new(&cursor.pk, &cursor.sk));
    if let (Some(pk), Some(sk)) = (&cursor.ipk, &cursor.isk) {
        let (pk_attr, sk_attr) = index.key_attrs();
        attrs.insert(pk_attr.into(), s(pk));
        attrs.insert(sk_attr.into(), s(sk));
    }
    attrs
}

fn filter_attr(value: &Value) -> Result<AttributeValue, StoreError> {
    match value {
        Value::String(text) => Ok(s(text)),
        Value::Number(num) => Ok(n(num)),
        Value::Bool(b) => Ok(AttributeValue::Bool(*b)),
        _ => Err(StoreError::InvalidRequest("filters compare strings, numbers or booleans".into())),
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(25u64 << attempt.min(6))).await;
}

impl DynamoStore {
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

    async fn write_chunk(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..BATCH_ATTEMPTS {
            let out =
                self.client.batch_write_item().request_items(&self.table, requests).send().await.map_err(backend)?;
            requests = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(StoreError::Backend(format!("dynamodb: {} items still unprocessed after retries", requests.len())))
    }

    async fn get_chunk(&self, mut keys: Vec<Attrs>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for attempt in 0..BATCH_ATTEMPTS {
            let request =
                KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(backend)?;
            let out = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(backend)?;
            for attrs in out.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default() {
                items.push(decode(attrs)?);
            }
            keys = out.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            if keys.is_empty() {
                return Ok(items);
            }
            backoff(attempt).await;
        }
        Err(StoreError::Backend(format!("dynamodb: {} keys still unprocessed after retries", keys.len())))
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
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item.map(decode).transpose()
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<Attrs> = keys.iter().filter(|k| seen.insert(*k)).map(key_attrs).collect();
        let chunks: Vec<Vec<Attrs>> = unique.chunks(MAX_BATCH_GET_KEYS).map(<[Attrs]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.get_chunk(chunk))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let cond = condition_expr(condition);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&item)?))
            .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
            .set_expression_attribute_values(cond.and_then(|c| c.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Err(StoreError::ConditionFailed),
                other => Err(backend(other)),
            },
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let cond = condition_expr(condition);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(cond.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_names(cond.as_ref().map(|c| c.names.clone()))
            .set_expression_attribute_values(cond.and_then(|c| c.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                DeleteItemError::ConditionalCheckFailedException(_) => Err(StoreError::ConditionFailed),
                other => Err(backend(other)),
            },
        }
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        let (expression, names, values) = increment_update(counters)?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn query(&self, q: &Query) -> Result<Page, StoreError> {
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
        let limit = q.limit.max(1);
        let mut items = Vec::new();
        let mut exhausted = false;
        // Ask for one more than the page so we know whether a next page exists.
        for _ in 0..MAX_QUERY_CALLS_PER_PAGE {
            let want = (limit + 1 - items.len()) as i32;
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index_name.clone())
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!q.descending)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
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

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let items = ops.into_iter().map(|op| self.transact_item(op)).collect::<Result<Vec<_>, _>>()?;
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => {
                    let failed_op =
                        cancel.cancellation_reasons().iter().position(|r| r.code() == Some("ConditionalCheckFailed"));
                    Err(StoreError::TransactionCanceled { failed_op })
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Err(StoreError::TransactionCanceled { failed_op: None })
                }
                other if other.code() == Some("TransactionConflict") => {
                    Err(StoreError::TransactionCanceled { failed_op: None })
                }
                other => Err(backend(other)),
            },
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
