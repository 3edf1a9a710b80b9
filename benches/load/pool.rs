//! GetCACert/GetCACaps discovery and the pre-generated pool of PKCSReqs (built on the pki
//! crate's client side, before any timing starts).

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::cms::certs_only;
use scepd_pki::der::oid;
use scepd_pki::encoding::encode_base64;
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::pkcs10;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{ClientRequest, Protection, RequestBuilder, self_signed_signer};
use scepd_pki::scep::{MessageType, TransactionId};
use scepd_pki::x509::{Certificate, name};

use crate::http::{Conn, Url, query_escape};

/// What GetCACert and GetCACaps told us.
pub struct CaInfo {
    /// All certificates from GetCACert, DER.
    pub certs: Vec<Vec<u8>>,
    /// Index of the RA (recipient and CertRep signer).
    pub ra: usize,
    /// GetCACaps body.
    pub caps: String,
}

impl CaInfo {
    /// Fetches GetCACert (RA/CA bundle or a single CA certificate) and GetCACaps.
    pub fn fetch(url: &Url) -> Result<Self, String> {
        let mut c = Conn::open(&url.addr).map_err(|e| format!("connect {}: {e}", url.addr))?;
        let r = c
            .send(&url.get("operation=GetCACert"))
            .map_err(|e| format!("GetCACert: {e}"))?;
        if r.status != 200 {
            return Err(format!("GetCACert: HTTP {}", r.status));
        }
        let certs: Vec<Vec<u8>> = if r.content_type.starts_with("application/x-x509-ca-ra-cert") {
            let (certs, _) =
                certs_only::parse(&r.body).map_err(|e| format!("GetCACert bundle: {e}"))?;
            certs.into_iter().map(<[u8]>::to_vec).collect()
        } else {
            // application/x-x509-ca-cert: one DER certificate that is CA and RA at once.
            vec![r.body]
        };
        for (i, c) in certs.iter().enumerate() {
            Certificate::parse(c).map_err(|e| format!("GetCACert certificate {i}: {e}"))?;
        }
        if certs.is_empty() {
            return Err("GetCACert returned no certificate".into());
        }
        // RFC 8894 §3.5.1: the RA is the certificate for key encipherment; else the first.
        let ra = certs
            .iter()
            .position(|c| Certificate::parse(c).is_ok_and(|c| key_encipherment(&c)))
            .unwrap_or(0);
        let caps = c
            .send(&url.get("operation=GetCACaps"))
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .unwrap_or_default();
        Ok(Self { certs, ra, caps })
    }
}

fn key_encipherment(c: &Certificate<'_>) -> bool {
    // KeyUsage ::= BIT STRING; value is [unused bits, first octet, ...]; keyEncipherment is bit 2.
    c.extension(oid::KEY_USAGE)
        .and_then(|e| e.value.get(3))
        .is_some_and(|b| b & 0x20 != 0)
}

/// How requests are made.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Protection of the pkiMessage.
    pub protection: Protection,
    /// challengePassword, if any.
    pub challenge: Option<&'a str>,
    /// Send PKIOperation as GET (base64 in the query) instead of POST.
    pub use_get: bool,
}

/// A device identity reused across some requests (key generation is slow).
pub struct Device {
    /// The key (signs and decrypts the CertRep).
    pub key: SoftwareKey,
    /// Self-signed signer certificate, DER.
    pub signer: Vec<u8>,
}

/// One prepared request.
pub struct Prepared {
    /// Complete HTTP request bytes.
    pub http: Vec<u8>,
    /// What the CertRep must echo.
    pub client: ClientRequest,
    /// Index into the device list.
    pub device: usize,
}

