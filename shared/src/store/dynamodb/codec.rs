//! Items, keys, conditions, counters and cursors as DynamoDB attributes and expressions.

use super::*;

pub(super) fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

pub(super) fn encode(item: &Item) -> Result<Attrs, StoreError> {
    crate::store::check_storable(item)?;
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

pub(super) fn string_attr(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn number_attr(attrs: &Attrs, name: &str) -> Option<i64> {
    attrs.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

pub(super) fn decode(mut attrs: Attrs) -> Result<Item, StoreError> {
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
pub(super) struct ConditionExpr {
    pub(super) expression: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: Option<Attrs>,
}

pub(super) fn condition_expr(condition: Condition) -> Option<ConditionExpr> {
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

pub(super) fn increment_update(
    counters: &[(String, i64)],
) -> Result<(String, HashMap<String, String>, Attrs), StoreError> {
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
pub(super) fn cursor_from(attrs: &Attrs, index: Index) -> Option<Cursor> {
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
pub(super) fn cursor_attrs(cursor: &Cursor, index: Index) -> Attrs {
    let mut attrs = key_attrs(&Key::new(&cursor.pk, &cursor.sk));
    if let (Some(pk), Some(sk)) = (&cursor.ipk, &cursor.isk) {
        let (pk_attr, sk_attr) = index.key_attrs();
        attrs.insert(pk_attr.into(), s(pk));
        attrs.insert(sk_attr.into(), s(sk));
    }
    attrs
}

pub(super) fn filter_attr(value: &Value) -> Result<AttributeValue, StoreError> {
    match value {
        Value::String(text) => Ok(s(text)),
        Value::Number(num) => Ok(n(num)),
        Value::Bool(b) => Ok(AttributeValue::Bool(*b)),
        _ => Err(StoreError::InvalidRequest("filters compare strings, numbers or booleans".into())),
    }
}
