//! Test kit: a `scepd serve` child process on a free loopback port with a temp data dir, a tiny
//! HTTP/1.1 client, a SCEP device built on the pki crate's client side, and OpenSSL helpers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scepd_pki::algorithms::{ContentCipher, DigestAlg, KeyTransport};
use scepd_pki::cms::certs_only;
use scepd_pki::der::oid;
use scepd_pki::keys::{KeyAlgorithm, Signer, SoftwareKey};
use scepd_pki::pkcs10;
use scepd_pki::random::SystemRandom;
use scepd_pki::scep::MessageType;
use scepd_pki::scep::client::{
    CertRepOutcome, ClientRequest, Protection, RequestBuilder, decode_cert_rep, self_signed_signer,
    transaction_id_for_key,
};
use scepd_pki::x509::{Certificate, name};

pub use super::test_store::WithStore;

/// A running server, killed by PID on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    pub admin_addr: String,
    pub data_dir: tempfile::TempDir,
    pub platform_id: String,
    pub challenge: String,
    /// Where the server's stderr goes when started with [`Server::start_logging`].
    pub log_path: Option<PathBuf>,
    /// Extra `serve` arguments (kept for restarts).
    extra: Vec<String>,
    /// Command the server is started through (kept for restarts); empty: none.
    launcher: Vec<String>,
    /// False for a cluster node that shares another server's data dir and store.
    owns_store: bool,
}

pub fn scepd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_scepd")
}

impl Server {
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// Starts with a TOML config file body (empty for defaults).
    pub fn start_with_config(toml: &str) -> Self {
        Self::start_with_args(toml, &[])
    }

    /// Starts with a config body and extra `serve` arguments.
    pub fn start_with_args(toml: &str, extra: &[&str]) -> Self {
        Self::start_opts(toml, false, extra)
    }

    /// Starts with info-level logs captured to a file (read them with [`Server::log`]).
    pub fn start_logging(toml: &str) -> Self {
        Self::start_opts(toml, true, &[])
    }

    /// Starts `scepd serve` through `launcher` (a command that ends by running its arguments,
    /// e.g. a shell script ending in `exec "$@"`); `SCEPD_TEST_DIR` names the server's
    /// directory (config, data dir, log) in the launcher's environment.
    pub fn start_launched(toml: &str, launcher: &[&str]) -> Self {
        Self::start_full(toml, true, &[], launcher)
    }

    fn start_opts(toml: &str, capture_log: bool, extra: &[&str]) -> Self {
        Self::start_full(toml, capture_log, extra, &[])
    }

    /// Starts on a PostgreSQL database of its own whatever `SCEPD_TEST_STORE` says: the
    /// first node of a cluster ([`Server::join`] adds the others).
    pub fn start_on_postgres(toml: &str) -> Self {
        Self::start_prepared(toml, true, &[], &[], |dir| {
            super::test_store::use_postgres(&dir.join("data"))
        })
    }

    /// Starts with a config that names its own store (`[store]`): the suite's store
    /// selection stays out of it.
    pub fn start_with_own_store(toml: &str) -> Self {
        Self::start_prepared(toml, true, &[], &[], |dir| {
            super::test_store::configured_by_test(&dir.join("data"))
        })
    }

    /// Another node of this server's cluster: same config, same data dir (keys and secrets,
    /// linked), same database; its own listeners and log.
    pub fn join(&self) -> Self {
        self.join_with(|shared, data| std::os::unix::fs::symlink(shared, data).unwrap())
    }

    /// A node with a copy of this server's data dir as it is now (keys staged later are not
    /// in it), on the same database.
    pub fn join_with_copy(&self) -> Self {
        self.join_with(|shared, data| {
            let ok = Command::new("cp")
                .arg("-a")
                .arg(shared)
                .arg(data)
                .status()
                .unwrap()
                .success();
            assert!(ok, "cp -a {}", shared.display());
            super::test_store::share_database(data, shared);
        })
    }

