//! The key ring of stored secrets on AWS: data keys made and unwrapped by a KMS key (the
//! stack's `SecretsKey`), named by `LEADPUSH_KMS_KEY_ID`. Only the functions that use a
//! secret have the variable and `kms:GenerateDataKey`/`kms:Decrypt` on the key.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::store::sealed::{DataKey, KeyRing, SealError};

/// Bound to every data key: KMS refuses to unwrap it for a caller that does not name it.
const CONTEXT: (&str, &str) = ("app", "leadpush");

pub struct KmsKeyRing {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsKeyRing {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into() }
    }
}

fn service(e: impl std::fmt::Display) -> SealError {
    SealError::KeyService(e.to_string())
}

fn plaintext_key(bytes: Option<&Blob>) -> Result<DataKey, SealError> {
    let bytes = bytes.ok_or_else(|| service("KMS returned no plaintext key"))?;
    let key: [u8; 32] = bytes.as_ref().try_into().map_err(|_| service("KMS returned a key that is not 256 bits"))?;
    Ok(DataKey(key))
}

#[async_trait]
impl KeyRing for KmsKeyRing {
    async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), SealError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(|e| service(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let wrapped = out.ciphertext_blob().ok_or_else(|| service("KMS returned no wrapped key"))?.as_ref().to_vec();
        Ok((plaintext_key(out.plaintext())?, wrapped))
    }

    async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, SealError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context(CONTEXT.0, CONTEXT.1)
            .send()
            .await
            .map_err(|e| service(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        plaintext_key(out.plaintext())
    }

    fn kind(&self) -> &'static str {
        "kms"
    }
}

/// Creates a symmetric key for stored secrets (`leadpush init-aws` against moto; on AWS the
/// template creates `SecretsKey`), returning its id.
pub async fn create_key(client: &aws_sdk_kms::Client) -> Result<String, super::ProvisionError> {
    let out = client.create_key().description("Leadpush: envelope encryption of stored secrets").send().await.map_err(
        |e| super::ProvisionError(format!("creating the KMS key: {}", aws_sdk_kms::error::DisplayErrorContext(e))),
    )?;
    out.key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| super::ProvisionError("KMS returned no key id".into()))
}
