//! Reading the table and its secondary indexes: which index a query reads, what each index
//! holds (`Projection`), the query itself and its page.

use serde_json::Value;

use super::{Cursor, Item, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Index {
    #[default]
    Table,
    Gsi1,
    Gsi2,
    Gsi3,
    Gsi4,
}

impl Index {
    pub const SECONDARY: [Index; 4] = [Index::Gsi1, Index::Gsi2, Index::Gsi3, Index::Gsi4];

    pub(super) fn slot(self) -> Option<usize> {
        match self {
            Index::Table => None,
            Index::Gsi1 => Some(0),
            Index::Gsi2 => Some(1),
            Index::Gsi3 => Some(2),
            Index::Gsi4 => Some(3),
        }
    }

    /// What the DynamoDB index holds besides keys (the table's template and
    /// `aws::ensure_table` say the same; a test compares them). Listings project whole items;
    /// lookups project keys only (callers read the items by key).
    pub fn projection(self) -> Projection {
        match self {
            // Listings: keys and the one field they filter on. A full copy would make every
            // write of a listed item (a lead's feedback, a delivery's outcome) write its index
            // entries at full size too; the adapter reads the listed items from the table.
            Index::Gsi1 | Index::Gsi4 => Projection::Include(LISTING_FIELDS),
            Index::Table => Projection::All,
            Index::Gsi2 | Index::Gsi3 => Projection::KeysOnly,
        }
    }

    /// The DynamoDB index name (`None` for the table).
    pub fn name(self) -> Option<&'static str> {
        self.slot().map(|slot| ["gsi1", "gsi2", "gsi3", "gsi4"][slot])
    }

    /// The partition and sort key attribute names.
    pub fn key_attrs(self) -> (&'static str, &'static str) {
        match self.slot() {
            None => ("pk", "sk"),
            Some(slot) => {
                [("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk"), ("gsi3pk", "gsi3sk"), ("gsi4pk", "gsi4sk")][slot]
            }
        }
    }
}

/// The data fields the listing indexes (`gsi1`, `gsi4`) hold: what their queries filter on.
pub const LISTING_FIELDS: &[&str] = &["status"];

/// The attributes a secondary index holds besides the table's and its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    /// Keys and these data fields.
    Include(&'static [&'static str]),
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub index: Index,
    /// `pk` for the table, `gsiNpk` for an index.
    pub partition: String,
    /// Only sort keys starting with this.
    pub sk_prefix: Option<String>,
    /// Only sort keys strictly after this one in the query's direction (greater when
    /// ascending, smaller when descending): how a scatter-gather read resumes every shard
    /// from one position (`repo::keys::scatter_gather`).
    pub sk_after: Option<String>,
    /// Equality on a top-level data field (string, number or bool).
    pub filter: Option<(String, Value)>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Newest first when sort keys are time-ordered ids.
    pub descending: bool,
    /// A strongly consistent read (base table only; DynamoDB's indexes are always
    /// eventually consistent, the embedded store always consistent): for reads that must
    /// see a write just made, such as a limit check.
    pub consistent: bool,
    /// Keys only: each item's table and index keys (and `expires_at`), with empty `data`
    /// and `version` 0. For listings that only need keys (a keys-only DynamoDB index
    /// returns nothing else anyway), so SQLite does not read and decode every row's data.
    pub keys_only: bool,
}

impl Query {
    pub fn table(partition: impl Into<String>) -> Self {
        Self { partition: partition.into(), limit: 100, ..Self::default() }
    }

    pub fn gsi1(partition: impl Into<String>) -> Self {
        Self::index(Index::Gsi1, partition)
    }

    pub fn index(index: Index, partition: impl Into<String>) -> Self {
        Self { index, ..Self::table(partition) }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = Some(prefix.into());
        self
    }

    pub fn sort_after(mut self, sort_key: Option<String>) -> Self {
        self.sk_after = sort_key;
        self
    }

    pub fn filter_eq(mut self, field: impl Into<String>, value: Value) -> Self {
        self.filter = Some((field.into(), value));
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
}

/// One page of a query. A page may hold fewer than `limit` items (a filter skipped some)
/// while `next` is still set: callers follow `next` until it is `None`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// A filter must name a field its index holds, as DynamoDB would otherwise silently match
/// nothing; both adapters refuse it the same way.
pub(crate) fn validate_query(query: &Query) -> Result<(), StoreError> {
    let Some((field, _)) = &query.filter else { return Ok(()) };
    let held = match query.index.projection() {
        Projection::All => true,
        Projection::KeysOnly => false,
        Projection::Include(fields) => fields.contains(&field.as_str()),
    };
    if held {
        Ok(())
    } else {
        Err(StoreError::InvalidRequest(format!(
            "index {:?} does not hold `{field}`: a query can filter only on a field its index projects",
            query.index
        )))
    }
}
