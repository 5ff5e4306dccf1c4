use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::domain::integration::{Integration, Provider, ProviderKey};
use crate::repo::secrets::SECRET_FIELDS;
use crate::repo::{integrations, webhooks};
use crate::support::time::Timestamp;

const PROVIDER_KEY: &str = "hr-sealed-provider-key-7f3a9c";
const SIGNING: &str = "whsec_c2VhbGVkLXNpZ25pbmctc2VjcmV0LTEyMzQ=";
const HEADER_TOKEN: &str = "Bearer sealed-header-token-55e1";

/// One secret of every kind, stored through `store` in workspace `ws_seal`.
async fn store_secrets(store: &dyn Store) {
    let now = Timestamp::now();
    let integration = Integration {
        provider: Provider::Heyreach,
        api_key: serde_json::from_value::<ProviderKey>(json!(PROVIDER_KEY)).unwrap(),
        list_id: Some(7),
        campaign_id: None,
        created_at: now,
        updated_at: now,
    };
    integrations::put(store, "ws_seal", &integration).await.unwrap();
    let mut webhook = crate::testing::save_lead_webhook("Sealed", "https://example.com/hook", now);
    webhook.signing = crate::domain::webhook::SigningSecret::new(SIGNING.into());
    webhook.headers.insert("Authorization".into(), HEADER_TOKEN.into());
    webhooks::create(store, "ws_seal", &webhook).await.unwrap();
}

/// Everything the store reads back is plaintext again.
async fn assert_secrets_read_back(store: &dyn Store) {
    let integration = integrations::get(store, "ws_seal", Provider::Heyreach).await.unwrap().unwrap();
    assert_eq!(integration.api_key.expose(), PROVIDER_KEY);
    let listed = webhooks::all(store, "ws_seal").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].signing.secret, SIGNING);
    assert_eq!(listed[0].headers["Authorization"], HEADER_TOKEN);
}

fn assert_no_secret_in(raw: &[u8], place: &str) {
    for secret in [PROVIDER_KEY, SIGNING, HEADER_TOKEN, "sealed-header-token", "sealed-provider-key"] {
        let found = raw.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret:?} is readable in {place}");
    }
}

#[cfg(feature = "embedded")]
fn sqlite_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(crate::store::sqlite::DB_FILE)) {
            raw.extend(std::fs::read(&path).unwrap());
        }
    }
    raw
}

#[cfg(feature = "embedded")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_holds_no_secret_and_the_key_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::store::sqlite::EmbeddedDb::open(dir.path()).unwrap();
    let ring = FileKeyRing::open_or_create(dir.path()).unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::new(db));
    let store = SealedStore::new(sqlite.clone(), Arc::new(ring), SECRET_FIELDS);
    store_secrets(&store).await;
    assert_secrets_read_back(&store).await;
    // The database file and its WAL, as a backup or a stolen disk would hold them.
    assert_no_secret_in(&sqlite_bytes(dir.path()), "the SQLite files");
    let raw = sqlite.get(&integrations::key("ws_seal", Provider::Heyreach)).await.unwrap().unwrap();
    assert!(raw.data["api_key"].as_str().unwrap().starts_with(PREFIX), "{:?}", raw.data);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second process (a restart) reads with the same key file.
    let again = SealedStore::new(sqlite, Arc::new(FileKeyRing::open_or_create(dir.path()).unwrap()), SECRET_FIELDS);
    assert_secrets_read_back(&again).await;
}

