//! Decryption-oracle resistance (Bleichenbacher/Marvin, docs/architecture.md gotcha 5). Three ways
//! an envelope can be bad after the signature verifies — the RSA key transport fails, the CBC
//! padding is wrong, the decrypted content is not a CSR — must give the same answer (same
//! failInfo, same text) and timings an observer cannot tell apart.

use std::ops::Range;
use std::time::Instant;

use scepd_pki::algorithms::{ContentCipher, KeyTransport};
use scepd_pki::cms::CmsError;
use scepd_pki::cms::enveloped_data::{self, EnvelopedData};
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::random::{Random, SystemRandom};
use scepd_pki::scep::client::CertRepOutcome;
use scepd_pki::scep::{Envelope, FailInfo, Recipient};
use scepd_pki::x509::Certificate;

use super::testkit::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    /// encryptedKey replaced by random octets: RSA v1.5 unpadding fails.
    Rsa,
    /// A flipped bit in the penultimate ciphertext block flips the padding octet.
    Padding,
    /// A well-formed envelope around octets that are not a CSR.
    Content,
}

const ALL: [Bad; 3] = [Bad::Rsa, Bad::Padding, Bad::Content];

fn offset_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// An AES-128 / RSA v1.5 envelope to `ra` that fails in the way `bad` says.
fn bad_envelope(ra: &Certificate<'_>, csr: &[u8], bad: Bad) -> Vec<u8> {
    let content: &[u8] = if bad == Bad::Content {
        b"\x30\x0b this is not a certification request"
    } else {
        csr
    };
    let mut env = enveloped_data::build(
        content,
        ra,
        KeyTransport::RsaPkcs1v15,
        ContentCipher::Aes128Cbc,
        &SystemRandom,
    )
    .unwrap();
    match bad {
        Bad::Rsa => {
            let r = {
                let ed = EnvelopedData::parse(&env).unwrap();
                offset_in(&env, ed.recipients[0].encrypted_key)
            };
            SystemRandom.fill(&mut env[r]).unwrap();
        }
        Bad::Padding => {
            // Our builder ends the envelope with the ciphertext.
            let n = env.len();
            env[n - 17] ^= 0x80;
        }
        Bad::Content => {}
    }
    env
}

#[test]
fn rsa_padding_and_content_failures_get_the_same_answer() {
    let server = Server::start();
    let ca = server.ca_certs();
    let ra = Certificate::parse(&ca.ra).unwrap();
    let device = Device::new("oracle managementAttestation O-1");
    let csr = device.csr(Some(&server.challenge), &[]);
    let mut answers = Vec::new();
    for bad in ALL {
        for _ in 0..3 {
            let req = device.sign_envelope(&ra, &bad_envelope(&ra, &csr, bad));
            let r = server.pki_operation(&req.der);
            assert_eq!(
                r.status,
                200,
                "{bad:?}: {}",
                String::from_utf8_lossy(&r.body)
            );
            match device.decode(&ca, &req, &r.body, None) {
                CertRepOutcome::Failure { fail_info, text } => {
                    answers.push((bad, fail_info, text));
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
    for (bad, fail_info, text) in &answers {
        assert_eq!(*fail_info, FailInfo::BadMessageCheck, "{bad:?}");
        assert_eq!(
            text.as_deref(),
            Some("could not decrypt or parse the request"),
            "{bad:?}"
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q) as usize]
}

/// Times the server-side steps after the signature check (open the envelope, parse and verify
/// the CSR) for each failure kind, interleaved so drift hits all alike. Fails only on a clear
/// separation: medians further apart than the interquartile spread and more than 25 %.
#[test]
fn failure_timings_are_not_clearly_separated() {
    let spec = scepd_pki::ca::hierarchy::HierarchySpec {
        organization: "Oracle".into(),
        root_key: KeyAlgorithm::EcP256,
        intermediate_key: KeyAlgorithm::EcP256,
        ra_key: KeyAlgorithm::Rsa2048,
        root_validity_secs: 86_400,
        intermediate_validity_secs: 86_400,
        ra_validity_secs: 86_400,
        now: unix_now(),
    };
    let h = scepd_pki::ca::hierarchy::bootstrap(&spec, &SystemRandom).unwrap();
    let ra = Certificate::parse(&h.ra.cert_der).unwrap();
    let device = Device::new("timing");
    let csr = device.csr(Some("x"), &[]);
    const N: usize = 150;
    let reqs: Vec<(Bad, Vec<u8>)> = (0..N)
        .flat_map(|_| {
            ALL.map(|b| {
                (
                    b,
                    device.sign_envelope(&ra, &bad_envelope(&ra, &csr, b)).der,
                )
            })
        })
        .collect();
    // Sanity: each kind fails where it should.
    for (bad, der) in reqs.iter().take(3) {
        let msg = Envelope::decode(der).unwrap();
        let recipients = [Recipient {
            cert: ra.clone(),
            key: &h.ra.key,
        }];
        let opened = msg.open(&recipients, false, &SystemRandom);
        match bad {
            Bad::Padding => assert!(matches!(opened, Err(CmsError::Decrypt))),
            Bad::Content => assert!(opened.unwrap().request().is_err()),
            Bad::Rsa => {} // usually Decrypt; 1 in ~256 a random CEK unpads, then the CSR fails
        }
    }
    let time = |der: &[u8], key: &SoftwareKey| {
        let msg = Envelope::decode(der).unwrap();
        let recipients = [Recipient {
            cert: ra.clone(),
            key,
        }];
        let t0 = Instant::now();
        let failed = match msg.open(&recipients, false, &SystemRandom) {
            Ok(o) => o.request().is_err(),
            Err(_) => true,
        };
        let dt = t0.elapsed().as_secs_f64() * 1e6;
        assert!(failed);
        dt
    };
    // Warm-up.
    for (_, der) in reqs.iter().take(30) {
        time(der, &h.ra.key);
    }
    let mut samples: [Vec<f64>; 3] = Default::default();
    for (bad, der) in &reqs {
        let i = ALL.iter().position(|b| b == bad).unwrap();
        samples[i].push(time(der, &h.ra.key));
    }
    let mut report = Vec::new();
    let stats: Vec<(f64, f64)> = samples
        .iter_mut()
        .zip(ALL)
        .map(|(s, b)| {
            let m = median(s);
            let iqr = quantile(s, 0.75) - quantile(s, 0.25);
            report.push(format!("{b:?}: median {m:.0} µs, IQR {iqr:.0} µs"));
            (m, iqr)
        })
        .collect();
    eprintln!("oracle timing ({N} each): {}", report.join("; "));
    for i in 0..3 {
        for j in i + 1..3 {
            let (mi, qi) = stats[i];
            let (mj, qj) = stats[j];
            let gap = (mi - mj).abs();
            let clearly_apart = gap > qi.max(qj) && gap > 0.25 * mi.max(mj);
            assert!(
                !clearly_apart,
                "{:?} and {:?} are distinguishable by time: {}",
                ALL[i],
                ALL[j],
                report.join("; ")
            );
        }
    }
}
