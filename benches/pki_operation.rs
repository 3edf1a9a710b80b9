//! The CSR-processing hot path as the server runs it (decode → verify signer → decrypt → parse
//! and verify CSR → authorize (static) → issue → store → CertRep), its stages, and GetCACert.
//! Run: `cargo bench --bench pki_operation`. Figures and machine go to BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use scepd::authority::Authority;
use scepd::bootstrap;
use scepd::ca::CaHandle;
use scepd::config::{Config, FileConfig};
use scepd::keystore::Keystore;
use scepd::store::{NewCertificate, Store};
use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::der::oid;
use scepd_pki::keys::{KeyAlgorithm, Signer, SoftwareKey};
use scepd_pki::pkcs10;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{Protection, RequestBuilder, self_signed_signer};
use scepd_pki::scep::{MessageType, PkiMessage, TransactionId};
use scepd_pki::x509::{Certificate, name};

struct Fixture {
    authority: Authority,
    store: Arc<Store>,
    platform: scepd::store::Platform,
    ra_der: Vec<u8>,
    challenge: String,
    device: SoftwareKey,
    signer_der: Vec<u8>,
    subject: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture(intermediate: KeyAlgorithm) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut fc = FileConfig::default();
    fc.pki.intermediate_key = Some(intermediate.as_str().to_owned());
    fc.pki.root_key = Some("ecdsa-p256".into());
    let config = Config::from_file(fc, Some(dir.path().join("d")), None).unwrap();
    let store = bootstrap::open_store(&config).unwrap();
    let created = bootstrap::initialize(&config, &store, now()).unwrap();
    let store = Arc::new(store);
    let ca = CaHandle::load(&store, Keystore::from_config(&config).unwrap(), true, now()).unwrap();
    let ra_der = ca.get().ra.cert_der.clone();
    let timing = scepd::revocation::RevocationTiming {
        crl_validity_secs: 86_400,
        ocsp_validity_secs: 3600,
    };
    let revocation = Arc::new(scepd::revocation::Revocation::new(
        store.clone(),
        ca.clone(),
        timing,
    ));
    let authority = Authority::new(
        &config,
        "http://127.0.0.1:8080",
        store.clone(),
        ca,
        revocation,
    );
    let platform = store.platform(&created.platform_id).unwrap().unwrap();
    let store = store.clone();
    let (device, _) = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "bench managementAttestation B-1")]);
    let signer_der = self_signed_signer(&device, &subject, now(), &SystemRandom).unwrap();
    Fixture {
        authority,
        store,
        platform,
        ra_der,
        challenge: created.challenge.clone(),
        device,
        signer_der,
        subject,
        _dir: dir,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh PKCSReq (new transactionID, so the server issues rather than replays).
fn request(f: &Fixture, p: Protection) -> Vec<u8> {
    let ra = Certificate::parse(&f.ra_der).unwrap();
    let signer = Certificate::parse(&f.signer_der).unwrap();
    let mut tid = [0u8; 16];
    aws_lc_rs::rand::fill(&mut tid).unwrap();
    let csr = pkcs10::build(
        &f.subject,
        &f.device,
        DigestAlg::Sha256,
        Some(&f.challenge),
        &[],
    )
    .unwrap();
    RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new(&scepd_pki::hex(&tid)).unwrap(),
        signer_cert: &signer,
        signer_key: &f.device,
        recipient: &ra,
        protection: p,
        rng: &SystemRandom,
        signing_time: Some(now()),
    }
    .build(&csr)
    .unwrap()
    .der
}

