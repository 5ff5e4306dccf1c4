//! Secrets sealed at rest. [`SealedStore`] wraps a store and envelope-encrypts the fields
//! its [`SecretField`] rules name (provider keys, signing secrets, header values) on every
//! write, and opens them on every read, so code above the store only ever sees plaintext
//! while the table, its backups and the SQLite file only ever hold ciphertext.
//!
//! Envelope encryption: values are sealed with AES-256-GCM under a data key; the data key
//! is itself wrapped by a [`KeyRing`] (AWS KMS on Lambda, a key file beside the embedded
//! store) and stored with each value, so one KMS call per process creates the key it
//! writes with, and one per distinct wrapped key opens what it reads. Each value's
//! additional data is its item's key and field path: a sealed value copied into another
//! item or field does not open.
//!
//! A sealed value is the text `enc:v1:` + base64url(wrapped key length (u16, big-endian),
//! wrapped key, 12-byte nonce, ciphertext and tag). Plaintext written by an earlier build
//! still reads as is; `repo::migrate` seals it in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

use super::{Condition, Item, Key, Page, Query, Store, StoreError, WriteOp};

/// The start of every sealed value.
pub const PREFIX: &str = "enc:v1:";
/// Unwrapped data keys kept per process (a process writes with one; old ones are read).
const OPENED_KEYS: usize = 256;

/// A 256-bit data key in the clear (never stored, never logged).
#[derive(Clone)]
pub struct DataKey(pub [u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the key service failed: {0}")]
    KeyService(String),
    #[error("a sealed value does not open (damaged, or sealed for another item or key): {0}")]
    Corrupt(String),
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::KeyService(m) => StoreError::Backend(format!("key service: {m}")),
            SealError::Corrupt(m) => StoreError::Corrupt(m),
        }
    }
}

/// Wraps and unwraps data keys: the only place the master key is used.
#[async_trait]
pub trait KeyRing: Send + Sync {
    /// A fresh data key and its wrapped form.
    async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), SealError>;
    /// The data key a wrapped form holds.
    async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, SealError>;
    fn kind(&self) -> &'static str;
}

/// A field holding a secret: in items whose sort key starts with `sort_key_prefix`, the
/// string at `path` (`"*"` stands for every member of an object).
#[derive(Debug, Clone, Copy)]
pub struct SecretField {
    pub sort_key_prefix: &'static str,
    pub path: &'static [&'static str],
}

/// AES-256-GCM with a random nonce under `key`, bound to `aad`.
pub fn seal_bytes(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::KeyService("no randomness".into()))?;
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.0).map_err(|_| bad("key"))?);
    let mut data = plaintext.to_vec();
    cipher
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut data)
        .map_err(|_| bad("seal"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

/// Opens what [`seal_bytes`] made with the same key and `aad`.
pub fn open_bytes(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(bad("too short"));
    }
    let (nonce, data) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("nonce"))?;
    let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key.0).map_err(|_| bad("key"))?);
    let mut data = data.to_vec();
    let plain = cipher.open_in_place(nonce, Aad::from(aad), &mut data).map_err(|_| bad("authentication failed"))?;
    Ok(plain.to_vec())
}

fn bad(what: &str) -> SealError {
    SealError::Corrupt(what.to_owned())
}

/// A sealed value's parts.
struct Envelope {
    wrapped: Vec<u8>,
    sealed: Vec<u8>,
}

impl Envelope {
    fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(2 + self.wrapped.len() + self.sealed.len());
        bytes.extend_from_slice(&(self.wrapped.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&self.wrapped);
        bytes.extend_from_slice(&self.sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    fn decode(text: &str) -> Result<Self, SealError> {
        let body = text.strip_prefix(PREFIX).ok_or_else(|| bad("not sealed"))?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad("not base64"))?;
        let (len, rest) = bytes.split_at_checked(2).ok_or_else(|| bad("too short"))?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (wrapped, sealed) = rest.split_at_checked(len).ok_or_else(|| bad("too short"))?;
        Ok(Self { wrapped: wrapped.to_vec(), sealed: sealed.to_vec() })
    }
}

/// Every string a rule names in `data`, with its field path (`headers.authorization`).
fn visit(value: &mut Value, path: &[&str], trail: &mut Vec<String>, found: &mut dyn FnMut(&str, &mut String)) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::String(text) = value {
            found(&trail.join("."), text);
        }
        return;
    };
    let Value::Object(map) = value else { return };
    let mut step = |name: &str, child: &mut Value, trail: &mut Vec<String>| {
        trail.push(name.to_owned());
        visit(child, rest, trail, found);
        trail.pop();
    };
    if *first == "*" {
        for (name, child) in map.iter_mut() {
            step(name, child, trail);
        }
    } else if let Some(child) = map.get_mut(*first) {
        step(first, child, trail);
    }
}

