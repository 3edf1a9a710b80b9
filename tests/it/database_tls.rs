//! TLS to PostgreSQL (`[store] sslmode`): against a cluster that refuses every connection
//! that is not TLS (`hostnossl … reject`), with a server certificate from a test CA made by
//! `openssl`. `verify-full` with the right CA file enrolls (and the database sees TLS
//! sessions from scepd); `verify-full` with another CA and `disable` fail at start-up with a
//! clear message; `require` connects without checking the certificate.
//!
//! Runs on a PostgreSQL cluster of its own, whichever backend `SCEPD_TEST_STORE` selects for
//! the rest of the suite.

use std::path::Path;
use std::process::Command;

use super::test_store::Cluster;
use super::testkit::*;

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 and localhost signed by it
/// (`server.crt`, `server.key`), in `dir`; `other-ca.pem` is an unrelated CA.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, cn) in [
        ("ca", "scepd test database CA"),
        ("other-ca", "unrelated CA"),
    ] {
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(&ec);
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        args.extend_from_slice(&["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        run(&args);
    }
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&args);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

#[test]
fn store_tls_verify_full_require_and_disable_against_a_tls_only_database() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let db = Cluster::start_tls(certs.path());
    let password_file = super::test_store::password_file(certs.path(), &db.password);
    let psql = |sql: &str| {
        let out = Command::new(super::test_store::pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &db.port.to_string()])
            .args(["-U", "scepd", "-d", "postgres", "-tAc", sql])
            .env("PGPASSWORD", &db.password)
            .env("PGSSLMODE", "require")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A database per server: each has a data dir (keys) of its own.
    psql("CREATE DATABASE full_check");
    psql("CREATE DATABASE require_check");
    let store = |database: &str, mode: &str, ca: Option<&str>| {
        format!(
            "[store]\nbackend = \"postgres\"\n\
             url = \"postgres://scepd@127.0.0.1:{}/{database}\"\n\
             password_file = \"{}\"\nsslmode = \"{mode}\"\nconnect_timeout_secs = 3\n{}",
            db.port,
            password_file.display(),
            ca.map(|f| format!("ca_file = \"{}\"\n", certs.path().join(f).display()))
                .unwrap_or_default()
        )
    };

    let server = Server::start_with_own_store(&store("full_check", "verify-full", Some("ca.pem")));
    let ca = server.ca_certs();
    issued(&Device::new("tls managementAttestation TLS-1").enroll(
        &server,
        &ca,
        Some(&server.challenge),
        DEFAULT_PROTECTION,
    ));
    drop(server);

    let refused = |toml: String| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scepd.toml"), &toml).unwrap();
        // A node's data dir (its keys) exists; the database connection is what is refused.
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let out = Command::new(scepd_bin())
            .args(["platform", "list", "--json", "--config"])
            .arg(dir.path().join("scepd.toml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("SCEPD_STORE_URL")
            .env("SCEPD_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Another CA: the server's certificate is refused, and the message says why.
    let err = refused(store("full_check", "verify-full", Some("other-ca.pem")));
    assert!(
        err.contains("database unavailable") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(!err.contains(&db.password), "{err}");
    // Plain TCP: the database refuses it (hostnossl reject).
    let err = refused(store("full_check", "disable", None));
    assert!(err.contains("database unavailable"), "{err}");
    // require: encrypted, the certificate not checked.
    let server = Server::start_with_own_store(&store("require_check", "require", None));
    server.ca_certs();
    // What the database saw: only TLS sessions from scepd.
    let sessions = psql(
        "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'scepd'",
    );
    assert!(sessions.starts_with("t|"), "{sessions}");
}
