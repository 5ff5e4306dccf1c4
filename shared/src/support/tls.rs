//! TLS for every outbound connection (AWS SDK and webhook/provider calls): rustls with
//! ring. aws-lc was the largest crate in every Lambda bootstrap (1.3 MiB of code) and a
//! long C build; certificates are still checked against the platform's roots.

use std::sync::Once;

/// Makes ring the process's rustls provider. reqwest (built without a provider of its
/// own) needs it before any `Client` is built, so every path that builds one calls this
/// first; calling it again is free.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is already installed, which is what we want anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The AWS SDK's HTTPS client on the same provider (the SDK crates are built without a
/// default client of their own).
pub fn aws_http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    install();
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// aws-config's configuration loader (the CLI's default chain), with `aws_http_client`.
#[cfg(feature = "aws-profiles")]
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(aws_http_client())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_once_the_provider_is_installed() {
        super::install();
        super::install();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        assert!(reqwest::Client::builder().build().is_ok());
    }
}