    fn join_with(&self, make_data: impl FnOnce(&Path, &Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            self.data_dir.path().join("scepd.toml"),
            dir.path().join("scepd.toml"),
        )
        .unwrap();
        make_data(&self.data_path(), &dir.path().join("data"));
        let (child, addr, admin_addr, _) =
            spawn_serve(dir.path(), true, &self.extra, &self.launcher);
        Self {
            child,
            addr,
            admin_addr,
            platform_id: self.platform_id.clone(),
            challenge: self.challenge.clone(),
            log_path: Some(dir.path().join("scepd.log")),
            data_dir: dir,
            extra: self.extra.clone(),
            launcher: self.launcher.clone(),
            owns_store: false,
        }
    }

    fn start_full(toml: &str, capture_log: bool, extra: &[&str], launcher: &[&str]) -> Self {
        Self::start_prepared(toml, capture_log, extra, launcher, |_| {})
    }

    fn start_prepared(
        toml: &str,
        capture_log: bool,
        extra: &[&str],
        launcher: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        prepare(data_dir.path());
        let cfg = data_dir.path().join("scepd.toml");
        std::fs::write(&cfg, toml).unwrap();
        let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        let launcher: Vec<String> = launcher.iter().map(|a| (*a).to_owned()).collect();
        let (child, addr, admin_addr, platform) =
            spawn_serve(data_dir.path(), capture_log, &extra, &launcher);
        let log_path = capture_log.then(|| data_dir.path().join("scepd.log"));
        let p = platform.expect("first start prints the default platform");
        Self {
            child,
            addr,
            admin_addr,
            platform_id: p["platform_id"].as_str().unwrap().to_owned(),
            challenge: p["challenge"].as_str().unwrap().to_owned(),
            data_dir,
            log_path,
            extra,
            launcher,
            owns_store: true,
        }
    }

