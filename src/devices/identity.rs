//! Which device (and user) a certificate belongs to, from the request.
//!
//! Default: the token after `managementAttestation` in the CN (the recommended subject
//! `CN={user} managementAttestation {deviceId}`), else the Intune SID SAN URI, else the whole CN.
//! A platform may set its own pattern (`--device-id-pattern`, one capture group) matched
//! against the CN, then each SAN.
//!
//! Device ids are 1 to [`MAX_DEVICE_ID_CHARS`] Unicode characters, none of them unsafe to
//! print ([`crate::printable::is_unsafe`]: control characters, bidi formatting);
//! [`check_device_id`] is the one place that rule lives.

use regex::Regex;
use scepd_pki::x509::general_names::AltName;
use scepd_pki::x509::name;

/// Longest device id, in characters.
pub const MAX_DEVICE_ID_CHARS: usize = 256;

/// Why an extracted device id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// Empty.
    #[error("device id is empty")]
    Empty,
    /// Longer than [`MAX_DEVICE_ID_CHARS`].
    #[error("device id is longer than {MAX_DEVICE_ID_CHARS} characters")]
    TooLong,
    /// Holds a control or bidi formatting character (shown escaped).
    #[error("device id contains the character {0:?}, which is not allowed")]
    Character(char),
}

/// The device id rule (see the module docs): enrollment refuses ids that break it, so no new
/// device can get one; ids stored before the rule may still break it and are escaped
/// wherever they are shown.
pub fn check_device_id(id: &str) -> Result<(), DeviceIdError> {
    if id.is_empty() {
        return Err(DeviceIdError::Empty);
    }
    if let Some(c) = id.chars().find(|c| crate::printable::is_unsafe(*c)) {
        return Err(DeviceIdError::Character(c));
    }
    if id.chars().count() > MAX_DEVICE_ID_CHARS {
        return Err(DeviceIdError::TooLong);
    }
    Ok(())
}

const MARKER: &str = "managementAttestation";
const INTUNE_SID_PREFIX: &str = "tag:microsoft.com,2022-09-14:sid:";

/// A compiled per-platform pattern.
#[derive(Debug, Clone)]
pub struct DevicePattern(Regex);

/// Why a pattern is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --device-id-pattern: {0}")]
pub struct PatternError(String);

impl DevicePattern {
    /// Compiles a pattern; it must have exactly one capture group.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| PatternError(e.to_string()))?;
        if re.captures_len() != 2 {
            return Err(PatternError("it needs exactly one capture group".into()));
        }
        Ok(Self(re))
    }

    fn capture(&self, text: &str) -> Option<String> {
        self.0
            .captures(text)?
            .get(1)
            .map(|m| m.as_str().to_owned())
            .filter(|s| !s.is_empty())
    }
}

/// Device id and user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The device id, if one could be found.
    pub device_id: Option<String>,
    /// The user, if one could be found.
    pub user: Option<String>,
}

/// Extracts the identity from a subject and its SANs.
pub fn extract(subject: &[u8], sans: &[AltName], pattern: Option<&DevicePattern>) -> Identity {
    let cn = name::common_name(subject);
    let user = cn
        .as_deref()
        .and_then(|c| c.split_once(MARKER))
        .map(|(u, _)| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .or_else(|| {
            sans.iter().find_map(|s| {
                matches!(s, AltName::Upn(_) | AltName::Email(_)).then(|| san_value(s))
            })
        });
    let device_id = match pattern {
        Some(p) => cn
            .as_deref()
            .and_then(|c| p.capture(c))
            .or_else(|| sans.iter().find_map(|s| p.capture(&san_value(s)))),
        None => default_device_id(cn.as_deref(), sans),
    };
    Identity { device_id, user }
}

fn san_value(s: &AltName) -> String {
    match s {
        AltName::Email(v) | AltName::Dns(v) | AltName::Uri(v) | AltName::Upn(v) => v.clone(),
        AltName::Ip(ip) => ip.to_string(),
    }
}

fn default_device_id(cn: Option<&str>, sans: &[AltName]) -> Option<String> {
    if let Some(cn) = cn {
        let mut words = cn.split_whitespace();
        if words.any(|w| w == MARKER) {
            if let Some(id) = words.next() {
                return Some(id.to_owned());
            }
        }
    }
    for s in sans {
        if let AltName::Uri(u) = s {
            if let Some(sid) = u.strip_prefix(INTUNE_SID_PREFIX) {
                return Some(sid.to_owned());
            }
        }
    }
    cn.map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scepd_pki::der::oid;

    fn subject(cn: &str) -> Vec<u8> {
        name::build(&[(oid::AT_COMMON_NAME, cn)])
    }

    #[test]
    fn default_extraction_order() {
        let id = extract(
            &subject("alice@example.com managementAttestation 1234-ABCD"),
            &[],
            None,
        );
        assert_eq!(id.device_id.as_deref(), Some("1234-ABCD"));
        assert_eq!(id.user.as_deref(), Some("alice@example.com"));
        let sid = AltName::Uri(format!("{INTUNE_SID_PREFIX}S-1-5-21-9"));
        let id = extract(&subject("WIN-PC"), &[sid], None);
        assert_eq!(id.device_id.as_deref(), Some("S-1-5-21-9"));
        assert_eq!(
            extract(&subject("plain-host"), &[], None)
                .device_id
                .as_deref(),
            Some("plain-host")
        );
    }

    #[test]
    fn device_id_rule() {
        for ok in [
            "1234-ABCD",
            "John's MacBook",
            "LAPTOP-8/deactivate?x",
            "Gerät ü 東京",
            "S-1-5-21-9",
        ] {
            assert_eq!(check_device_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_device_id(&"x".repeat(MAX_DEVICE_ID_CHARS)), Ok(()));
        assert_eq!(
            check_device_id(&"é".repeat(MAX_DEVICE_ID_CHARS + 1)),
            Err(DeviceIdError::TooLong)
        );
        assert_eq!(check_device_id(""), Err(DeviceIdError::Empty));
        for (bad, c) in [
            ("a\nb", '\n'),
            ("\u{1b}[31mred", '\u{1b}'),
            ("del\u{7f}", '\u{7f}'),
            ("c1\u{85}", '\u{85}'),
            ("evil\u{202e}gpj.exe", '\u{202e}'),
            ("tab\t", '\t'),
        ] {
            assert_eq!(
                check_device_id(bad),
                Err(DeviceIdError::Character(c)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn platform_pattern() {
        let p = DevicePattern::new(r"serial=(\w+)").unwrap();
        let id = extract(&subject("host serial=C02XYZ"), &[], Some(&p));
        assert_eq!(id.device_id.as_deref(), Some("C02XYZ"));
        let dns = AltName::Dns("serial=Q9".into());
        assert_eq!(
            extract(&subject("nothing"), &[dns], Some(&p))
                .device_id
                .as_deref(),
            Some("Q9")
        );
        assert!(DevicePattern::new("no groups").is_err());
        assert!(DevicePattern::new("(a)(b)").is_err());
    }
}
