//! The CSR-processing hot path as the server runs it (decode → verify signer → decrypt → parse
//! and verify CSR → authorize (static) → issue → store → CertRep) for RSA-2048 and RSA-3072
//! devices, its stages, issuance commits (FULL and NORMAL, alone and 8 concurrent), OCSP
//! through the server's responder (signed and reused), and GetCACert over the server's HTTP
//! listener.
//! Run: `cargo bench --bench pki_operation`. Figures and machine go to BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use http_body_util::{BodyExt, Empty};
use scepd::authority::Authority;
use scepd::ca::CaHandle;
use scepd::ca::bootstrap;
use scepd::ca::keystore::Keystore;
use scepd::config::{Config, FileConfig};
use scepd::configured_store;
use scepd::revocation::Revocation;
use scepd::store::{CertificateFacts, Issuance, NewCertificate, Store};
use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::der::oid;
use scepd_pki::keys::{KeyAlgorithm, Signer, SoftwareKey};
use scepd_pki::pkcs10;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::client::{Protection, RequestBuilder, self_signed_signer};
use scepd_pki::scep::{Envelope, MessageType, Recipient, TransactionId};
use scepd_pki::x509::{Certificate, name};

struct Fixture {
    config: Config,
    ca: Arc<CaHandle>,
    revocation: Arc<Revocation>,
    authority: Authority,
    store: Arc<Store>,
    platform: scepd::store::Platform,
    ra_der: Vec<u8>,
    challenge: String,
    device: Device,
    subject: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// A requester: its key and the self-signed certificate it signs the PKCSReq with.
struct Device {
    key: SoftwareKey,
    signer_der: Vec<u8>,
}

fn device(alg: KeyAlgorithm, subject: &[u8]) -> Device {
    let (key, _) = SoftwareKey::generate(alg).unwrap();
    let signer_der = self_signed_signer(&key, subject, now(), &SystemRandom).unwrap();
    Device { key, signer_der }
}

/// `full_durability` picks the store's synchronous mode explicitly: the config default became
/// FULL after the figures in BENCHMARKS.md were taken with NORMAL.
fn fixture(intermediate: KeyAlgorithm, full_durability: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut fc = FileConfig::default();
    fc.pki.intermediate_key = Some(intermediate.as_str().to_owned());
    fc.pki.root_key = Some("ecdsa-p256".into());
    fc.store.synchronous = Some(if full_durability { "full" } else { "normal" }.into());
    let config = Config::from_file(
        fc,
        scepd::config::Overrides {
            data_dir: Some(dir.path().join("d")),
            ..Default::default()
        },
    )
    .unwrap();
    let store = configured_store::open(&config).unwrap();
    let keystore = Keystore::from_config(&config).unwrap();
    let created = bootstrap::initialize(&config, &store, &keystore, now()).unwrap();
    let store = Arc::new(store);
    let ca = CaHandle::load(
        &store,
        Keystore::from_config(&config).unwrap(),
        scepd::ca::Publish::of(&config),
        now(),
    )
    .unwrap();
    let ra_der = ca.get().ra.cert.der().to_vec();
    let timing = scepd::revocation::RevocationTiming {
        crl_validity_secs: 86_400,
        ocsp_validity_secs: 3600,
    };
    let revocation = Arc::new(Revocation::new(store.clone(), ca.clone(), timing));
    let authority = Authority::new(
        &config,
        "http://127.0.0.1:8080",
        store.clone(),
        ca.clone(),
        revocation.clone(),
    );
    let platform = store.platform(&created.platform_id).unwrap().unwrap();
    let store = store.clone();
    let subject = name::build(&[(oid::AT_COMMON_NAME, "bench managementAttestation B-1")]);
    let device = device(KeyAlgorithm::Rsa2048, &subject);
    Fixture {
        config,
        ca,
        revocation,
        authority,
        store,
        platform,
        ra_der,
        challenge: created.challenge.clone(),
        device,
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

/// A fresh PKCSReq from `dev` (new transactionID, so the server issues rather than replays).
fn request(f: &Fixture, dev: &Device, p: Protection) -> Vec<u8> {
    let ra = Certificate::parse(&f.ra_der).unwrap();
    let signer = Certificate::parse(&dev.signer_der).unwrap();
    let mut tid = [0u8; 16];
    aws_lc_rs::rand::fill(&mut tid).unwrap();
    let csr = pkcs10::build(
        &f.subject,
        &dev.key,
        DigestAlg::Sha256,
        Some(&f.challenge),
        &[],
    )
    .unwrap();
    RequestBuilder {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId::new(&scepd_pki::hex(&tid)).unwrap(),
        signer_cert: &signer,
        signer_key: &dev.key,
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
    // Generated once: RSA-3072 key generation takes seconds. The subject is the fixtures' own.
    let subject = name::build(&[(oid::AT_COMMON_NAME, "bench managementAttestation B-1")]);
    let dev3072 = device(KeyAlgorithm::Rsa3072, &subject);
    for (int_name, int_alg) in [
        ("rsa2048-ca", KeyAlgorithm::Rsa2048),
        ("p256-ca", KeyAlgorithm::EcP256),
    ] {
        // NORMAL, as when the published figures were taken; the FULL commit is store_commit/*.
        let f = fixture(int_alg, false);
        let mut g = c.benchmark_group(format!("pki_operation/{int_name}"));
        g.sample_size(30);
        // RSA-2048 devices keep the unprefixed names, so older figures stay comparable.
        for (pname, p) in protections {
            g.bench_function(pname, |b| {
                b.iter_batched(
                    || request(&f, &f.device, p),
                    |req| {
                        f.authority
                            .pki_operation(&f.platform.id, &req, now())
                            .unwrap()
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        if int_alg == KeyAlgorithm::Rsa2048 {
            for (pname, p) in &protections[..2] {
                g.bench_function(format!("rsa3072-dev/{pname}"), |b| {
                    b.iter_batched(
                        || request(&f, &dev3072, *p),
                        |req| {
                            f.authority
                                .pki_operation(&f.platform.id, &req, now())
                                .unwrap()
                        },
                        BatchSize::SmallInput,
                    )
                });
            }
        }
        g.finish();
    }
    let f = fixture(KeyAlgorithm::Rsa2048, false);
    let p = protections[0].1;
    let ra = Certificate::parse(&f.ra_der).unwrap();
    // The server's own loaded keys: the key files are encrypted at rest (PBES2), not plain
    // PKCS#8.
    let ca_set = f.ca.get();
    let ra_key = &ca_set.ra.key;
    let req = request(&f, &f.device, p);
    let mut g = c.benchmark_group("stage");
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(3));
    g.bench_function("decode_verify", |b| {
        b.iter(|| Envelope::decode(&req).unwrap())
    });
    let msg = Envelope::decode(&req).unwrap();
    let recipients = [Recipient {
        cert: ra.clone(),
        key: ra_key,
    }];
    g.bench_function("open_envelope_rsa2048", |b| {
        b.iter(|| msg.open(&recipients, false, &SystemRandom).unwrap())
    });
    let opened = msg.open(&recipients, false, &SystemRandom).unwrap();
    g.bench_function("parse_verify_csr", |b| {
        b.iter(|| pkcs10::Csr::parse_and_verify(opened.message_data()).unwrap())
    });
    let int_der = f
        .store
        .active_authority(scepd::store::CaRole::Intermediate)
        .unwrap()
        .unwrap();
    let int_key = &ca_set.intermediate.key;
    g.bench_function("parse_ra_and_intermediate_certs", |b| {
        b.iter(|| {
            (
                Certificate::parse(&f.ra_der).unwrap().spki.len(),
                Certificate::parse(&int_der.cert_der).unwrap().spki.len(),
            )
        })
    });
    // What the server does instead since the CA set keeps its certificates parsed.
    g.bench_function("view_parsed_ra_and_intermediate_certs", |b| {
        b.iter(|| {
            (
                ca_set.ra.cert.get().spki.len(),
                ca_set.intermediate.cert.get().spki.len(),
            )
        })
    });
    let csr = pkcs10::Csr::parse_and_verify(opened.message_data()).unwrap();
    let int_cert = Certificate::parse(&int_der.cert_der).unwrap();
    let profile = scepd_pki::issue::DeviceProfile::default();
    g.bench_function("issue_certificate_rsa2048_ca", |b| {
        b.iter(|| {
            scepd_pki::issue::issue_device_certificate(
                &csr,
                &profile,
                &int_cert,
                int_key,
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
        int_key,
        now(),
        &SystemRandom,
    )
    .unwrap();
    g.bench_function("cert_rep_success_rsa2048_ra", |b| {
        let signer = scepd_pki::scep::CertRepSigner {
            ra_cert: &ra,
            ra_key,
            rng: &SystemRandom,
            now: now(),
        };
        let request = opened.request().unwrap();
        b.iter(|| {
            request
                .success(&signer, &[issued.der.as_slice()], &[])
                .unwrap()
        })
    });
    g.bench_function("rsa2048_sign_sha256", |b| {
        b.iter(|| ra_key.sign(DigestAlg::Sha256, &req[..512]).unwrap())
    });
    // The certificate row of one issuance; each benchmark fills in unique ids.
    let template = NewCertificate {
        facts: CertificateFacts {
            serial: Vec::new(),
            issuer_id: String::new(),
            platform_id: String::new(),
            transaction_id: String::new(),
            public_key_sha256: DigestAlg::Sha256.digest(csr.request.spki).as_ref().to_vec(),
            device_id: None,
            subject: issued.subject.clone(),
            sans: Vec::new(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            der: issued.der.clone(),
            requested_at: now(),
        },
        signer_key_sha256: DigestAlg::Sha256.digest(csr.request.spki).as_ref().to_vec(),
        request_sha256: DigestAlg::Sha256.digest(csr.request.spki).as_ref().to_vec(),
        held: false,
        user: None,
    };
    // One committed INSERT transaction as PKIOperation runs it (WAL, synchronous=NORMAL,
    // SQLite's automatic checkpoints).
    let mut n = 0u64;
    g.bench_function("store_record_issuance", |b| {
        b.iter(|| {
            n += 1;
            let rec = NewCertificate {
                facts: CertificateFacts {
                    serial: [&[0x42u8][..], &n.to_be_bytes()].concat(),
                    issuer_id: int_der.id.clone(),
                    platform_id: f.platform.id.clone(),
                    transaction_id: format!("bench-{n}"),
                    ..template.clone().facts
                },
                ..template.clone()
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
    // The replay check PKIOperation runs before signing (two index probes).
    g.bench_function("store_match_transaction_miss", |b| {
        b.iter(|| {
            f.store
                .match_transaction(&f.platform.id, "no-such-transaction", &[7; 32], &[7; 32])
                .unwrap()
        })
    });
    g.finish();

    // A certificate of its own: with a benchmark filter the stage benches may not have run.
    let serial = vec![0x43u8, 1];
    f.store
        .record_issuance(&NewCertificate {
            facts: CertificateFacts {
                serial: serial.clone(),
                issuer_id: int_der.id.clone(),
                platform_id: f.platform.id.clone(),
                transaction_id: "bench-ocsp".into(),
                ..template.clone().facts
            },
            ..template.clone()
        })
        .unwrap();
    ocsp_responder(c, &f, &int_cert, &serial);
    store_commit(c, &template);

    // Only the prebuilt body being handed over; get_ca_cert_http_loopback is the request.
    c.bench_function("get_ca_cert", |b| b.iter(|| f.authority.ca_cert().len()));
    get_ca_cert_http(c, &f);
    let _ = f.device.key.public_key_der();
}

/// OCSP as the server answers it (`Revocation::ocsp`: parse, store lookup, sign or reuse) for
/// `serial`, an issued certificate of `issuer`: with a nonce (signed every time) and without
/// (answered from the cache of earlier responses, `ocsp_cache.rs`).
fn ocsp_responder(c: &mut Criterion, f: &Fixture, issuer: &Certificate<'_>, serial: &[u8]) {
    use scepd_pki::revocation::ocsp::build_request;
    let mut g = c.benchmark_group("ocsp_responder");
    for (name, nonce) in [
        ("rsa2048-ca/signed_with_nonce", Some(&[7u8; 16][..])),
        ("rsa2048-ca/reused_without_nonce", None),
    ] {
        let req = build_request(issuer, serial, nonce).unwrap();
        let first = f.revocation.ocsp(&req, now(), &|| true);
        assert!(!first.reused);
        // The certificate must be known ("good"): unknown answers are never reused and a
        // wrong CertID would measure a short error path.
        let again = f.revocation.ocsp(&req, now(), &|| true);
        assert_eq!(again.reused, nonce.is_none());
        g.bench_function(name, |b| {
            b.iter(|| f.revocation.ocsp(&req, now(), &|| true).der.len())
        });
    }
    g.finish();
}

/// Issuance commits as the server makes them: checkpoints deferred (the server runs them on
/// a timer, so here they run untimed before each batch), FULL and NORMAL, one issuance alone
/// and 8 at once. 8 concurrent issuances share commits (store/group_commit.rs), so
/// `8-concurrent` divided by 8 (criterion's elem/s) is the per-issuance cost under load.
fn store_commit(c: &mut Criterion, template: &NewCertificate) {
    // A store of its own: deferring checkpoints would otherwise leak into the benches above.
    let f = fixture(KeyAlgorithm::EcP256, true);
    f.store.defer_checkpoints().unwrap();
    let issuer = f
        .store
        .active_authority(scepd::store::CaRole::Intermediate)
        .unwrap()
        .unwrap();
    let template = NewCertificate {
        facts: CertificateFacts {
            issuer_id: issuer.id,
            platform_id: f.platform.id.clone(),
            ..template.clone().facts
        },
        ..template.clone()
    };
    // Every record needs its own serial and transactionID, across both modes and all threads.
    let next = AtomicU64::new(1);
    let record = || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        NewCertificate {
            facts: CertificateFacts {
                serial: [&[0x43u8][..], &n.to_be_bytes()].concat(),
                transaction_id: format!("commit-{n}"),
                ..template.clone().facts
            },
            ..template.clone()
        }
    };
    let mut g = c.benchmark_group("store_commit");
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for (mode, full) in [("full", true), ("normal", false)] {
        f.store.set_full_durability(full).unwrap();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{mode}/1-issuance"), |b| {
            b.iter_custom(|iters| {
                f.store.checkpoint().unwrap();
                let records: Vec<_> = (0..iters).map(|_| record()).collect();
                let start = Instant::now();
                for r in &records {
                    assert!(matches!(f.store.record_issuance(r), Ok(Issuance::Recorded)));
                }
                start.elapsed()
            })
        });
        g.throughput(Throughput::Elements(CONCURRENT as u64));
        concurrent_issuances(&mut g, &format!("{mode}/8-concurrent"), &f.store, &record);
    }
    g.finish();
}

const CONCURRENT: usize = 8;

/// Times `CONCURRENT` threads recording one issuance each, released together, until the last
/// is recorded. The threads live for the whole benchmark so that spawning is not measured.
fn concurrent_issuances(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    store: &Store,
    record: &(dyn Fn() -> NewCertificate + Sync),
) {
    // The main thread takes part in both barriers: `start` releases a round, `done` ends it.
    let start = Barrier::new(CONCURRENT + 1);
    let done = Barrier::new(CONCURRENT + 1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..CONCURRENT {
            s.spawn(|| {
                loop {
                    // Built before the release, so only the recording is timed.
                    let r = record();
                    start.wait();
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if !matches!(store.record_issuance(&r), Ok(Issuance::Recorded)) {
                        // Panicking would leave the others waiting at the barrier forever.
                        eprintln!("store_commit: an issuance was not recorded");
                        std::process::exit(1);
                    }
                    done.wait();
                }
            });
        }
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                store.checkpoint().unwrap();
                let t = Instant::now();
                for _ in 0..iters {
                    start.wait();
                    done.wait();
                }
                t.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        start.wait();
    });
}

/// One GetCACert through the server's own listener (`http::serve`, the router, the SCEP
/// handler) over a kept-alive loopback HTTP/1.1 connection. The router takes hyper's
/// `Incoming` body, which only a connection produces, so there is no socket-free way in.
fn get_ca_cert_http(c: &mut Criterion, f: &Fixture) {
    use scepd::http::{self, App};
    let config = &f.config;
    let authority = Authority::new(
        config,
        "http://127.0.0.1:8080",
        f.store.clone(),
        f.ca.clone(),
        f.revocation.clone(),
    );
    let trust = scepd::trust::TrustCheck::new(f.store.clone(), f.ca.clone(), 0).unwrap();
    let app = Arc::new(App::new(config, authority, trust, Default::default()));
    let bounds = app.conn_limits();
    // Built like the server's runtime (multi-threaded, all drivers).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let uri = format!("/scep/{}?operation=GetCACert", f.platform.id);
    let expected = f.authority.ca_cert();
    let mut sender = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Never shut down: dropping the runtime at the end of this function ends it.
        tokio::spawn(http::serve(
            listener,
            app,
            bounds,
            None,
            std::future::pending(),
        ));
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    });
    let get = |sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>| {
        let req = hyper::Request::get(uri.as_str())
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Empty::new())
            .unwrap();
        rt.block_on(async {
            sender.ready().await.unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), hyper::StatusCode::OK);
            resp.into_body().collect().await.unwrap().to_bytes()
        })
    };
    // The route must be the real one, not a 404 that would be faster.
    assert_eq!(get(&mut sender), expected);
    c.bench_function("get_ca_cert_http_loopback", |b| {
        b.iter(|| get(&mut sender).len())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
