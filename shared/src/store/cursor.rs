//! Opaque pagination cursors: the keys of the last item a page covered.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::{Index, Item, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    /// The keys in the queried secondary index, if one was queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isk: Option<String>,
}

impl Cursor {
    /// The position just after `item` in a query over `index`.
    pub fn after(item: &Item, index: Index) -> Self {
        let secondary = if index == Index::Table { None } else { item.index_key(index) };
        Self {
            pk: item.key.pk.clone(),
            sk: item.key.sk.clone(),
            ipk: secondary.map(|k| k.pk.clone()),
            isk: secondary.map(|k| k.sk.clone()),
        }
    }

    /// The partition this cursor belongs to, for the given index.
    pub fn partition(&self, index: Index) -> Option<&str> {
        match index {
            Index::Table => Some(&self.pk),
            _ => self.ipk.as_deref(),
        }
    }

    /// Checks that a cursor was produced by a query over the same partition.
    pub fn check(&self, index: Index, partition: &str) -> Result<(), StoreError> {
        if self.partition(index) == Some(partition) && (index == Index::Table || self.isk.is_some()) {
            Ok(())
        } else {
            Err(StoreError::InvalidCursor)
        }
    }

    pub fn encode(&self) -> String {
        // Serialising a struct of strings cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor { pk: "W#1".into(), sk: "L#2".into(), ipk: None, isk: None };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(matches!(Cursor::decode("not a cursor!"), Err(StoreError::InvalidCursor)));
        assert!(c.check(Index::Table, "W#1").is_ok());
        assert!(c.check(Index::Table, "W#other").is_err());
        assert!(c.check(Index::Gsi1, "W#1").is_err());
    }
}
