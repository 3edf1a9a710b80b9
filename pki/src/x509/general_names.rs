//! subjectAltName handling: which requested names we copy into a device certificate.

use crate::der::{DerError, Reader, tag, writer};

/// Largest SAN extension we copy from a request.
const MAX_SAN_LEN: usize = 8192;

/// A subject alternative name we understood, for display and storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    /// rfc822Name `[1]`.
    Email(String),
    /// dNSName `[2]`.
    Dns(String),
    /// uniformResourceIdentifier `[6]` (e.g. the Intune SID URI `tag:microsoft.com,2022-09-14:sid:…`).
    Uri(String),
    /// iPAddress `[7]`.
    Ip(std::net::IpAddr),
    /// otherName `[0]` of type Microsoft UPN (1.3.6.1.4.1.311.20.2.3).
    Upn(String),
}

impl std::fmt::Display for AltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email(v) => write!(f, "email:{v}"),
            Self::Dns(v) => write!(f, "DNS:{v}"),
            Self::Uri(v) => write!(f, "URI:{v}"),
            Self::Ip(v) => write!(f, "IP:{v}"),
            Self::Upn(v) => write!(f, "UPN:{v}"),
        }
    }
}

const UPN_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];

fn ia5(v: &[u8]) -> Option<String> {
    if v.is_empty() || !v.iter().all(|b| (0x21..0x7f).contains(b)) {
        return None;
    }
    String::from_utf8(v.to_vec()).ok()
}

/// Filters a requested `GeneralNames` (extnValue content) down to the name forms we allow in a
/// device certificate. Returns the re-encoded GeneralNames (None when nothing is left) and the
/// names for display. Unknown or malformed entries are dropped, never copied.
pub fn filter_requested(general_names: &[u8]) -> Result<(Option<Vec<u8>>, Vec<AltName>), DerError> {
    if general_names.len() > MAX_SAN_LEN {
        return Err(DerError::Malformed("subjectAltName too long"));
    }
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut names = Vec::new();
    let mut r = Reader::new(general_names).expect(tag::SEQUENCE)?.reader();
    while !r.is_empty() {
        let gn = r.read()?;
        let parsed = match gn.tag {
            0x81 => ia5(gn.value).map(AltName::Email),
            0x82 => ia5(gn.value).map(AltName::Dns),
            0x86 => ia5(gn.value).map(AltName::Uri),
            0x87 => match gn.value.len() {
                4 => <[u8; 4]>::try_from(gn.value)
                    .ok()
                    .map(|a| AltName::Ip(a.into())),
                16 => <[u8; 16]>::try_from(gn.value)
                    .ok()
                    .map(|a| AltName::Ip(a.into())),
                _ => None,
            },
            0xa0 => upn(gn.value),
            _ => None,
        };
        if let Some(n) = parsed {
            kept.push(gn.raw);
            names.push(n);
        }
    }
    if kept.is_empty() {
        return Ok((None, names));
    }
    Ok((Some(writer::sequence(&kept)), names))
}

/// `otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }` with a UTF8String UPN.
fn upn(v: &[u8]) -> Option<AltName> {
    let mut r = Reader::new(v);
    if r.expect(tag::OID).ok()?.value != UPN_OID {
        return None;
    }
    let inner = r.expect(tag::context_constructed(0)).ok()?;
    let s = inner.reader().expect(tag::UTF8_STRING).ok()?;
    std::str::from_utf8(s.value)
        .ok()
        .map(|s| AltName::Upn(s.to_owned()))
}
