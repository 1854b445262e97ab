//! How a user names a shop: a 16-digit member id, or a shop URL of one of three shapes
//! (contract section 4.1). Only the third shape needs an API call to resolve.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A validated member id: exactly 16 decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemberId(String);

impl MemberId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MemberId {
    type Error = ShopRefError;
    fn try_from(s: String) -> Result<Self, ShopRefError> {
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(MemberId(s))
        } else {
            Err(ShopRefError::MemberId(s))
        }
    }
}

impl From<MemberId> for String {
    fn from(m: MemberId) -> String {
        m.0
    }
}

impl FromStr for MemberId {
    type Err = ShopRefError;
    fn from_str(s: &str) -> Result<Self, ShopRefError> {
        MemberId::try_from(s.trim().to_string())
    }
}

/// A shop as configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShopRef {
    /// Known without a call: a bare id, or a URL of shape 1 or 2.
    Member(MemberId),
    /// Shape 3 (e.g. `https://shop12345678.1688.com`): the subdomain is a login name, not the
    /// member id, so only `alibaba.shop.get` can resolve it.
    Url(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShopRefError {
    #[error("member id {0:?} is not 16 decimal digits")]
    MemberId(String),
    #[error("{0:?} is neither a 16-digit member id nor a 1688 shop URL")]
    Unrecognized(String),
    #[error("shop URL {0:?} is not on 1688.com")]
    Host(String),
}

impl FromStr for ShopRef {
    type Err = ShopRefError;

    fn from_str(input: &str) -> Result<Self, ShopRefError> {
        let s = input.trim();
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            return Ok(ShopRef::Member(MemberId::try_from(s.to_string())?));
        }
        let with_scheme = if s.contains("://") { s.to_string() } else { format!("https://{s}") };
        let url = reqwest::Url::parse(&with_scheme).map_err(|_| ShopRefError::Unrecognized(s.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ShopRefError::Unrecognized(s.to_string()));
        }
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        if host != "1688.com" && !host.ends_with(".1688.com") {
            return Err(ShopRefError::Host(s.to_string()));
        }
        // Shape 1: a memberId query parameter anywhere in the URL.
        if let Some((_, id)) = url.query_pairs().find(|(k, _)| k == "memberId") {
            return Ok(ShopRef::Member(MemberId::try_from(id.into_owned())?));
        }
        // Shape 2: .../shop/<id>.html, the id up to the first '.'.
        let segs: Vec<&str> = url.path_segments().map(|p| p.collect()).unwrap_or_default();
        if let Some(pos) = segs.iter().position(|seg| *seg == "shop") {
            if let Some(next) = segs.get(pos + 1) {
                let id = next.split('.').next().unwrap_or("");
                return Ok(ShopRef::Member(MemberId::try_from(id.to_string())?));
            }
        }
        Ok(ShopRef::Url(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(s: &str) -> ShopRef {
        ShopRef::Member(s.parse().unwrap())
    }

    #[test]
    fn three_shapes() {
        assert_eq!("6000000000000001".parse(), Ok(member("6000000000000001")));
        assert_eq!(
            "https://detail.1688.com/page/index.html?spm=a&memberId=6000000000000002&x=1".parse(),
            Ok(member("6000000000000002"))
        );
        assert_eq!("https://m.1688.com/shop/6000000000000003.html".parse(), Ok(member("6000000000000003")));
        assert_eq!(
            "https://shop12345678.1688.com".parse::<ShopRef>(),
            Ok(ShopRef::Url("https://shop12345678.1688.com/".into()))
        );
        assert_eq!(
            "shop12345678.1688.com/page/店铺.html".parse::<ShopRef>().map(|r| matches!(r, ShopRef::Url(_))),
            Ok(true)
        );
    }

    #[test]
    fn bad_ids_are_refused_before_any_call() {
        assert_eq!("12345".parse::<ShopRef>(), Err(ShopRefError::MemberId("12345".into())));
        assert_eq!(
            "https://a.1688.com/x?memberId=b2b-123".parse::<ShopRef>(),
            Err(ShopRefError::MemberId("b2b-123".into()))
        );
        assert_eq!(
            "https://m.1688.com/shop/abc.html".parse::<ShopRef>(),
            Err(ShopRefError::MemberId("abc".into()))
        );
        assert!(matches!("https://example.com/shop".parse::<ShopRef>(), Err(ShopRefError::Host(_))));
        assert!(matches!(
            "店铺名".parse::<ShopRef>(),
            Err(ShopRefError::Host(_) | ShopRefError::Unrecognized(_))
        ));
        assert!(matches!("ftp://shop1.1688.com".parse::<ShopRef>(), Err(ShopRefError::Unrecognized(_))));
    }
}
