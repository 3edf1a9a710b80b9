//! Distinguished names: validation of requested subjects and RFC 4514 text for logs and storage.
//! Names are always copied as received bytes, never rebuilt (docs/architecture.md gotcha 7:
//! rebuilding loses repeated and multi-valued attributes).

use crate::der::{DerError, Reader, oid, strict, tag};

/// Largest subject we accept from a request (real device subjects are far below this).
pub const MAX_NAME_LEN: usize = 4096;

/// Attribute string types accepted in a subject.
fn is_string_tag(t: u8) -> bool {
    matches!(
        t,
        tag::UTF8_STRING
            | tag::PRINTABLE_STRING
            | tag::TELETEX_STRING
            | tag::IA5_STRING
            | tag::BMP_STRING
            | tag::UNIVERSAL_STRING
    )
}

/// One attribute of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAttribute<'a> {
    /// Attribute type OID content octets.
    pub oid: &'a [u8],
    /// String tag.
    pub tag: u8,
    /// Value octets.
    pub value: &'a [u8],
}

/// Walks `Name ::= SEQUENCE OF RelativeDistinguishedName` (each a SET OF AttributeTypeAndValue).
pub fn attributes(name: &[u8]) -> Result<Vec<NameAttribute<'_>>, DerError> {
    let mut out = Vec::new();
    let mut seq = Reader::new(name).expect(tag::SEQUENCE)?.reader();
    while !seq.is_empty() {
        let mut rdn = seq.expect(tag::SET)?.reader();
        while !rdn.is_empty() {
            let mut atv = rdn.expect(tag::SEQUENCE)?.reader();
            let oid = atv.expect(tag::OID)?.value;
            let v = atv.read()?;
            if !is_string_tag(v.tag) || v.is_constructed() {
                return Err(DerError::Malformed("name attribute value"));
            }
            out.push(NameAttribute {
                oid,
                tag: v.tag,
                value: v.value,
            });
        }
    }
    Ok(out)
}

/// Checks that a requested subject is a strict-DER name of string attributes, each holding
/// 1 or more characters of its type's alphabet and no control characters (NUL, newline, ESC,
/// C1), and not oversized; returns its attributes. The subject is copied into the certificate
/// as received, so this is the whole defence against signing requester-shaped bytes.
pub fn validate_subject(name: &[u8]) -> Result<Vec<NameAttribute<'_>>, DerError> {
    if name.len() > MAX_NAME_LEN {
        return Err(DerError::Malformed("subject too long"));
    }
    strict::check(name)?;
    let attrs = attributes(name)?;
    for a in &attrs {
        let text = attribute_text(a)?;
        if text.is_empty() {
            return Err(DerError::Malformed("empty subject attribute"));
        }
        if text.chars().any(char::is_control) {
            return Err(DerError::Malformed("control character in subject"));
        }
    }
    Ok(attrs)
}

/// The characters of an attribute value, decoded by its string type. TeletexString is taken
/// as printable ASCII only: its real (T.61) repertoire is not something we can check, and no
/// current device sends it.
fn attribute_text(a: &NameAttribute<'_>) -> Result<String, DerError> {
    match a.tag {
        tag::BMP_STRING => strict::decode_bmp(a.value),
        tag::UNIVERSAL_STRING => strict::decode_universal(a.value),
        tag::TELETEX_STRING if !a.value.iter().all(|b| (0x20..0x7f).contains(b)) => {
            Err(DerError::Malformed("TeletexString outside printable ASCII"))
        }
        _ => std::str::from_utf8(a.value)
            .map(str::to_owned)
            .map_err(|_| DerError::Malformed("subject attribute text")),
    }
}

fn short_name(o: &[u8]) -> String {
    match o {
        oid::AT_COMMON_NAME => "CN".into(),
        oid::AT_COUNTRY => "C".into(),
        oid::AT_ORGANIZATION => "O".into(),
        oid::AT_ORGANIZATIONAL_UNIT => "OU".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        _ => oid::dotted(o),
    }
}

/// Value text for display: decoded where it decodes, otherwise hex.
fn value_text(a: &NameAttribute<'_>) -> String {
    attribute_text(a).unwrap_or_else(|_| format!("#{}", crate::hex(a.value)))
}

/// RFC 4514-style text, most significant RDN first as OpenSSL prints it (`CN=x, O=y` order
/// reversed by RFC 4514 is confusing to operators; we keep encoding order joined by ", ").
pub fn to_text(name: &[u8]) -> String {
    match attributes(name) {
        Ok(attrs) => attrs
            .iter()
            .map(|a| {
                let v = value_text(a)
                    .replace('\\', "\\\\")
                    .replace(',', "\\,")
                    .replace('+', "\\+");
                format!("{}={}", short_name(a.oid), v)
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => "<malformed name>".into(),
    }
}

/// The first common name, if any.
pub fn common_name(name: &[u8]) -> Option<String> {
    attributes(name)
        .ok()?
        .iter()
        .find(|a| a.oid == oid::AT_COMMON_NAME)
        .map(value_text)
}

/// Builds a Name with one attribute per RDN, in the order given (PrintableString where the
/// alphabet allows, UTF8String otherwise).
pub fn build(attrs: &[(&[u8], &str)]) -> Vec<u8> {
    use crate::der::writer;
    let rdns: Vec<Vec<u8>> = attrs
        .iter()
        .map(|(o, v)| {
            let value = if writer::is_printable(v) && *o != oid::AT_COMMON_NAME
                || (*o == oid::AT_COUNTRY)
            {
                writer::printable_string(v)
            } else {
                writer::utf8_string(v)
            };
            writer::set_of(&[&writer::sequence(&[&writer::oid(o), &value])])
        })
        .collect();
    let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    writer::sequence(&refs)
}
