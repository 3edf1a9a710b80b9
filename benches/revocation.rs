//! CRL build with 100k revoked entries and OCSP request → signed response.
//! Run: `cargo bench --bench revocation`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use scepd_pki::der::oid;
use scepd_pki::keys::{KeyAlgorithm, SoftwareKey};
use scepd_pki::revocation::RevocationReason;
use scepd_pki::revocation::crl::{self, CrlParams, RevokedEntry};
use scepd_pki::revocation::ocsp::{self, CertStatus, IssuerHashes, Responder, SingleResponse};
use scepd_pki::x509::{Certificate, name};

fn bench(c: &mut Criterion) {
    for (label, alg) in [
        ("rsa2048", KeyAlgorithm::Rsa2048),
        ("p256", KeyAlgorithm::EcP256),
    ] {
        let (key, _) = SoftwareKey::generate(alg).unwrap();
        let subject = name::build(&[(oid::AT_COMMON_NAME, "Bench CA")]);
        let ca_der = scepd_pki::ca::hierarchy::certify(
            &subject,
            &key,
            None,
            alg,
            0,
            4_000_000_000,
            vec![],
            &scepd_pki::random::SystemRandom,
        )
        .unwrap();
        let ca = Certificate::parse(&ca_der).unwrap();
        let entries: Vec<RevokedEntry> = (0u32..100_000)
            .map(|i| {
                let mut serial = vec![0x41u8; 16];
                serial[12..].copy_from_slice(&i.to_be_bytes());
                RevokedEntry {
                    serial,
                    revoked_at: 1_790_000_000 + i64::from(i),
                    reason: if i % 2 == 0 {
                        RevocationReason::CessationOfOperation
                    } else {
                        RevocationReason::KeyCompromise
                    },
                }
            })
            .collect();
        let params = CrlParams {
            issuer: ca.subject,
            issuer_key_id: &[1u8; 20],
            number: 1,
            this_update: 1_795_000_000,
            next_update: 1_795_086_400,
            entries: &entries,
        };
        let mut g = c.benchmark_group(format!("crl/{label}"));
        g.sample_size(20);
        g.bench_function("build_100k_entries", |b| {
            b.iter(|| crl::build(&params, &key).unwrap().len())
        });
        g.finish();

        let hashes = IssuerHashes::new(&ca).unwrap();
        let req = ocsp::build_request(&ca, &[0x41; 16], Some(&[7u8; 16])).unwrap();
        c.bench_function(&format!("ocsp/{label}/parse_and_sign"), |b| {
            b.iter(|| {
                let parsed = ocsp::parse_request(&req).unwrap();
                assert!(hashes.matches(&parsed.cert_ids[0]));
                let answers = [SingleResponse {
                    cert_id: &parsed.cert_ids[0],
                    status: CertStatus::Good,
                    this_update: 1_795_000_000,
                    next_update: Some(1_795_003_600),
                }];
                let r = Responder {
                    key_hash: &hashes.key_sha1,
                    key: &key,
                    certs: &[],
                };
                ocsp::build_response(&r, &answers, 1_795_000_000, parsed.nonce.as_deref())
                    .unwrap()
                    .len()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
