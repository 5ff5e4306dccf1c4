//! A fault-injecting [`Store`] wrapper: on chosen calls it fails the way DynamoDB fails in
//! production and moto never does (transaction conflicts, throttling, validation errors,
//! timeouts before or after the write took effect), and passes every other call through.
//!
//! Use it in unit and contract tests (`FaultyStore::new(inner).inject(rule)`) and in the
//! black-box harness through `LEADPUSH_FAULTS` (see [`FaultyStore::parse_rules`]), which
//! `AppContext::from_config` applies around whichever adapter is configured. Unit tests
//! always have it; other builds only with the cargo feature `faults`, which only the
//! black-box tests' build enables, so no Lambda carries it. Each fault
//! maps to the error the real adapter returns once its own retries are spent, so code
//! above the store sees exactly what it would see on AWS.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{Item, Key, Page, Query, Store, StoreError, WriteOp};
use crate::store::Condition;

/// A store call, as rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    BatchGet,
    Put,
    Delete,
    Increment,
    Query,
    TransactWrite,
    BatchPut,
    BatchDelete,
}

impl Op {
    const ALL: [(Op, &'static str); 9] = [
        (Op::Get, "get"),
        (Op::BatchGet, "batch_get"),
        (Op::Put, "put"),
        (Op::Delete, "delete"),
        (Op::Increment, "increment"),
        (Op::Query, "query"),
        (Op::TransactWrite, "transact_write"),
        (Op::BatchPut, "batch_put"),
        (Op::BatchDelete, "batch_delete"),
    ];

    fn parse(text: &str) -> Option<Op> {
        Op::ALL.iter().find(|(_, name)| *name == text).map(|(op, _)| *op)
    }

    fn is_write(self) -> bool {
        !matches!(self, Op::Get | Op::BatchGet | Op::Query)
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another transaction holds an item: `TransactionCanceled { failed_op: None }` for
    /// transactions, `Busy` for single-item calls.
    Conflict,
    /// Throughput exceeded after the SDK's and the adapter's retries: `Busy`.
    Throttle,
    /// DynamoDB's ValidationException (e.g. item over 400 KB): `Refused`.
    Invalid,
    /// The call timed out before reaching the table: nothing written, `Backend`.
    Timeout,
    /// The call took effect but its answer was lost: written, yet `Backend` comes back.
    TimeoutAfterWrite,
}

impl Fault {
    fn parse(text: &str) -> Option<Fault> {
        Some(match text {
            "conflict" => Fault::Conflict,
            "throttle" => Fault::Throttle,
            "invalid" => Fault::Invalid,
            "timeout" => Fault::Timeout,
            "timeout_after_write" => Fault::TimeoutAfterWrite,
            _ => return None,
        })
    }

    fn error(self, op: Op) -> StoreError {
        match self {
            Fault::Conflict if op == Op::TransactWrite => StoreError::TransactionCanceled { failed_op: None },
            Fault::Conflict => StoreError::Busy("injected: transaction conflict".into()),
            Fault::Throttle => StoreError::Busy("injected: throughput exceeded".into()),
            Fault::Invalid => StoreError::Refused("injected: validation error".into()),
            Fault::Timeout | Fault::TimeoutAfterWrite => StoreError::Backend("injected: timed out".into()),
        }
    }
}

/// Fails `times` matching calls after letting `skip` matching calls through.
#[derive(Debug, Clone)]
pub struct Rule {
    pub op: Option<Op>,
    /// Only calls touching a key (pk or sk; for queries, the partition) containing this.
    pub key_contains: Option<String>,
    pub fault: Fault,
    pub skip: usize,
    pub times: usize,
}

impl Rule {
    pub fn new(op: Op, fault: Fault) -> Self {
        Self { op: Some(op), key_contains: None, fault, skip: 0, times: 1 }
    }

    /// Any call.
    pub fn any(fault: Fault) -> Self {
        Self { op: None, ..Self::new(Op::Get, fault) }
    }

    pub fn on_keys_containing(mut self, text: impl Into<String>) -> Self {
        self.key_contains = Some(text.into());
        self
    }

    pub fn skip(mut self, calls: usize) -> Self {
        self.skip = calls;
        self
    }

    pub fn times(mut self, calls: usize) -> Self {
        self.times = calls;
        self
    }

    fn matches(&self, op: Op, keys: &[&str]) -> bool {
        self.op.is_none_or(|o| o == op)
            && self.key_contains.as_deref().is_none_or(|text| keys.iter().any(|k| k.contains(text)))
    }
}

struct RuleState {
    rule: Rule,
    seen: usize,
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    rules: Mutex<Vec<RuleState>>,
    injected: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("LEADPUSH_FAULTS: {0}")]
pub struct RuleSyntaxError(String);

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, rules: Mutex::new(Vec::new()), injected: AtomicUsize::new(0) }
    }

    pub fn inject(self, rule: Rule) -> Self {
        self.add(rule);
        self
    }

    /// Adds a rule to a store already in use.
    pub fn add(&self, rule: Rule) {
        self.lock().push(RuleState { rule, seen: 0 });
    }

    /// How many faults have been injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Rules from text: `;`-separated `OP[:KEYTEXT]=FAULT[*TIMES][+SKIP]`, where OP is a
    /// store call (`transact_write`, `put`, ... or `any`) and FAULT one of `conflict`,
    /// `throttle`, `invalid`, `timeout`, `timeout_after_write`. Example:
    /// `transact_write:LEAD#=conflict*3;put:PUSH#=timeout_after_write+1`.
    pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleSyntaxError> {
        let bad = |part: &str, why: &str| RuleSyntaxError(format!("`{part}`: {why}"));
        let mut rules = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (target, effect) = part.split_once('=').ok_or_else(|| bad(part, "expected OP=FAULT"))?;
            let (op, key) = match target.split_once(':') {
                Some((op, key)) => (op, Some(key.to_owned())),
                None => (target, None),
            };
            let op = match op {
                "any" => None,
                name => Some(Op::parse(name).ok_or_else(|| bad(part, "unknown store call"))?),
            };
            let (effect, skip) = match effect.split_once('+') {
                Some((effect, skip)) => (effect, skip.parse().map_err(|_| bad(part, "skip is not a number"))?),
                None => (effect, 0),
            };
            let (fault, times) = match effect.split_once('*') {
                Some((fault, times)) => (fault, times.parse().map_err(|_| bad(part, "times is not a number"))?),
                None => (effect, 1),
            };
            let fault = Fault::parse(fault).ok_or_else(|| bad(part, "unknown fault"))?;
            rules.push(Rule { op, key_contains: key, fault, skip, times });
        }
        Ok(rules)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RuleState>> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fault for this call, if a rule fires (each matching rule counts the call).
    fn fault_for(&self, op: Op, keys: &[&str]) -> Option<Fault> {
        let mut fired = None;
        for state in self.lock().iter_mut().filter(|s| s.rule.matches(op, keys)) {
            let n = state.seen;
            state.seen += 1;
            if fired.is_none() && n >= state.rule.skip && n < state.rule.skip + state.rule.times {
                fired = Some(state.rule.fault);
            }
        }
        if fired.is_some() {
            self.injected.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(?op, ?fired, "injected store fault");
        }
        fired
    }

    /// Runs `call` unless a fault fires first; `TimeoutAfterWrite` runs it and fails anyway
    /// (for reads it behaves like `Timeout`).
    async fn guarded<T>(
        &self,
        op: Op,
        keys: &[&str],
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.fault_for(op, keys) {
            None => call.await,
            Some(Fault::TimeoutAfterWrite) if op.is_write() => {
                call.await?;
                Err(Fault::TimeoutAfterWrite.error(op))
            }
            Some(fault) => Err(fault.error(op)),
        }
    }
}