/// A store whose secret fields are sealed at rest (see the module documentation).
pub struct SealedStore {
    inner: Arc<dyn Store>,
    ring: Arc<dyn KeyRing>,
    fields: &'static [SecretField],
    /// The data key this process seals with, created on first use.
    current: tokio::sync::OnceCell<(DataKey, Vec<u8>)>,
    opened: Mutex<HashMap<Vec<u8>, DataKey>>,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn Store>, ring: Arc<dyn KeyRing>, fields: &'static [SecretField]) -> Self {
        Self { inner, ring, fields, current: tokio::sync::OnceCell::new(), opened: Mutex::default() }
    }

    /// The store underneath, as it holds items (sealed values unopened).
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn rules<'a>(&'a self, key: &'a Key) -> impl Iterator<Item = &'a SecretField> + 'a {
        self.fields.iter().filter(move |f| key.sk.starts_with(f.sort_key_prefix))
    }

    fn aad(key: &Key, field: &str) -> Vec<u8> {
        format!("{}\u{1f}{}\u{1f}{field}", key.pk, key.sk).into_bytes()
    }

    /// Whether `item` holds a secret field in plaintext (an item an earlier build wrote).
    pub fn has_plaintext(&self, item: &Item) -> bool {
        let mut data = Value::Object(item.data.clone());
        let mut plain = false;
        for rule in self.rules(&item.key) {
            visit(&mut data, rule.path, &mut Vec::new(), &mut |_, text| plain |= !text.starts_with(PREFIX));
        }
        plain
    }

    async fn seal(&self, item: &mut Item) -> Result<(), StoreError> {
        if self.rules(&item.key).next().is_none() {
            return Ok(());
        }
        let (key, wrapped) = self.current.get_or_try_init(|| self.ring.new_data_key()).await?;
        let mut data = Value::Object(std::mem::take(&mut item.data));
        let mut failed = None;
        for rule in self.fields.iter().filter(|f| item.key.sk.starts_with(f.sort_key_prefix)) {
            visit(&mut data, rule.path, &mut Vec::new(), &mut |field, text| {
                if text.starts_with(PREFIX) {
                    return; // sealed already (read by a process without the key, written back)
                }
                match seal_bytes(key, &Self::aad(&item.key, field), text.as_bytes()) {
                    Ok(sealed) => *text = Envelope { wrapped: wrapped.clone(), sealed }.encode(),
                    Err(e) => failed = Some(e),
                }
            });
        }
        if let Value::Object(map) = data {
            item.data = map;
        }
        failed.map_or(Ok(()), |e| Err(e.into()))
    }

    async fn data_key(&self, wrapped: &[u8]) -> Result<DataKey, SealError> {
        if let Some(key) = self.opened.lock().map_err(|_| bad("lock"))?.get(wrapped) {
            return Ok(key.clone());
        }
        let key = self.ring.unwrap_key(wrapped).await?;
        let mut opened = self.opened.lock().map_err(|_| bad("lock"))?;
        if opened.len() >= OPENED_KEYS {
            opened.clear();
        }
        opened.insert(wrapped.to_vec(), key.clone());
        Ok(key)
    }

    async fn open(&self, item: &mut Item) -> Result<(), StoreError> {
        if self.rules(&item.key).next().is_none() {
            return Ok(());
        }
        let mut data = Value::Object(std::mem::take(&mut item.data));
        // First the envelopes, then their keys (a call to the key ring at most once each).
        let mut envelopes = Vec::new();
        for rule in self.fields.iter().filter(|f| item.key.sk.starts_with(f.sort_key_prefix)) {
            visit(&mut data, rule.path, &mut Vec::new(), &mut |field, text| {
                if text.starts_with(PREFIX) {
                    envelopes.push((field.to_owned(), Envelope::decode(text)));
                }
            });
        }
        let mut plain = HashMap::new();
        for (field, envelope) in envelopes {
            let envelope = envelope?;
            let key = self.data_key(&envelope.wrapped).await?;
            let bytes = open_bytes(&key, &Self::aad(&item.key, &field), &envelope.sealed)?;
            plain.insert(field, String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?);
        }
        for rule in self.fields.iter().filter(|f| item.key.sk.starts_with(f.sort_key_prefix)) {
            visit(&mut data, rule.path, &mut Vec::new(), &mut |field, text| {
                if let Some(value) = plain.remove(field) {
                    *text = value;
                }
            });
        }
        if let Value::Object(map) = data {
            item.data = map;
        }
        Ok(())
    }

    async fn open_all(&self, items: &mut [Item]) -> Result<(), StoreError> {
        for item in items {
            self.open(item).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SealedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let mut found = self.inner.get(key).await?;
        if let Some(item) = &mut found {
            self.open(item).await?;
        }
        Ok(found)
    }

    async fn get_eventually(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let mut found = self.inner.get_eventually(key).await?;
        if let Some(item) = &mut found {
            self.open(item).await?;
        }
        Ok(found)
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut items = self.inner.batch_get(keys).await?;
        self.open_all(&mut items).await?;
        Ok(items)
    }

    async fn batch_get_eventually(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut items = self.inner.batch_get_eventually(keys).await?;
        self.open_all(&mut items).await?;
        Ok(items)
    }

    async fn put(&self, mut item: Item, condition: Condition) -> Result<(), StoreError> {
        self.seal(&mut item).await?;
        self.inner.put(item, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        self.inner.increment(key, counters).await
    }

    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        self.inner.add_and_read(key, counter, by, expires_at).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let mut page = self.inner.query(query).await?;
        self.open_all(&mut page.items).await?;
        Ok(page)
    }

    async fn transact_write(&self, mut ops: Vec<WriteOp>) -> Result<(), StoreError> {
        for op in &mut ops {
            if let WriteOp::Put { item, .. } = op {
                self.seal(item).await?;
            }
        }
        self.inner.transact_write(ops).await
    }

    async fn batch_put(&self, mut items: Vec<Item>) -> Result<(), StoreError> {
        for item in &mut items {
            self.seal(item).await?;
        }
        self.inner.batch_put(items).await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        self.inner.batch_delete(keys).await
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.inner.purge_expired(now).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// A key ring whose master key is 32 random bytes in a file (the embedded store's:
/// `secrets.key` in the data directory, created on first start with mode 0600). Data keys
/// are wrapped with AES-256-GCM under it.
pub struct FileKeyRing {
    master: DataKey,
}

/// The master key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";
const WRAP_AAD: &[u8] = b"leadpush data key";

impl FileKeyRing {
    /// Reads the key file in `dir`, creating it (owner read/write only) if absent.
    pub fn open_or_create(dir: &std::path::Path) -> std::io::Result<Self> {
        use std::io::{Read, Write};
        let path = dir.join(KEY_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                let mut key = [0u8; 32];
                SystemRandom::new().fill(&mut key).map_err(|_| std::io::Error::other("no randomness"))?;
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(Self { master: DataKey(key) })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut key = [0u8; 32];
                let mut file = std::fs::File::open(&path)?;
                file.read_exact(&mut key).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a 32-byte key", path.display()),
                    )
                })?;
                Ok(Self { master: DataKey(key) })
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl KeyRing for FileKeyRing {
    async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), SealError> {
        let mut key = [0u8; 32];
        SystemRandom::new().fill(&mut key).map_err(|_| SealError::KeyService("no randomness".into()))?;
        let key = DataKey(key);
        let wrapped = seal_bytes(&self.master, WRAP_AAD, &key.0)?;
        Ok((key, wrapped))
    }

    async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, SealError> {
        let bytes = open_bytes(&self.master, WRAP_AAD, wrapped)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| bad("wrapped key length"))?;
        Ok(DataKey(key))
    }

    fn kind(&self) -> &'static str {
        "key file"
    }
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
