//! Which stored fields are secrets, sealed at rest by `store::sealed::SealedStore`: a
//! provider's API key, webhook and callback signing secrets (and the previous one during a
//! rotation), and the header values of webhook endpoints and API requests (they carry
//! tokens and `Authorization`). A new kind of secret is added here, with a test.

use crate::store::sealed::SecretField;

pub const SECRET_FIELDS: &[SecretField] = &[
    SecretField { sort_key_prefix: "INTEG#", path: &["api_key"] },
    SecretField { sort_key_prefix: "WH#", path: &["secret"] },
    SecretField { sort_key_prefix: "WH#", path: &["previous_secret"] },
    SecretField { sort_key_prefix: "WH#", path: &["headers", "*"] },
    SecretField { sort_key_prefix: "CBSECRET", path: &["secret"] },
    SecretField { sort_key_prefix: "CBSECRET", path: &["previous_secret"] },
    SecretField { sort_key_prefix: "APR#", path: &["headers", "*"] },
];

/// The sort-key prefixes of items that hold secrets (each under its workspace's `W#{ws}`).
pub fn prefixes() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = SECRET_FIELDS.iter().map(|f| f.sort_key_prefix).collect();
    out.dedup();
    out
}
