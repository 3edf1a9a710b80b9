//! SCEP message attribute values (RFC 8894 §3.2.1, Tables 3–5).

use crate::der::{DerError, Tlv, tag, writer};

/// messageType (RFC 8894 Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 3: response to any request.
    CertRep,
    /// 17: renewal signed with an existing certificate.
    RenewalReq,
    /// 19: initial enrollment.
    PkcsReq,
    /// 20: poll for a pending request (GetCertInitial in older drafts).
    CertPoll,
    /// 21: fetch a certificate by issuer and serial.
    GetCert,
    /// 22: fetch a CRL by issuer and serial.
    GetCrl,
}

impl MessageType {
    /// The decimal value carried as PrintableString.
    pub fn code(self) -> u8 {
        match self {
            Self::CertRep => 3,
            Self::RenewalReq => 17,
            Self::PkcsReq => 19,
            Self::CertPoll => 20,
            Self::GetCert => 21,
            Self::GetCrl => 22,
        }
    }

    /// From the decimal value; `None` for unknown or obsolete types (e.g. UpdateReq 18).
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "3" => Self::CertRep,
            "17" => Self::RenewalReq,
            "19" => Self::PkcsReq,
            "20" => Self::CertPoll,
            "21" => Self::GetCert,
            "22" => Self::GetCrl,
            _ => return None,
        })
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        }
    }
}

/// pkiStatus (RFC 8894 Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiStatus {
    /// 0
    Success,
    /// 2
    Failure,
    /// 3
    Pending,
}

impl PkiStatus {
    /// The decimal value.
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::Failure => "2",
            Self::Pending => "3",
        }
    }

    /// From the decimal value.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "0" => Self::Success,
            "2" => Self::Failure,
            "3" => Self::Pending,
            _ => return None,
        })
    }
}

/// failInfo (RFC 8894 Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// 0: unrecognized or unsupported algorithm.
    BadAlg,
    /// 1: integrity check (signature) failed.
    BadMessageCheck,
    /// 2: transaction not permitted or supported.
    BadRequest,
    /// 3: signingTime too far from the CA's time.
    BadTime,
    /// 4: no certificate matches the criteria.
    BadCertId,
}

impl FailInfo {
    /// The decimal value.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }

    /// From the decimal value.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "0" => Self::BadAlg,
            "1" => Self::BadMessageCheck,
            "2" => Self::BadRequest,
            "3" => Self::BadTime,
            "4" => Self::BadCertId,
            _ => return None,
        })
    }

    /// The RFC name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        }
    }
}

/// Longest transactionID we accept (Apple sends 40 hex characters; Windows a GUID-like string).
pub const MAX_TRANSACTION_ID_LEN: usize = 256;

/// transactionID: opaque client-chosen text (RFC 8894 §3.2.1.1), kept exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// Validates length and that the text is printable (no control characters).
    pub fn new(s: &str) -> Result<Self, DerError> {
        if s.is_empty() || s.len() > MAX_TRANSACTION_ID_LEN || s.chars().any(char::is_control) {
            return Err(DerError::Malformed("transactionID"));
        }
        Ok(Self(s.to_owned()))
    }

    /// From an attribute value (PrintableString; other string types tolerated).
    pub fn from_tlv(t: Tlv<'_>) -> Result<Self, DerError> {
        if !matches!(
            t.tag,
            tag::PRINTABLE_STRING | tag::UTF8_STRING | tag::IA5_STRING
        ) {
            return Err(DerError::Malformed("transactionID type"));
        }
        Self::new(std::str::from_utf8(t.value).map_err(|_| DerError::Malformed("transactionID"))?)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The attribute value encoding (PrintableString when the alphabet allows).
    pub fn encode(&self) -> Vec<u8> {
        if writer::is_printable(&self.0) {
            writer::printable_string(&self.0)
        } else {
            writer::utf8_string(&self.0)
        }
    }
}

/// senderNonce / recipientNonce (16 octets per RFC 8894; 8–64 tolerated on input).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(Vec<u8>);

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", crate::hex(&self.0))
    }
}

impl Nonce {
    /// Wraps received nonce octets.
    pub fn new(bytes: &[u8]) -> Result<Self, DerError> {
        if !(8..=64).contains(&bytes.len()) {
            return Err(DerError::Malformed("nonce length"));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// A fresh 16-octet nonce.
    pub fn random(rng: &dyn crate::random::Random) -> Result<Self, crate::random::RandomError> {
        let mut b = vec![0u8; 16];
        rng.fill(&mut b)?;
        Ok(Self(b))
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}
