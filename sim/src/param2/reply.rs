//! What the param2 face answers, and how it goes on the wire.
//!
//! Unlike the seed face, failures do not share one envelope: the gateway's own refusals come
//! as HTTP 4xx with `error_code`, an unauthorized call as HTTP 401, and each API's business
//! errors in its own shape with HTTP 200 (contract section 8.1).

use crate::gateway::Wire;
use serde_json::{json, Value};

/// A gateway refusal (`gw.*`), with the HTTP status it comes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gw {
    AppKeyNotFound,
    SignatureInvalid,
    QosAppFrequencyLimit,
    NoUsageLeftError,
    APIACLDecline,
    APIUnsupported,
    ParamMissing,
    /// A system parameter with a value the gateway cannot take (`_aop_timestamp` not 13
    /// digits or too far from the server's clock), or an API parameter the gateway cannot
    /// convert to its declared type (`productId` of `alibaba.product.follow`, a long). No
    /// source names this code; it is the simulator's choice, and no client should retry it.
    ParamInvalid,
    /// The gateway gave up on the backend (injected busy faults, the stall of a too-wide
    /// saturated window): HTTP 503, transient.
    ServiceUnavailable,
}

impl Gw {
    pub fn code(self) -> &'static str {
        match self {
            Gw::AppKeyNotFound => "gw.AppKeyNotFound",
            Gw::SignatureInvalid => "gw.SignatureInvalid",
            Gw::QosAppFrequencyLimit => "gw.QosAppFrequencyLimit",
            Gw::NoUsageLeftError => "gw.NoUsageLeftError",
            Gw::APIACLDecline => "gw.APIACLDecline",
            Gw::APIUnsupported => "gw.APIUnsupported",
            Gw::ParamMissing => "gw.ParamMissing",
            Gw::ParamInvalid => "gw.ParamInvalid",
            Gw::ServiceUnavailable => "gw.ServiceUnavailable",
        }
    }

    fn http(self) -> u16 {
        match self {
            Gw::ServiceUnavailable => 503,
            _ => 400,
        }
    }
}

/// Why a call is unauthorized (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthorized {
    /// No `access_token`, one the platform never issued, or one of another app.
    Missing,
    Expired,
    /// A valid token that speaks for no member, on an API that lists a member's own shop.
    NoMember,
}

/// The reply before it is put on the wire.
#[derive(Debug)]
pub enum Reply {
    /// HTTP 200 with this body: a result, or a business error in its API's shape.
    Json {
        body: Value,
        business_error: Option<String>,
    },
    Gw {
        gw: Gw,
        message: String,
    },
    Unauthorized(Unauthorized),
    /// An HTML error page from the gateway's front (502 or 503).
    Html(u16),
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::Json { body, business_error: None }
    }

    pub fn gw(gw: Gw, message: impl Into<String>) -> Reply {
        Reply::Gw { gw, message: message.into() }
    }

    /// `{"success": false, "errorCode": …, "errorMsg": …}`
    pub fn error_code_msg(code: &str, msg: &str) -> Reply {
        let body = json!({"success": false, "errorCode": code, "errorMsg": msg});
        Reply::Json { body, business_error: Some(code.to_string()) }
    }

    /// `{"success": false, "code": …, "message": …}`
    pub fn flat_failure(code: &str, message: &str) -> Reply {
        let body = json!({"success": false, "code": code, "message": message});
        Reply::Json { body, business_error: Some(code.to_string()) }
    }

    /// `{"result": {"success": false, "code": …, "message": …}}`
    pub fn result_failure(code: &str, message: &str) -> Reply {
        let body = json!({"result": {"success": false, "code": code, "message": message}});
        Reply::Json { body, business_error: Some(code.to_string()) }
    }

    /// `{"code": 0, "message": …}`: no `success` at all, and a zero that reads like "ok".
    pub fn zero_code(message: &str) -> Reply {
        let body = json!({"code": 0, "message": message});
        Reply::Json { body, business_error: Some("0".to_string()) }
    }

    /// `{"code": <non-zero number>, "message": …}`: the failure of an API whose success is
    /// `{"code": 0, "message": "success"}` (`alibaba.product.follow`).
    pub fn numeric_code(code: u32, message: &str) -> Reply {
        let body = json!({"code": code, "message": message});
        Reply::Json { body, business_error: Some(code.to_string()) }
    }

    /// The outcome as the counters book it.
    pub fn outcome(&self) -> String {
        match self {
            Reply::Json { business_error: None, .. } => "ok".into(),
            Reply::Json { business_error: Some(code), .. } => format!("business:{code}"),
            Reply::Gw { gw, .. } => gw.code().into(),
            Reply::Unauthorized(_) => "401".into(),
            Reply::Html(status) => format!("html_{status}"),
        }
    }

    pub fn render(self, request_id: &str) -> Wire {
        let json_wire = |status: u16, body: Value| Wire {
            status,
            content_type: "application/json;charset=UTF-8",
            body: body.to_string().into_bytes(),
        };
        match self {
            Reply::Json { body, .. } => json_wire(200, body),
            Reply::Gw { gw, message } => json_wire(
                gw.http(),
                json!({"error_code": gw.code(), "error_message": message, "exception": message,
                       "request_id": request_id}),
            ),
            Reply::Unauthorized(why) => {
                // Clients in the field key on this exact text ("Request need user
                // authorized") and on `error_code` "401", not on a gw.* code.
                let exception = match why {
                    Unauthorized::Missing | Unauthorized::NoMember => "Request need user authorized",
                    Unauthorized::Expired => "AccessToken is expired",
                };
                json_wire(
                    401,
                    json!({"error_code": "401", "error_message": exception, "exception": exception,
                           "request_id": request_id}),
                )
            }
            Reply::Html(status) => Wire {
                status,
                content_type: "text/html",
                body: format!(
                    "<html><head><title>{status} Bad Gateway</title></head><body><center><h1>{status}</h1></center><hr><center>Tengine</center></body></html>"
                )
                .into_bytes(),
            },
        }
    }
}
