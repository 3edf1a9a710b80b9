//! Everything a client controls before authentication: the pkiMessage parser and signature
//! check, the envelope and CSR parsers, and the GET base64 decoder. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scepd_pki::cms::enveloped_data::EnvelopedData;
use scepd_pki::pkcs10::CertificationRequest;
use scepd_pki::scep::PkiMessage;
use scepd_pki::scep::http::decode_get_message;
use scepd_pki::x509::Certificate;

fuzz_target!(|data: &[u8]| {
    let _ = PkiMessage::decode(data);
    let _ = EnvelopedData::parse(data);
    let _ = CertificationRequest::parse_and_verify(data);
    let _ = Certificate::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decode_get_message(s);
    }
});
