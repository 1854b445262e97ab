//! The wire format: one request line, answered by any number of output lines and one `end`
//! line. Output is carried as the text the CLI would print, so a command prints the same
//! bytes whether a daemon answered it or the CLI opened the state itself.

use serde::{Deserialize, Serialize};

/// What the CLI asks the daemon. One request per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// `shopsync status [--json]`.
    Status { json: bool },
    /// `shopsync events`: outbox events as JSONL, streamed.
    Events { shop: Option<String>, after_seq: u64 },
    /// `shopsync export`: a shop's catalogue as `jsonl` or `csv`, streamed.
    Export { shop: String, format: crate::cli::ExportFormat },
    /// `shopsync state reset`: forget a shop's watermark.
    StateReset { shop: String },
    /// `shopsync sync --shop`: queue a pass of the shop in the daemon now.
    Sync { shop: String, full: bool },
    /// `shopsync dlq replay`.
    DlqReplay { sink: String },
    /// `shopsync reload`: the same as SIGHUP.
    Reload,
    /// `shopsync auth`: the token an authorization code became, for the daemon to use and
    /// store (it holds the state). The socket is the daemon's own user's only (mode 0600,
    /// peer uid checked), and a token's `Debug` shows no secret, so a logged request does
    /// not leak it.
    StoreToken { account: String, token: crate::api::Token },
}

/// One line of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Text for the CLI's stdout (whole lines).
    Out(String),
    /// A line for the CLI's stderr (counts, notes), without its newline.
    Note(String),
    /// The last line: the command's outcome.
    End(End),
}

/// How a command ended: `ok` is the CLI's exit status; `error` is printed as
/// `shopsync: {error}` (never a secret: handlers answer with their own messages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl End {
    pub fn ok(ok: bool) -> End {
        End { ok, error: None }
    }

    pub fn error(e: impl std::fmt::Display) -> End {
        End { ok: false, error: Some(e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_line_each() {
        let r = Request::Sync { shop: "6000000000000001".into(), full: true };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"cmd":"sync","shop":"6000000000000001","full":true}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert_eq!(serde_json::to_string(&Request::Reload).unwrap(), r#"{"cmd":"reload"}"#);
        let end = serde_json::to_string(&Reply::End(End::ok(true))).unwrap();
        assert_eq!(end, r#"{"end":{"ok":true}}"#);
        assert_eq!(serde_json::to_string(&Reply::Out("a\nb\n".into())).unwrap(), r#"{"out":"a\nb\n"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"drop_tables"}"#).is_err());
    }
}
