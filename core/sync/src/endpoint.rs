//! Which URLs a bearer token and health records may be sent to: `https`
//! anywhere, plain `http` only to this machine (the demo, tests, a key set
//! served beside the endpoint). A typing slip such as `http://sync.pcn.nhs.uk`
//! would otherwise send every token and record in clear across the network,
//! and nothing would fail to show it.

/// Why a URL was refused for carrying a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("{url}: not a URL ({reason})")]
    Malformed {
        /// What was given.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A scheme other than https, or plain http to another machine.
    #[error("{url}: must use https (plain http only to this machine)")]
    Insecure {
        /// What was given.
        url: String,
    },
}

/// `url` parsed, if a token may be sent there: `https`, or `http` to a
/// loopback address (`localhost`, `127.0.0.0/8`, `::1`).
pub fn secure_url(url: &str) -> Result<reqwest::Url, UrlError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| UrlError::Malformed {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(UrlError::Insecure {
            url: url.to_owned(),
        }),
    }
}

/// An HTTP client builder for requests to `url` (one [`secure_url`] took).
/// Plain http goes to this machine only, so it never goes through a proxy
/// named in the environment (`HTTP_PROXY`, `ALL_PROXY`): the request, token
/// and records included, would cross the network in clear to the proxy.
/// https keeps any such proxy, which only tunnels it (TLS end to end): a
/// practice's IT often allows the internet through one alone.
pub fn client_for(url: &reqwest::Url) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if url.scheme() == "https" {
        builder
    } else {
        builder.no_proxy()
    }
}

/// Why an answer's body could not be read (see [`body_within`]).
#[derive(Debug)]
pub enum BodyError {
    /// It ran past the limit: not an answer of the sync API (a captive
    /// portal's page, a proxy's stream), and not worth the phone's memory.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while it was read.
    Transport(reqwest::Error),
}

/// The body of `response`, read a chunk at a time and refused once past
/// `limit` bytes (or at once, when its length says it will be): an answer
/// with no end, or hundreds of megabytes from something that is not the
/// endpoint, is not read into memory whole.
pub async fn body_within(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let too_large = BodyError::TooLarge { limit };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `e` followed by each error beneath it. An HTTP client's own message says
/// only that a request to some URL failed; why (refused, timed out, a
/// certificate, a redirect refused) is in its sources, and is what an IT team
/// or a support line needs to read.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_plain_http_only_to_this_machine() {
        for ok in [
            "https://sync.example-pcn.nhs.uk",
            "https://10.0.0.7:8443/base",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert!(secure_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://sync.example-pcn.nhs.uk",
            "http://10.0.0.7:8080",
            "http://localhost.example.org",
            "http://[::2]",
            "ftp://127.0.0.1",
            "file:///tmp/keys.json",
        ] {
            assert_eq!(
                secure_url(insecure),
                Err(UrlError::Insecure {
                    url: insecure.into()
                }),
                "{insecure}"
            );
        }
        for malformed in ["", "sync.example-pcn.nhs.uk", "https://"] {
            assert!(
                matches!(secure_url(malformed), Err(UrlError::Malformed { .. })),
                "{malformed}"
            );
        }
    }
}
