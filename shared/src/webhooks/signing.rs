//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the base64 part of `whsec_...`.
//! [`verify`] is what a receiver does, timestamp tolerance included (docs/provider-research.md §3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::support::secrets::SIGNING_SECRET_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing secret is not `whsec_` followed by base64")]
pub struct BadSecret;

fn key(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let encoded = secret.strip_prefix(SIGNING_SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).map_err(|_| BadSecret)
}

/// One `v1,<signature>` for one secret.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)?).map_err(|_| BadSecret)?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The header value for several secrets (during a rotation), space-separated.
pub fn signature_header(secrets: &[&str], message_id: &str, timestamp: i64, body: &[u8]) -> Result<String, BadSecret> {
    let signatures = secrets.iter().map(|s| sign(s, message_id, timestamp, body)).collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// How far `webhook-timestamp` may be from the receiver's clock, either way. The spec
/// requires a tolerance; its reference libraries use five minutes.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is more than {TIMESTAMP_TOLERANCE_SECS} s old (a replay?)")]
    TooOld,
    #[error("webhook-timestamp is more than {TIMESTAMP_TOLERANCE_SECS} s in the future")]
    TooNew,
    #[error("no signature in webhook-signature matches")]
    NoMatch,
    #[error(transparent)]
    BadSecret(#[from] BadSecret),
}

/// Verifies a delivery as a receiver does: the timestamp within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now` (unix seconds), then any `v1,` entry of `header`
/// compared in constant time. An old timestamp fails even with a valid signature, which is
/// what stops a captured delivery from being replayed later.
pub fn verify(
    secret: &str,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
) -> Result<(), VerifyError> {
    if timestamp < now.saturating_sub(TIMESTAMP_TOLERANCE_SECS) {
        return Err(VerifyError::TooOld);
    }
    if timestamp > now.saturating_add(TIMESTAMP_TOLERANCE_SECS) {
        return Err(VerifyError::TooNew);
    }
    let expected = sign(secret, message_id, timestamp, body)?;
    let matches = header
        .split(' ')
        .any(|candidate| bool::from(subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), expected.as_bytes())));
    if matches { Ok(()) } else { Err(VerifyError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The reference example from the Standard Webhooks specification's test suite.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        assert_eq!(verify(secret, id, 1614265330, body, &format!("v1,bogus {sig}"), 1614265330), Ok(()));
        assert_eq!(verify(secret, id, 1614265331, body, &sig, 1614265331), Err(VerifyError::NoMatch));
        assert_eq!(sign("whsec_!!!", "m", 1, b"").unwrap_err(), BadSecret);
        assert_eq!(verify("whsec_!!!", id, 1, b"", "v1,x", 1), Err(VerifyError::BadSecret(BadSecret)));
    }

    #[test]
    fn verify_refuses_timestamps_more_than_five_minutes_away() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, at, body) = ("msg_1", 1_700_000_000, b"{}".as_slice());
        let header = sign(secret, id, at, body).unwrap();
        // Exactly at the edge still verifies; one second beyond does not, however valid the signature.
        assert_eq!(verify(secret, id, at, body, &header, at + 300), Ok(()));
        assert_eq!(verify(secret, id, at, body, &header, at - 300), Ok(()));
        assert_eq!(verify(secret, id, at, body, &header, at + 301), Err(VerifyError::TooOld));
        assert_eq!(verify(secret, id, at, body, &header, at - 301), Err(VerifyError::TooNew));
        assert_eq!(verify(secret, id, at, body, &header, i64::MAX), Err(VerifyError::TooOld));
        assert_eq!(verify(secret, id, at, body, &header, i64::MIN), Err(VerifyError::TooNew));
    }
}