    /// The captured log (empty unless started with [`Server::start_logging`]).
    pub fn log(&self) -> String {
        self.log_path
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// `scepd platform add ARGS --json` against this server's data dir; the printed JSON.
    pub fn add_platform(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["platform", "add"];
        all.extend_from_slice(args);
        all.push("--json");
        self.cli_json(&all)
    }

    /// `scepd ARGS` against this server's data dir, which must succeed and print JSON.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "scepd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// GET with extra request headers.
    pub fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> HttpReply {
        http_with(&self.addr, "GET", path_and_query, headers, &[], None)
    }

    /// SIGKILLs the server (no shutdown of any kind); its data dir and store stay (other
    /// nodes may share them).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILLs the server (no shutdown of any kind) and starts it again on the same data dir
    /// and config; the address may change.
    pub fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr, admin_addr, _) = spawn_serve(
            self.data_dir.path(),
            self.log_path.is_some(),
            &self.extra,
            &self.launcher,
        );
        self.child = child;
        self.addr = addr;
        self.admin_addr = admin_addr;
    }

    pub fn data_path(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    pub fn scep_path(&self) -> String {
        format!("/scep/{}", self.platform_id)
    }

    pub fn scep_url(&self) -> String {
        format!("http://{}{}", self.addr, self.scep_path())
    }

    /// Runs the CLI against this server's data dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(scepd_bin())
            .args(args)
            .arg("--data-dir")
            .arg(self.data_path())
            .store_of(&self.data_path())
            .env("SCEPD_LOG", "warn")
            .output()
            .unwrap()
    }

    pub fn get(&self, path_and_query: &str) -> HttpReply {
        http(&self.addr, "GET", path_and_query, &[], None)
    }

    pub fn post(&self, path_and_query: &str, body: &[u8]) -> HttpReply {
        http(
            &self.addr,
            "POST",
            path_and_query,
            body,
            Some("application/x-pki-message"),
        )
    }

    pub fn pki_operation(&self, body: &[u8]) -> HttpReply {
        self.post(
            &format!("{}?operation=PKIOperation", self.scep_path()),
            body,
        )
    }

    /// RA, intermediate, root from GetCACert.
    pub fn ca_certs(&self) -> CaCerts {
        let r = self.get(&format!("{}?operation=GetCACert", self.scep_path()));
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/x-x509-ca-ra-cert");
        let (certs, _) = certs_only::parse(&r.body).unwrap();
        assert_eq!(certs.len(), 3, "RA, intermediate and root");
        CaCerts {
            ra: certs[0].to_vec(),
            intermediate: certs[1].to_vec(),
            root: certs[2].to_vec(),
        }
    }

    /// RA, intermediate and root out of a GetCACert list that may also carry the RA's
    /// encryption certificate (`[pki] encryption_ra`) after the RA.
    pub fn ca_certs_of(&self, certs: &[Vec<u8>]) -> CaCerts {
        let n = certs.len();
        assert!(n == 3 || n == 4, "{n} certificates");
        CaCerts {
            ra: certs[0].clone(),
            intermediate: certs[n - 2].clone(),
            root: certs[n - 1].clone(),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process is alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server (SIGTERM), writes `toml` as its config and starts it again on the
    /// same data dir (new ports; the platform and challenge stay).
    pub fn restart_with_config(&mut self, toml: &str) {
        assert!(self.terminate().is_some(), "scepd did not stop on SIGTERM");
        std::fs::write(self.data_dir.path().join("scepd.toml"), toml).unwrap();
        let (child, addr, admin_addr, _) = spawn_serve(
            self.data_dir.path(),
            self.log_path.is_some(),
            &self.extra,
            &self.launcher,
        );
        (self.child, self.addr, self.admin_addr) = (child, addr, admin_addr);
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

/// Spawns `scepd serve` on a data dir prepared by [`Server::start_opts`]; waits for the
/// listening lines. Returns the child, public address, admin address and first-start JSON.
fn spawn_serve(
    dir: &Path,
    capture_log: bool,
    extra: &[String],
    launcher: &[String],
) -> (Child, String, String, Option<serde_json::Value>) {
    let log_path = capture_log.then(|| dir.join("scepd.log"));
    let stderr = match &log_path {
        Some(p) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap(),
        ),
        None => Stdio::inherit(),
    };
    let mut command = match launcher.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(scepd_bin()).env("SCEPD_TEST_DIR", dir);
            c
        }
        None => Command::new(scepd_bin()),
    };
    let mut child = command
        .args([
            "serve",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("scepd.toml"))
        .args(extra)
        .store_of(&dir.join("data"))
        .env("SCEPD_LOG", if capture_log { "info" } else { "warn" })
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut platform = None;
    let mut admin_addr = String::new();
    let addr = loop {
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("scepd did not start within 60 s");
            }
        };
        if let Some(a) = line
            .strip_prefix("scepd admin listening on http://")
            .or_else(|| line.strip_prefix("scepd admin listening on https://"))
        {
            admin_addr = a.to_owned();
        }
        if let Some(a) = line.strip_prefix("scepd listening on http://") {
            break a.to_owned();
        }
        if line.starts_with('{') {
            platform = Some(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    };
    (child, addr, admin_addr, platform)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_store {
            super::test_store::forget(&self.data_path());
        }
    }
}

pub struct CaCerts {
    pub ra: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub root: Vec<u8>,
}

pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Status line and headers as received.
    pub head: String,
}

impl HttpReply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| l[prefix.len()..].trim().to_owned())
        })
    }
}

/// `Basic …` Authorization header value.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        scepd_pki::encoding::encode_base64(format!("{user}:{password}").as_bytes())
    )
}

/// Minimal HTTP/1.1 request with `Connection: close` and 30 s timeouts.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> HttpReply {
    http_with(addr, method, path, &[], body, content_type)
}

/// Like [`http`], with extra request headers.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    content_type: Option<&str>,
) -> HttpReply {
    exchange(
        TcpStream::connect(addr).unwrap(),
        addr,
        method,
        path,
        headers,
        body,
        content_type,
    )
}