/// Generates `n` device keys with self-signed signer certificates, in parallel.
pub fn devices(n: usize, alg: KeyAlgorithm, threads: usize) -> Vec<Device> {
    let now = unix_now();
    parallel(n, threads, |i| {
        let (key, _) = SoftwareKey::generate(alg).map_err(|e| e.to_string())?;
        let subject = name::build(&[(oid::AT_COMMON_NAME, &format!("scep-load device {i}"))]);
        let signer =
            self_signed_signer(&key, &subject, now, &SystemRandom).map_err(|e| e.to_string())?;
        Ok(Device { key, signer })
    })
    .into_iter()
    .collect::<Result<Vec<_>, String>>()
    .unwrap_or_else(|e| {
        eprintln!("key generation failed: {e}");
        std::process::exit(2)
    })
}

/// Builds `n` distinct PKCSReqs (own transactionID, subject, nonce and CSR each), in parallel.
#[allow(clippy::too_many_arguments)]
pub fn requests(
    url: &Url,
    ca: &CaInfo,
    devices: &[Device],
    opts: Options<'_>,
    tag: &str,
    n: usize,
    threads: usize,
) -> Result<Vec<Prepared>, String> {
    let ra = Certificate::parse(&ca.certs[ca.ra]).map_err(|e| e.to_string())?;
    let now = unix_now();
    parallel(n, threads, |i| {
        let device = i % devices.len();
        let d = &devices[device];
        let signer = Certificate::parse(&d.signer).map_err(|e| e.to_string())?;
        let subject = name::build(&[(oid::AT_COMMON_NAME, &format!("scep-load {tag} {i}"))]);
        let csr = pkcs10::build(
            &subject,
            &d.key,
            opts.protection.digest,
            opts.challenge,
            &[],
        )
        .map_err(|e| e.to_string())?;
        let mut tid = [0u8; 16];
        aws_lc_rs::rand::fill(&mut tid).map_err(|_| "rng")?;
        let client = RequestBuilder {
            message_type: MessageType::PkcsReq,
            transaction_id: TransactionId::new(&scepd_pki::hex(&tid)).map_err(|e| e.to_string())?,
            signer_cert: &signer,
            signer_key: &d.key,
            recipient: &ra,
            protection: opts.protection,
            rng: &SystemRandom,
            signing_time: Some(now),
        }
        .build(&csr)
        .map_err(|e| e.to_string())?;
        let http = if opts.use_get {
            url.get(&format!(
                "operation=PKIOperation&message={}",
                query_escape(&encode_base64(&client.der))
            ))
        } else {
            url.post(
                "operation=PKIOperation",
                "application/x-pki-message",
                &client.der,
            )
        };
        Ok(Prepared {
            http,
            client,
            device,
        })
    })
    .into_iter()
    .collect()
}

/// Runs `f(0..n)` on `threads` threads, keeping the order.
pub fn parallel<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || (t..n).step_by(threads).map(|i| (i, f(i))).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut all: Vec<(usize, T)> = parts.drain(..).flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Parses `aes128|aes192|aes256|3des|des`.
pub fn cipher(s: &str) -> Result<ContentCipher, String> {
    Ok(match s {
        "aes128" => ContentCipher::Aes128Cbc,
        "aes192" => ContentCipher::Aes192Cbc,
        "aes256" => ContentCipher::Aes256Cbc,
        "3des" => ContentCipher::DesEde3Cbc,
        "des" => ContentCipher::DesCbc,
        _ => return Err(format!("unknown cipher {s}")),
    })
}

/// Parses `sha256|sha384|sha512` (SHA-1 signing is not available in aws-lc-rs).
pub fn digest(s: &str) -> Result<DigestAlg, String> {
    Ok(match s {
        "sha256" => DigestAlg::Sha256,
        "sha384" => DigestAlg::Sha384,
        "sha512" => DigestAlg::Sha512,
        _ => return Err(format!("unknown digest {s}")),
    })
}

/// Parses `v15|oaep` (OAEP with SHA-1, as Windows sends).
pub fn transport(s: &str) -> Result<KeyTransport, String> {
    Ok(match s {
        "v15" => KeyTransport::RsaPkcs1v15,
        "oaep" => KeyTransport::RsaOaep(DigestAlg::Sha1),
        _ => return Err(format!("unknown key transport {s}")),
    })
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
