//! Every outcome of the contract, mapped to one error variant that says whether and how to
//! retry. Messages name the method, code and sub-code, never a secret.

use thiserror::Error;

/// What a caller does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A bug, bad input, or a wrong secret: retrying cannot help.
    Never,
    /// Transient: retry after the failure interval.
    AfterFailure,
    /// Rate-limited: retry after the throttled interval.
    AfterThrottle,
    /// Refresh the OAuth token once, then retry.
    RefreshToken,
    /// This account is done for the day; use another or wait for 00:00 Asia/Shanghai.
    NextQuotaDay,
}

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("invalid parameter ({sub_code}, code 1001): {msg}")]
    InvalidParam { sub_code: String, msg: String },
    #[error("platform busy (code 5002)")]
    Busy,
    /// Seed code 7 (HTTP 429) or param2 `gw.QosAppFrequencyLimit`.
    #[error("throttled (code 7 / gw.QosAppFrequencyLimit)")]
    Throttled,
    #[error("daily call quota of account {account} exhausted; usable again at {until_ms} ms (00:00 Asia/Shanghai)")]
    QuotaExhausted { account: String, until_ms: i64 },
    #[error("signature rejected (code 10002 / gw.SignatureInvalid): check the account's app key, secret and sign method")]
    BadSignature,
    /// Seed code 27, or HTTP 401 on param2 (`sub_code` then holds what the body said).
    #[error("access token rejected (code 27 / HTTP 401, {sub_code})")]
    Token { sub_code: String },
    #[error("no permission for this method (code 11, {sub_code})")]
    Permission { sub_code: String },
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("gateway answered with an HTML page (HTTP {status})")]
    Html { status: u16 },
    #[error("response body is not complete JSON (HTTP {status}, {len} bytes): {detail}")]
    Truncated { status: u16, len: usize, detail: String },
    #[error("response JSON has an unexpected shape: {0}")]
    Malformed(String),
    #[error("unexpected platform error code {code} (HTTP {status}): {msg}")]
    Other { status: u16, code: i64, msg: String },
    /// param2 `gw.APIACLDecline`: the app key has not been granted this API. Nothing but a
    /// change on open.1688.com (the app's API permissions or solution) fixes it.
    #[error("the app key is not allowed to call {api} (gw.APIACLDecline): grant the app this API on open.1688.com; retrying cannot help")]
    ApiNotGranted { api: String },
    /// A param2 gateway error without a retry rule of its own (`gw.APIUnsupported`,
    /// `gw.ParamMissing`, `gw.AppKeyNotFound`, an unknown `gw.*`…).
    #[error("platform refused the call ({code}, HTTP {status}): {msg}")]
    Platform { status: u16, code: String, msg: String },
    /// A param2 business error: the gateway passed the call, the API answered "no"
    /// (`success: false`, a non-zero `code`, an `errorCode`).
    #[error("the API answered with an error ({code}): {msg}")]
    Business { code: String, msg: String },
    /// The configured protocol has no equivalent of this call (e.g. the seller category list
    /// on param2).
    #[error("{call} has no equivalent on the {protocol} protocol")]
    Unsupported { call: String, protocol: &'static str },
    #[error("OAuth token request refused: {0}")]
    Auth(String),
    #[error("invalid argument: {0}")]
    Argument(String),
}

impl ApiError {
    pub fn retry(&self) -> Retry {
        use ApiError::*;
        match self {
            Busy | Timeout | Connect(_) | Html { .. } | Truncated { .. } => Retry::AfterFailure,
            Throttled => Retry::AfterThrottle,
            Token { .. } => Retry::RefreshToken,
            QuotaExhausted { .. } => Retry::NextQuotaDay,
            // An unknown code on an HTTP 5xx is the gateway's trouble, not ours.
            Other { status, .. } | Platform { status, .. } if *status >= 500 => Retry::AfterFailure,
            InvalidParam { .. }
            | BadSignature
            | Permission { .. }
            | Malformed(_)
            | Other { .. }
            | ApiNotGranted { .. }
            | Platform { .. }
            | Business { .. }
            | Unsupported { .. }
            | Auth(_)
            | Argument(_) => Retry::Never,
        }
    }

    /// A short fixed name, for metric labels and log fields.
    pub fn kind(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidParam { .. } => "invalid_param",
            Busy => "busy",
            Throttled => "throttled",
            QuotaExhausted { .. } => "quota",
            BadSignature => "bad_signature",
            Token { .. } => "token",
            Permission { .. } => "permission",
            Timeout => "timeout",
            Connect(_) => "connect",
            Html { .. } => "html",
            Truncated { .. } => "truncated",
            Malformed(_) => "malformed",
            Other { .. } => "other",
            // The same class as code 11: dashboards and alerts need not learn a new label.
            ApiNotGranted { .. } => "permission",
            Platform { .. } => "platform",
            Business { .. } => "business",
            Unsupported { .. } => "unsupported",
            Auth(_) => "auth",
            Argument(_) => "argument",
        }
    }

    /// The platform's sub-code, where the error has one.
    pub fn sub_code(&self) -> Option<&str> {
        match self {
            ApiError::InvalidParam { sub_code, .. }
            | ApiError::Token { sub_code }
            | ApiError::Permission { sub_code } => Some(sub_code),
            _ => None,
        }
    }

    /// Maps a gateway `error_response`.
    pub fn from_platform(status: u16, code: i64, msg: String, sub_code: String) -> ApiError {
        match code {
            1001 => ApiError::InvalidParam { sub_code, msg },
            5002 => ApiError::Busy,
            7 => ApiError::Throttled,
            // The account name and reset time are filled in by the client, which knows them.
            15 => ApiError::QuotaExhausted { account: String::new(), until_ms: 0 },
            10002 => ApiError::BadSignature,
            27 => ApiError::Token { sub_code },
            11 => ApiError::Permission { sub_code },
            _ => ApiError::Other { status, code, msg },
        }
    }

    /// Maps a transport error; the URL is dropped so no query string reaches a log.
    pub fn from_transport(e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout;
        }
        let e = e.without_url();
        if e.is_decode() || e.is_body() {
            return ApiError::Truncated { status: 0, len: 0, detail: e.to_string() };
        }
        // `{:#}`-style chain without the URL: the source says what went wrong (refused, reset).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        ApiError::Connect(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_codes_map_to_their_retry_rule() {
        let m = |code| ApiError::from_platform(200, code, String::new(), "x".into()).retry();
        assert_eq!(m(1001), Retry::Never);
        assert_eq!(m(5002), Retry::AfterFailure);
        assert_eq!(m(7), Retry::AfterThrottle);
        assert_eq!(m(15), Retry::NextQuotaDay);
        assert_eq!(m(10002), Retry::Never);
        assert_eq!(m(27), Retry::RefreshToken);
        assert_eq!(m(11), Retry::Never);
        assert_eq!(ApiError::Html { status: 502 }.retry(), Retry::AfterFailure);
        assert_eq!(ApiError::Timeout.retry(), Retry::AfterFailure);
    }
}
