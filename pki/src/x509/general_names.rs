//! subjectAltName handling: which requested names we copy into a device certificate.

use crate::der::{DerError, Reader, strict, tag, writer};

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

/// An IA5String name (rfc822Name, dNSName, URI): printable ASCII without spaces, never
/// empty. Anything else in those forms is refused, not dropped: the requester meant it.
fn ia5(v: &[u8]) -> Result<String, DerError> {
    if v.is_empty() || !v.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(DerError::Malformed(
            "subjectAltName name outside printable ASCII",
        ));
    }
    String::from_utf8(v.to_vec()).map_err(|_| DerError::Malformed("subjectAltName name"))
}

/// Filters a requested `GeneralNames` (extnValue content) down to the name forms we allow in a
/// device certificate. Returns the re-encoded GeneralNames (None when nothing is left) and the
/// names for display.
///
/// The whole extension must be strict DER (entries are copied as received, under our
/// signature). Entries of the forms we copy must be well formed — a UPN otherName is exactly
/// the UPN type and one UTF8String without control characters — or the request is refused.
/// Forms we do not copy (directoryName, other otherNames…) are dropped.
pub fn filter_requested(general_names: &[u8]) -> Result<(Option<Vec<u8>>, Vec<AltName>), DerError> {
    if general_names.len() > MAX_SAN_LEN {
        return Err(DerError::Malformed("subjectAltName too long"));
    }
    strict::check(general_names)?;
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut names = Vec::new();
    let mut r = Reader::new(general_names).expect(tag::SEQUENCE)?.reader();
    while !r.is_empty() {
        let gn = r.read()?;
        let parsed = match gn.tag {
            0x81 => Some(AltName::Email(ia5(gn.value)?)),
            0x82 => Some(AltName::Dns(ia5(gn.value)?)),
            0x86 => Some(AltName::Uri(ia5(gn.value)?)),
            0x87 => Some(match gn.value.len() {
                4 => <[u8; 4]>::try_from(gn.value)
                    .map(|a| AltName::Ip(a.into()))
                    .map_err(|_| DerError::Malformed("iPAddress"))?,
                16 => <[u8; 16]>::try_from(gn.value)
                    .map(|a| AltName::Ip(a.into()))
                    .map_err(|_| DerError::Malformed("iPAddress"))?,
                _ => return Err(DerError::Malformed("iPAddress length")),
            }),
            0xa0 => upn(gn.value)?,
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

/// `otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }`: None for other types
/// (not copied), the UPN for a well-formed UPN, an error for a malformed UPN.
fn upn(v: &[u8]) -> Result<Option<AltName>, DerError> {
    let mut r = Reader::new(v);
    if r.expect(tag::OID)?.value != UPN_OID {
        return Ok(None);
    }
    let inner = r.expect(tag::context_constructed(0))?;
    r.finish()?;
    let mut value = inner.reader();
    let s = value.expect(tag::UTF8_STRING)?;
    value.finish()?;
    let text = std::str::from_utf8(s.value).map_err(|_| DerError::Malformed("UPN not UTF-8"))?;
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(DerError::Malformed("UPN empty or with a control character"));
    }
    Ok(Some(AltName::Upn(text.to_owned())))
}
