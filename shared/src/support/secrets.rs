//! Secrets: API keys, webhook tokens and signing secrets. Only hashes of keys and tokens
//! are stored; a secret is shown once at creation and masked ever after.

use base64::Engine;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::support::text::hex;

pub const API_KEY_PREFIX: &str = "lp_key_";
pub const WEBHOOK_TOKEN_PREFIX: &str = "lp_wht_";
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `prefix` + 40 random base62 characters (~238 bits).
pub fn generate(prefix: &str) -> String {
    let mut rng = rand::rng();
    let body: String = (0..40).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{body}")
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_signing_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{SIGNING_SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Hex SHA-256. Keys are high-entropy random strings, so a fast hash is the right tool.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// [`hash`] of a value's JSON text, streamed into the digest instead of built as a string
/// first (an ingest request's leads are up to a megabyte of it).
pub fn hash_json(value: &impl serde::Serialize) -> String {
    let mut digest = Sha256::new();
    // Writing into a digest cannot fail, nor can serialising a `serde_json::Value`.
    let _ = crate::support::text::stream_json(value, |bytes| digest.update(bytes));
    hex(&digest.finalize())
}

/// Whether two [`hash`]es are equal, in constant time (a presented secret's, a stored one).
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `lp_key_****abcd`: the prefix and the last four characters.
pub fn mask(secret: &str) -> String {
    let prefix_len = [API_KEY_PREFIX, WEBHOOK_TOKEN_PREFIX, SIGNING_SECRET_PREFIX]
        .iter()
        .find(|p| secret.starts_with(**p))
        .map_or(0, |p| p.len());
    let tail: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    if secret.chars().count() <= prefix_len + 8 {
        return format!("{}****", &secret[..prefix_len]);
    }
    format!("{}****{tail}", &secret[..prefix_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_json_hash_equals_the_hash_of_the_json_text() {
        // Stored idempotency records hold hashes made from the text: retries must still match.
        let value = serde_json::json!([{"name": "Zoë \"Z\"", "score": 1.5, "tags": ["a", null]}]);
        assert_eq!(hash_json(&value), hash(&serde_json::to_string(&value).unwrap()));
    }

    /// Stored credentials and idempotency records hold these hashes: the text must never change.
    #[test]
    fn a_hash_is_the_lowercase_hex_sha256_of_the_secret() {
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn generated_keys_are_unique_and_verify_against_their_hash() {
        let (a, b) = (generate(API_KEY_PREFIX), generate(API_KEY_PREFIX));
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == API_KEY_PREFIX.len() + 40);
        assert!(same_hash(&hash(&a), &hash(&a)));
        assert!(!same_hash(&hash(&b), &hash(&a)));
    }

    #[test]
    fn masks_show_only_prefix_and_last_four() {
        let key = "lp_key_abcdefghijklmnopqrstuvwxyz0123456789WXYZ";
        assert_eq!(mask(key), "lp_key_****WXYZ");
        assert_eq!(mask("short"), "****");
        assert!(generate_signing_secret().starts_with("whsec_"));
    }
}