#[cfg(feature = "embedded")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_secrets_of_an_earlier_build_are_sealed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::store::sqlite::EmbeddedDb::open(dir.path()).unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::new(db));
    // An earlier build stored them as given.
    let ws = crate::repo::workspaces::create_workspace(&*sqlite, "Old", Timestamp::now()).await.unwrap().id;
    let now = Timestamp::now();
    let integration = Integration {
        provider: Provider::Instantly,
        api_key: serde_json::from_value::<ProviderKey>(json!(PROVIDER_KEY)).unwrap(),
        list_id: None,
        campaign_id: Some("0195e2a4-6f1c-7b1e-9c55-3f2a8d1e4b7a".into()),
        created_at: now,
        updated_at: now,
    };
    integrations::put(&*sqlite, &ws, &integration).await.unwrap();
    webhooks::rotate_callback_secret(&*sqlite, &ws, std::time::Duration::from_secs(60), now).await.unwrap();
    let callback = webhooks::callback_secret(&*sqlite, &ws, now).await.unwrap();
    crate::store::sqlite::truncate_wal(dir.path()).unwrap();
    let plain = sqlite_bytes(dir.path());
    assert!(plain.windows(PROVIDER_KEY.len()).any(|w| w == PROVIDER_KEY.as_bytes()), "the starting point");

    let store =
        SealedStore::new(sqlite.clone(), Arc::new(FileKeyRing::open_or_create(dir.path()).unwrap()), SECRET_FIELDS);
    assert!(store.has_plaintext(&sqlite.get(&integrations::key(&ws, Provider::Instantly)).await.unwrap().unwrap()));
    assert_eq!(crate::repo::migrate::seal_secrets(&store).await.unwrap(), 2);
    assert_eq!(crate::repo::migrate::seal_secrets(&store).await.unwrap(), 0, "once");
    crate::store::sqlite::truncate_wal(dir.path()).unwrap();
    let raw = sqlite_bytes(dir.path());
    assert_no_secret_in(&raw, "the SQLite files after sealing");
    for secret in [callback.signing.secret.as_str(), callback.signing.previous_secret.as_deref().unwrap()] {
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "the callback secret is readable");
    }
    let read = integrations::get(&store, &ws, Provider::Instantly).await.unwrap().unwrap();
    assert_eq!(read.api_key.expose(), PROVIDER_KEY);
    assert_eq!(webhooks::callback_secret(&store, &ws, now).await.unwrap(), callback);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_table_holds_no_secret_sealed_by_a_kms_key() {
    let config = crate::testing::moto_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = crate::testing::unique("sealed");
    crate::aws::ensure_table(&client, &table).await.unwrap();
    let kms = aws_sdk_kms::Client::new(&config);
    let key_id = crate::aws::kms::create_key(&kms).await.unwrap();
    let dynamo: Arc<dyn Store> = Arc::new(crate::store::dynamodb::DynamoStore::new(client.clone(), table.clone()));
    let store =
        SealedStore::new(dynamo, Arc::new(crate::aws::kms::KmsKeyRing::new(kms.clone(), &key_id)), SECRET_FIELDS);
    store_secrets(&store).await;
    assert_secrets_read_back(&store).await;
    // The table as a scan (or a backup) returns it.
    let scan = client.scan().table_name(&table).send().await.unwrap();
    let raw = format!("{:?}", scan.items());
    assert!(raw.contains(PREFIX), "sealed values are there");
    assert_no_secret_in(raw.as_bytes(), "the DynamoDB table");
    // Another key cannot open them.
    let other = crate::aws::kms::create_key(&kms).await.unwrap();
    let dynamo: Arc<dyn Store> = Arc::new(crate::store::dynamodb::DynamoStore::new(client, table));
    let wrong = SealedStore::new(dynamo, Arc::new(crate::aws::kms::KmsKeyRing::new(kms, other)), SECRET_FIELDS);
    assert!(integrations::get(&wrong, "ws_seal", Provider::Heyreach).await.is_err());
}

#[test]
fn a_sealed_value_opens_only_for_its_own_item_and_field() {
    let key = DataKey([7; 32]);
    let sealed = seal_bytes(&key, b"W#ws\x1fINTEG#heyreach\x1fapi_key", b"secret").unwrap();
    assert_eq!(open_bytes(&key, b"W#ws\x1fINTEG#heyreach\x1fapi_key", &sealed).unwrap(), b"secret");
    assert!(open_bytes(&key, b"W#other\x1fINTEG#heyreach\x1fapi_key", &sealed).is_err(), "another item");
    assert!(open_bytes(&DataKey([8; 32]), b"W#ws\x1fINTEG#heyreach\x1fapi_key", &sealed).is_err(), "another key");
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(open_bytes(&key, b"W#ws\x1fINTEG#heyreach\x1fapi_key", &tampered).is_err(), "tampered");
    // Sealing twice never repeats a ciphertext (random nonces).
    assert_ne!(seal_bytes(&key, b"a", b"secret").unwrap(), seal_bytes(&key, b"a", b"secret").unwrap());
}

#[test]
fn envelopes_round_trip_and_refuse_garbage() {
    let envelope = Envelope { wrapped: vec![1, 2, 3], sealed: vec![9; 40] };
    let text = envelope.encode();
    assert!(text.starts_with(PREFIX));
    let back = Envelope::decode(&text).unwrap();
    assert_eq!((back.wrapped, back.sealed), (vec![1, 2, 3], vec![9; 40]));
    for garbage in ["enc:v1:", "enc:v1:!!!", "enc:v1:AAE", "plain"] {
        assert!(Envelope::decode(garbage).is_err(), "{garbage}");
    }
    let _ = json!(null);
}
