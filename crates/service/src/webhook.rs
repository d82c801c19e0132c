//! A provider's webhook: the one way the service reaches an operator's SMS or payment
//! provider. The URL is a secret (providers put their API key in its query or path): it is
//! never logged nor put into an error, not even the HTTP client's own, which names the URL.

use std::time::Duration;

use crate::config::Secret;

pub struct Webhook {
    client: reqwest::Client,
    url: Secret,
}

impl Webhook {
    /// `what` names the webhook in the one error this can give (its client not building).
    pub fn new(url: Secret, timeout: Duration, what: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("{what}'s HTTP client: {}", e.without_url()))?;
        Ok(Self { client, url })
    }

    /// A POST to the webhook, for the caller to add its body and headers to.
    pub fn request(&self) -> reqwest::RequestBuilder {
        self.client.post(self.url.expose())
    }

    /// Sends `request`; a failure is told without the URL.
    pub async fn post(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        request.send().await.map_err(|e| self.failure(e))
    }

    /// Why a request failed, without the URL or any part of it. reqwest's own text names the
    /// URL, so only the kind of failure and the causes beneath it are told, with anything
    /// of the URL in them blotted out.
    fn failure(&self, e: reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_builder() {
            "the URL is not usable"
        } else {
            "the request failed"
        };
        let e = e.without_url();
        let mut causes = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            causes.push_str(": ");
            causes.push_str(&cause.to_string());
            source = cause.source();
        }
        format!("webhook {kind}{}", scrub(&causes, self.url.expose()))
    }
}

/// `text` without `url` or any of its secret-bearing parts (user info, path, query).
fn scrub(text: &str, url: &str) -> String {
    let mut parts: Vec<String> = vec![url.to_string()];
    if let Ok(parsed) = reqwest::Url::parse(url) {
        parts.push(parsed.path().to_string());
        parts.extend(parsed.query().map(str::to_string));
        parts.extend(parsed.password().map(str::to_string));
        parts.push(parsed.username().to_string());
    }
    // Longest first, so a part inside another is not half-replaced.
    parts.retain(|p| p.len() > 1);
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let mut out = text.to_string();
    for part in parts {
        out = out.replace(&part, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_the_url_and_each_secret_part() {
        let url = "https://u:pw-secret@sms.example/send/key-abc?token=t-secret";
        let text = format!("error for url ({url}): path /send/key-abc, query token=t-secret");
        let out = scrub(&text, url);
        for secret in ["pw-secret", "key-abc", "t-secret"] {
            assert!(!out.contains(secret), "{out}");
        }
    }
}