fn bench(c: &mut Criterion) {
    let protections = [
        (
            "aes128-v15-sha256",
            Protection {
                cipher: ContentCipher::Aes128Cbc,
                transport: KeyTransport::RsaPkcs1v15,
                digest: DigestAlg::Sha256,
            },
        ),
        (
            "aes256-oaep-sha256",
            Protection {
                cipher: ContentCipher::Aes256Cbc,
                transport: KeyTransport::RsaOaep(DigestAlg::Sha1),
                digest: DigestAlg::Sha256,
            },
        ),
        (
            "3des-v15-sha256",
            Protection {
                cipher: ContentCipher::DesEde3Cbc,
                transport: KeyTransport::RsaPkcs1v15,
                digest: DigestAlg::Sha256,
            },
        ),
    ];
    for (int_name, int_alg) in [
        ("rsa2048-ca", KeyAlgorithm::Rsa2048),
        ("p256-ca", KeyAlgorithm::EcP256),
    ] {
        let f = fixture(int_alg);
        let mut g = c.benchmark_group(format!("pki_operation/{int_name}"));
        g.sample_size(30);
        for (pname, p) in protections {
            g.bench_function(pname, |b| {
                b.iter_batched(
                    || request(&f, p),
                    |req| f.authority.pki_operation(&f.platform, &req, now()).unwrap(),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
    let f = fixture(KeyAlgorithm::Rsa2048);
    let p = protections[0].1;
    let ra = Certificate::parse(&f.ra_der).unwrap();
    let ra_key = SoftwareKey::from_pkcs8(&std::fs::read(keyfile(&f)).unwrap()).unwrap();
    let req = request(&f, p);
    let mut g = c.benchmark_group("stage");
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(3));
    g.bench_function("decode_verify", |b| {
        b.iter(|| PkiMessage::decode(&req).unwrap())
    });
    let msg = PkiMessage::decode(&req).unwrap();
    g.bench_function("open_envelope_rsa2048", |b| {
        b.iter(|| msg.open(&ra, &ra_key, false, &SystemRandom).unwrap())
    });
    let opened = msg.open(&ra, &ra_key, false, &SystemRandom).unwrap();
    g.bench_function("parse_verify_csr", |b| {
        b.iter(|| pkcs10::CertificationRequest::parse_and_verify(&opened.message_data).unwrap())
    });
    let int_der = f
        .store
        .active_authority(scepd::store::CaRole::Intermediate)
        .unwrap()
        .unwrap();
    let int_key =
        SoftwareKey::from_pkcs8(&std::fs::read(keyfile_for(&f, "intermediate-")).unwrap()).unwrap();
    g.bench_function("parse_ra_and_intermediate_certs", |b| {
        b.iter(|| {
            (
                Certificate::parse(&f.ra_der).unwrap().spki.len(),
                Certificate::parse(&int_der.cert_der).unwrap().spki.len(),
            )
        })
    });
    let csr = pkcs10::CertificationRequest::parse_and_verify(&opened.message_data).unwrap();
    let int_cert = Certificate::parse(&int_der.cert_der).unwrap();
    let profile = scepd_pki::issue::DeviceProfile::default();
    g.bench_function("issue_certificate_rsa2048_ca", |b| {
        b.iter(|| {
            scepd_pki::issue::issue_device_certificate(
                &csr,
                &profile,
                &int_cert,
                &int_key,
                now(),
                &SystemRandom,
            )
            .unwrap()
        })
    });
    let issued = scepd_pki::issue::issue_device_certificate(
        &csr,
        &profile,
        &int_cert,
        &int_key,
        now(),
        &SystemRandom,
    )
    .unwrap();
    g.bench_function("cert_rep_success_rsa2048_ra", |b| {
        let signer = scepd_pki::scep::CertRepSigner {
            ra_cert: &ra,
            ra_key: &ra_key,
            rng: &SystemRandom,
            now: now(),
        };
        b.iter(|| {
            signer
                .success(
                    &msg.header,
                    &msg.signer_cert,
                    opened.cipher,
                    opened.transport,
                    &[issued.der.as_slice()],
                    &[],
                )
                .unwrap()
        })
    });
    g.bench_function("rsa2048_sign_sha256", |b| {
        b.iter(|| ra_key.sign(DigestAlg::Sha256, &req[..512]).unwrap())
    });
    // One committed INSERT transaction as PKIOperation runs it (WAL, synchronous=NORMAL).
    let mut n = 0u64;
    g.bench_function("store_record_issuance", |b| {
        b.iter(|| {
            n += 1;
            let rec = NewCertificate {
                serial: [&[0x42u8][..], &n.to_be_bytes()].concat(),
                issuer_id: int_der.id.clone(),
                platform_id: f.platform.id.clone(),
                transaction_id: format!("bench-{n}"),
                public_key_sha256: DigestAlg::Sha256.digest(csr.spki).as_ref().to_vec(),
                device_id: None,
                user: None,
                subject: issued.subject.clone(),
                sans: Vec::new(),
                not_before: issued.not_before,
                not_after: issued.not_after,
                der: issued.der.clone(),
                requested_at: now(),
            };
            f.store.record_issuance(&rec).unwrap()
        })
    });
    g.bench_function("store_certificate_by_transaction_miss", |b| {
        b.iter(|| {
            f.store
                .certificate_by_transaction(&f.platform.id, "no-such-transaction")
                .unwrap()
        })
    });
    g.finish();
    c.bench_function("get_ca_cert", |b| b.iter(|| f.authority.ca_cert().len()));
    let _ = f.device.public_key_der();
}

fn keyfile(f: &Fixture) -> std::path::PathBuf {
    keyfile_for(f, "ra-")
}

fn keyfile_for(f: &Fixture, prefix: &str) -> std::path::PathBuf {
    let dir = f._dir.path().join("d").join("keys");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