/// Like [`http`], from local address `local` (any 127.0.0.0/8 address works on Linux's `lo`).
pub fn http_from(
    local: std::net::IpAddr,
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> HttpReply {
    exchange(
        connect_from(local, addr),
        addr,
        method,
        path,
        &[],
        body,
        content_type,
    )
}

/// A TCP connection to `addr` from local address `local` (bound before connecting).
pub fn connect_from(local: std::net::IpAddr, addr: &str) -> TcpStream {
    let server: std::net::SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
        let stream = socket.connect(server).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// One request with `Connection: close` on `s`; the reply read to the end.
fn exchange(
    mut s: TcpStream,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    content_type: Option<&str>,
) -> HttpReply {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    HttpReply {
        status,
        content_type,
        body: raw[split + 4..].to_vec(),
        head,
    }
}

/// A device: key, throwaway signer certificate and subject.
pub struct Device {
    pub key: SoftwareKey,
    pub pkcs8: Vec<u8>,
    pub signer_der: Vec<u8>,
    pub subject: Vec<u8>,
}

pub const DEFAULT_PROTECTION: Protection = Protection {
    cipher: ContentCipher::Aes128Cbc,
    transport: KeyTransport::RsaPkcs1v15,
    digest: DigestAlg::Sha256,
};

impl Device {
    pub fn new(cn: &str) -> Self {
        Self::with_key(cn, KeyAlgorithm::Rsa2048)
    }

    pub fn with_key(cn: &str, alg: KeyAlgorithm) -> Self {
        let (key, pkcs8) = SoftwareKey::generate(alg).unwrap();
        let subject = name::build(&[
            (oid::AT_ORGANIZATION, "Example Corp"),
            (oid::AT_COMMON_NAME, cn),
        ]);
        let signer_der = self_signed_signer(&key, &subject, unix_now(), &SystemRandom).unwrap();
        Self {
            key,
            pkcs8: pkcs8.to_vec(),
            signer_der,
            subject,
        }
    }

    pub fn csr(&self, challenge: Option<&str>, extensions: &[Vec<u8>]) -> Vec<u8> {
        pkcs10::build(
            &self.subject,
            &self.key,
            DigestAlg::Sha256,
            challenge,
            extensions,
        )
        .unwrap()
    }

    /// Builds a request of `kind` carrying `data`, signed with `signer` (default: own self-signed cert).
    pub fn request(
        &self,
        ca: &CaCerts,
        kind: MessageType,
        data: &[u8],
        p: Protection,
        signer: Option<(&[u8], &SoftwareKey)>,
    ) -> ClientRequest {
        let ra = Certificate::parse(&ca.ra).unwrap();
        let (signer_der, signer_key) = signer.unwrap_or((&self.signer_der, &self.key));
        let signer_cert = Certificate::parse(signer_der).unwrap();
        RequestBuilder {
            message_type: kind,
            transaction_id: transaction_id_for_key(self.key.public_key_der()).unwrap(),
            signer_cert: &signer_cert,
            signer_key,
            recipient: &ra,
            protection: p,
            rng: &SystemRandom,
            signing_time: Some(unix_now()),
        }
        .build(data)
        .unwrap()
    }

    /// A PKCSReq under a transaction ID of the caller's choosing (many enrollments of one
    /// key, each its own transaction: load without a key generation per request).
    pub fn pkcs_req_as(
        &self,
        ca: &CaCerts,
        challenge: Option<&str>,
        transaction_id: &str,
    ) -> ClientRequest {
        let ra = Certificate::parse(&ca.ra).unwrap();
        let signer_cert = Certificate::parse(&self.signer_der).unwrap();
        RequestBuilder {
            message_type: MessageType::PkcsReq,
            transaction_id: scepd_pki::scep::TransactionId::new(transaction_id).unwrap(),
            signer_cert: &signer_cert,
            signer_key: &self.key,
            recipient: &ra,
            protection: DEFAULT_PROTECTION,
            rng: &SystemRandom,
            signing_time: Some(unix_now()),
        }
        .build(&self.csr(challenge, &[]))
        .unwrap()
    }

    /// Decodes a CertRep addressed to this device (or to the renewal signer).
    pub fn decode(
        &self,
        ca: &CaCerts,
        req: &ClientRequest,
        reply: &[u8],
        signer: Option<(&[u8], &SoftwareKey)>,
    ) -> CertRepOutcome {
        let ra = Certificate::parse(&ca.ra).unwrap();
        let (signer_der, signer_key) = signer.unwrap_or((&self.signer_der, &self.key));
        let signer_cert = Certificate::parse(signer_der).unwrap();
        let outcome =
            decode_cert_rep(reply, &ra, req, &signer_cert, signer_key, &SystemRandom).unwrap();
        if let CertRepOutcome::Success { certificates, .. } = &outcome {
            for der in certificates {
                independently_checked_device_certificate(der, ca);
            }
        }
        outcome
    }

    /// Signs an already built (possibly altered) envelope into a PKCSReq from this device
    /// (SHA-256, its self-signed signer certificate).
    pub fn sign_envelope(&self, recipient: &Certificate<'_>, envelope: &[u8]) -> ClientRequest {
        let signer_cert = Certificate::parse(&self.signer_der).unwrap();
        RequestBuilder {
            message_type: MessageType::PkcsReq,
            transaction_id: transaction_id_for_key(self.key.public_key_der()).unwrap(),
            signer_cert: &signer_cert,
            signer_key: &self.key,
            recipient,
            protection: DEFAULT_PROTECTION,
            rng: &SystemRandom,
            signing_time: Some(unix_now()),
        }
        .sign_envelope(envelope)
        .unwrap()
    }

    /// A PKCSReq with this device's CSR and the default protection.
    pub fn pkcs_req(&self, ca: &CaCerts, challenge: Option<&str>) -> ClientRequest {
        self.request(
            ca,
            MessageType::PkcsReq,
            &self.csr(challenge, &[]),
            DEFAULT_PROTECTION,
            None,
        )
    }

    /// Full PKCSReq enrollment on the platform at `scep_path`; returns the outcome.
    pub fn enroll_at(
        &self,
        server: &Server,
        scep_path: &str,
        ca: &CaCerts,
        challenge: Option<&str>,
    ) -> CertRepOutcome {
        let req = self.pkcs_req(ca, challenge);
        let r = server.post(&format!("{scep_path}?operation=PKIOperation"), &req.der);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        self.decode(ca, &req, &r.body, None)
    }

    /// Full PKCSReq enrollment; returns the outcome.
    pub fn enroll(
        &self,
        server: &Server,
        ca: &CaCerts,
        challenge: Option<&str>,
        p: Protection,
    ) -> CertRepOutcome {
        let req = self.request(ca, MessageType::PkcsReq, &self.csr(challenge, &[]), p, None);
        let r = server.pki_operation(&req.der);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.content_type, "application/x-pki-message");
        self.decode(ca, &req, &r.body, None)
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Re-reads a certificate scepd issued with x509-parser, a parser that shares no code with
/// ours: it must be a strict, complete v3 device certificate (not a CA, digitalSignature only,
/// clientAuth, a key identifier pair) and, when issued by the intermediate `ca` names (a
/// rotation may have replaced it since), carry a signature that verifies under that
/// intermediate's key with aws-lc-rs.
pub fn independently_checked_device_certificate(der: &[u8], ca: &CaCerts) {
    use x509_parser::prelude::*;
    let (rest, cert) = X509Certificate::from_der(der).expect("x509-parser reads the certificate");
    assert!(rest.is_empty(), "bytes after the certificate");
    assert_eq!(cert.version(), X509Version::V3);
    let bc = cert.basic_constraints().expect("one basicConstraints");
    assert!(
        bc.is_none_or(|b| !b.value.ca),
        "a device certificate is no CA"
    );
    let ku = cert
        .key_usage()
        .expect("one keyUsage")
        .expect("keyUsage present");
    assert!(ku.critical, "keyUsage is critical");
    assert!(ku.value.digital_signature(), "signing");
    assert_eq!(
        ku.value.flags.count_ones(),
        1,
        "signing only: {:?}",
        ku.value
    );
    let eku = cert
        .extended_key_usage()
        .expect("one extendedKeyUsage")
        .expect("extendedKeyUsage present");
    assert!(eku.value.client_auth && !eku.value.server_auth && !eku.value.any);
    let validity = cert.validity();
    assert!(validity.not_before < validity.not_after);
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            ParsedExtension::UnsupportedExtension { .. } => {}
            ParsedExtension::ParseError { error } => panic!("extension {}: {error}", ext.oid),
            _ => {}
        }
    }
    assert!(ski.is_some(), "subjectKeyIdentifier present");
    let aki = aki.expect("authorityKeyIdentifier with a key identifier");
    let (_, intermediate) = X509Certificate::from_der(&ca.intermediate).unwrap();
    let intermediate_ski =
        intermediate
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
    if intermediate_ski.as_deref() == Some(aki.as_slice()) {
        assert_eq!(
            cert.issuer(),
            intermediate.subject(),
            "issuer name is the intermediate's"
        );
        cert.verify_signature(Some(intermediate.public_key()))
            .expect("signed by the intermediate");
    }
}

/// The issued certificate of a SUCCESS outcome.
pub fn issued(outcome: &CertRepOutcome) -> Vec<u8> {
    match outcome {
        CertRepOutcome::Success { certificates, .. } => {
            assert_eq!(
                certificates.len(),
                1,
                "the issued certificate is the only one in the reply"
            );
            certificates[0].clone()
        }
        other => panic!("expected SUCCESS, got {other:?}"),
    }
}

/// Writes DER as PEM of `label` with `openssl`-compatible wrapping.
pub fn write_pem(path: &Path, label: &str, der: &[u8]) {
    let b64 = scepd_pki::encoding::encode_base64(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    std::fs::write(
        path,
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        ),
    )
    .unwrap();
}

/// Runs openssl; returns (success, stdout+stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (scripts/test installs it)");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `openssl verify` of `leaf` against root + intermediate; panics with OpenSSL's words if not OK.
pub fn openssl_verify(dir: &Path, ca: &CaCerts, leaf: &[u8]) {
    let (root, int, leaf_p) = (
        dir.join("root.pem"),
        dir.join("int.pem"),
        dir.join("leaf.pem"),
    );
    write_pem(&root, "CERTIFICATE", &ca.root);
    write_pem(&int, "CERTIFICATE", &ca.intermediate);
    write_pem(&leaf_p, "CERTIFICATE", leaf);
    let (ok, text) = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        int.to_str().unwrap(),
        leaf_p.to_str().unwrap(),
    ]);
    assert!(ok && text.contains(": OK"), "openssl verify failed: {text}");
}