fn key_texts(keys: &[&Key]) -> Vec<String> {
    keys.iter().flat_map(|k| [k.pk.clone(), k.sk.clone()]).collect()
}

fn strs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let texts = key_texts(&[key]);
        self.guarded(Op::Get, &strs(&texts), self.inner.get(key)).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let texts = key_texts(&keys.iter().collect::<Vec<_>>());
        self.guarded(Op::BatchGet, &strs(&texts), self.inner.batch_get(keys)).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let texts = key_texts(&[&item.key]);
        self.guarded(Op::Put, &strs(&texts), self.inner.put(item, condition)).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let texts = key_texts(&[key]);
        self.guarded(Op::Delete, &strs(&texts), self.inner.delete(key, condition)).await
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        let texts = key_texts(&[key]);
        self.guarded(Op::Increment, &strs(&texts), self.inner.increment(key, counters)).await
    }

    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        let texts = key_texts(&[key]);
        self.guarded(Op::Increment, &strs(&texts), self.inner.add_and_read(key, counter, by, expires_at)).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.guarded(Op::Query, &[query.partition.as_str()], self.inner.query(query)).await
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let texts = key_texts(&ops.iter().map(WriteOp::key).collect::<Vec<_>>());
        self.guarded(Op::TransactWrite, &strs(&texts), self.inner.transact_write(ops)).await
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let texts = key_texts(&items.iter().map(|i| &i.key).collect::<Vec<_>>());
        self.guarded(Op::BatchPut, &strs(&texts), self.inner.batch_put(items)).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let texts = key_texts(&keys.iter().collect::<Vec<_>>());
        self.guarded(Op::BatchDelete, &strs(&texts), self.inner.batch_delete(keys)).await
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.inner.purge_expired(now).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_from_text() {
        let rules =
            FaultyStore::parse_rules("transact_write:LEAD#=conflict*3; put:PUSH#=timeout_after_write+1;any=throttle")
                .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            (rules[0].op, rules[0].fault, rules[0].times, rules[0].skip),
            (Some(Op::TransactWrite), Fault::Conflict, 3, 0)
        );
        assert_eq!(rules[0].key_contains.as_deref(), Some("LEAD#"));
        assert_eq!((rules[1].fault, rules[1].times, rules[1].skip), (Fault::TimeoutAfterWrite, 1, 1));
        assert_eq!(rules[2].op, None);
        for bad in ["put", "nope=conflict", "put=melt", "put=conflict*x"] {
            assert!(FaultyStore::parse_rules(bad).is_err(), "{bad}");
        }
    }
}