/// The certificate as `openssl x509 -text` prints it.
pub fn openssl_text(dir: &Path, der: &[u8]) -> String {
    let p = dir.join("text.pem");
    write_pem(&p, "CERTIFICATE", der);
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", p.to_str().unwrap()]);
    assert!(ok, "{text}");
    text
}

/// Whether this process may create mount namespaces (root). Tests that need one return when
/// it may not, outside CI only: scripts/test cannot provide root, but CI runs as root.
pub fn can_unshare() -> bool {
    let permitted = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // CI runs the tests as root: there a missing permission is a failure, not a skip.
    assert!(
        permitted || std::env::var_os("CI").is_none(),
        "`unshare -m` is not permitted: run the tests as root (CI must)"
    );
    permitted
}

/// POSTs a PKIOperation; `None` on any transport failure (the server may be dead).
pub fn try_pki(addr: &str, path: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(20))).ok()?;
    let head = format!(
        "POST {path}?operation=PKIOperation HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-pki-message\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    raw.starts_with(b"HTTP/1.1 200")
        .then(|| raw[split + 4..].to_vec())
}

/// The serial of a DER certificate in hex, as the store keeps it (magnitude, lowercase).
pub fn serial_of(der: &[u8]) -> String {
    scepd_pki::hex(Certificate::parse(der).unwrap().serial_magnitude())
}
