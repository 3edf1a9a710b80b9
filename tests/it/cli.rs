//! The command line's public contract: JSON shapes, refusals, config validation, shutdown.

use std::process::Command;

use super::testkit::*;

fn scepd(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(scepd_bin());
    if let Some(i) = args.iter().position(|a| *a == "--data-dir") {
        cmd.store_of(std::path::Path::new(args[i + 1]));
    }
    cmd.args(args).env("SCEPD_LOG", "warn").output().unwrap()
}

/// `scepd init --json` into a new data dir `d`, which must succeed; its JSON.
fn init_json(d: &str) -> serde_json::Value {
    let out = scepd(&["init", "--data-dir", d, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Durations and dates are read by one parser each, in the spellings operators type.
#[test]
fn durations_and_dates_are_read_alike_by_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let v = init_json(d);
    assert_eq!(
        v["scep_url"],
        format!("http://127.0.0.1:8080{}", v["scep_path"].as_str().unwrap())
    );
    for (name, expires_in) in [("plain", "3600"), ("unit", "60m"), ("parts", "1h0m")] {
        let before = unix_now();
        let out = scepd(&[
            "admin",
            "token",
            "create",
            "--name",
            name,
            "--scope",
            "read",
            "--expires-in",
            expires_in,
            "--json",
            "--data-dir",
            d,
        ]);
        assert!(
            out.status.success(),
            "{expires_in}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let at = scepd_pki::encoding::parse_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
        assert!(
            (before + 3600..=unix_now() + 3600).contains(&at),
            "{expires_in}: {v}"
        );
    }
    let bad = scepd(&[
        "admin",
        "token",
        "create",
        "--name",
        "bad",
        "--scope",
        "read",
        "--expires-in",
        "1.5h",
        "--data-dir",
        d,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    for since in [
        "2026-12-02",
        "2026-12-02T00:00:00Z",
        "2026-12-02T01:00:00+01:00",
        "1764633600",
    ] {
        let out = scepd(&["audit", "list", "--since", since, "--json", "--data-dir", d]);
        assert!(
            out.status.success(),
            "{since}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = scepd(&[
        "audit",
        "list",
        "--since",
        "2026-12-02T00:00:00",
        "--data-dir",
        d,
    ]);
    assert_eq!(out.status.code(), Some(2), "a local time is not guessed");
}

#[test]
fn init_prints_json_once_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let v = init_json(d);
    let id = v["platform_id"].as_str().unwrap();
    assert_eq!(v["scep_path"], format!("/scep/{id}"));
    let ch = v["challenge"].as_str().unwrap();
    assert!(
        ch.len() >= 26 && scepd_pki::der::writer::is_printable(ch) && !ch.contains('_'),
        "{ch}"
    );
    let again = scepd(&["init", "--data-dir", d, "--json"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));
    // Keys are private.
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(data.join("keys")).unwrap() {
        let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The secret is not stored in clear anywhere in the data dir.
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(ch.len()).any(|w| w == ch.as_bytes()),
                "challenge found in {p:?}"
            );
        }
    }
    let list = scepd(&["platform", "list", "--json", "--data-dir", d]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["name"], "default");
    assert_eq!(v[0]["challenge"], "static");
    let add = scepd(&[
        "platform",
        "add",
        "--name",
        "default",
        "--challenge",
        "static",
        "--data-dir",
        d,
    ]);
    assert!(!add.status.success(), "duplicate names are refused");
}

#[test]
fn config_rejects_unknown_keys_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    for (body, needle) in [
        ("lisen = \"127.0.0.1:1\"\n", "unknown field"),
        ("[pki]\nra_key = \"ecdsa-p256\"\n", "must be RSA"),
        ("[pki]\nvalidity_days = 0\n", "validity_days"),
        ("[limits]\ncpu_slots = 0\n", "cpu_slots"),
    ] {
        std::fs::write(&cfg, body).unwrap();
        let out = scepd(&[
            "init",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            dir.path().join("x").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rsa_hierarchy_is_configurable_and_sigterm_stops_cleanly() {
    let mut server = Server::start_with_config(
        "[pki]\nroot_key = \"rsa-3072\"\nintermediate_key = \"rsa-2048\"\n",
    );
    let ca = server.ca_certs();
    let dir = tempfile::tempdir().unwrap();
    let text = openssl_text(dir.path(), &ca.intermediate);
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    let d = Device::new("rsa managementAttestation X");
    openssl_verify(
        dir.path(),
        &ca,
        &issued(&d.enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION)),
    );
    assert!(server.alive());
    assert_eq!(server.terminate(), Some(0));
}

/// Keys at rest are PBES2-encrypted (OpenSSL reads them with the passphrase), a group/world
/// readable key file stops start-up with a clear message, and plaintext needs an explicit opt-in.
#[test]
fn keys_are_encrypted_at_rest_and_permissions_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "operator passphrase\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[keys]\npassphrase_file = {:?}\n", pass.to_str().unwrap()),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let out = scepd(&["init", "--data-dir", d, "--config", c]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<_> = std::fs::read_dir(data.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 3);
    for k in &keys {
        let (ok, text) = openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            k.to_str().unwrap(),
            "-passin",
            &format!("file:{}", pass.display()),
            "-noout",
        ]);
        assert!(ok, "OpenSSL decrypts {k:?} with the passphrase: {text}");
        let (ok, _) = openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            k.to_str().unwrap(),
            "-passin",
            "pass:wrong",
            "-noout",
        ]);
        assert!(!ok, "wrong passphrase must fail");
    }
    // A readable key file: serve refuses with a message naming the file.
    std::fs::set_permissions(&keys[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bounded(
        Command::new(scepd_bin())
            .store_of(std::path::Path::new(d))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                d,
                "--config",
                c,
            ])
            .env("SCEPD_LOG", "error"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("accessible by group or others")
            && err.contains(keys[0].file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    // A wrong passphrase: clear failure too.
    std::fs::set_permissions(&keys[0], std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = bounded(
        Command::new(scepd_bin())
            .store_of(std::path::Path::new(d))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                d,
                "--config",
                c,
            ])
            .env("SCEPD_LOG", "error")
            .env("SCEPD_KEY_PASSPHRASE", "not it"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    // Plaintext only on request.
    let plain = dir.path().join("p");
    std::fs::write(&cfg, "[keys]\nplaintext = true\n").unwrap();
    assert!(
        scepd(&["init", "--data-dir", plain.to_str().unwrap(), "--config", c])
            .status
            .success()
    );
    let k = std::fs::read_dir(plain.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            k.to_str().unwrap(),
            "-passin",
            "pass:",
            "-noout"
        ])
        .0
    );
}

/// The passphrase can come from a file named on the command line (or
/// SCEPD_KEY_PASSPHRASE_FILE); SCEPD_KEY_PASSPHRASE still works but is warned about, and
/// both at once are refused. A key directory that others can enter (0755) stops start-up.
#[test]
fn passphrase_file_flag_env_warning_and_key_dir_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "flag passphrase\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = pass.to_str().unwrap();
    let out = scepd(&["init", "--data-dir", d, "--key-passphrase-file", p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !data.join("key-passphrase").exists(),
        "no development passphrase when a file is given"
    );
    let start = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = Command::new(scepd_bin());
        cmd.store_of(std::path::Path::new(d))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
                d,
            ])
            .args(extra)
            .env_remove("SCEPD_KEY_PASSPHRASE")
            .env_remove("SCEPD_KEY_PASSPHRASE_FILE")
            .env("SCEPD_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    };
    assert!(
        serves(&mut start(&[], &["--key-passphrase-file", p])).is_some(),
        "the flag opens the keys"
    );
    // Both sources at once: refused, naming both.
    let out = bounded(&mut start(
        &[("SCEPD_KEY_PASSPHRASE", "flag passphrase")],
        &["--key-passphrase-file", p],
    ));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SCEPD_KEY_PASSPHRASE") && err.contains("give one"),
        "{err}"
    );
    // A wrong passphrase through the flag's environment form: the keys do not open.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "other\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = bounded(&mut start(
        &[("SCEPD_KEY_PASSPHRASE_FILE", wrong.to_str().unwrap())],
        &[],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    // The right passphrase from the environment still starts, with a warning about /proc.
    let err = serves(&mut start(
        &[("SCEPD_KEY_PASSPHRASE", "flag passphrase")],
        &[],
    ))
    .expect("the variable opens the keys");
    assert!(err.contains("/proc/<pid>/environ"), "{err}");
    // keys/ at 0755: refused at start-up.
    std::fs::set_permissions(data.join("keys"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = bounded(&mut start(&[], &["--key-passphrase-file", p]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("key directory") && err.contains("chmod 700"),
        "{err}"
    );
}

/// Starts a `serve` command; once it prints its listening lines (within 30 s), stops it by
/// PID and returns its stderr. None when it exits or fails to start in time.
fn serves(cmd: &mut Command) -> Option<String> {
    use std::io::BufRead;
    let err_file = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(err_file.reopen().unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("scepd listening on") {
                let _ = tx.send(());
            }
        }
    });
    let up = rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(err_file.path()).unwrap();
    up.then_some(err)
}

/// Runs a command that is expected to exit by itself; kills it (by PID) after 30 s.
fn bounded(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "command did not exit within 30 s: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn platform_add_checks_mode_flags_and_keeps_dynamic_passwords_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    assert!(scepd(&["init", "--data-dir", d]).status.success());
    for (args, needle) in [
        (
            &["--challenge", "static", "--max-outstanding", "3"][..],
            "--max-outstanding is not valid with --challenge static",
        ),
        (
            &["--challenge", "dynamic", "--challenge-ttl", "soon"][..],
            "invalid --challenge-ttl",
        ),
        (
            &["--challenge", "dynamic", "--max-outstanding", "0"][..],
            "at least 1",
        ),
    ] {
        let mut all = vec!["platform", "add", "--name", "x", "--data-dir", d];
        all.extend_from_slice(args);
        let out = scepd(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
    let out = scepd(&[
        "platform",
        "add",
        "--name",
        "jamf",
        "--challenge",
        "dynamic",
        "--challenge-ttl",
        "30m",
        "--max-outstanding",
        "50",
        "--json",
        "--data-dir",
        d,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let password = v["password"].as_str().unwrap();
    assert!(password.len() >= 26 && scepd_pki::der::writer::is_printable(password));
    let list = scepd(&["platform", "list", "--json", "--data-dir", d]);
    let l: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let p = l
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jamf")
        .unwrap();
    assert_eq!(p["challenge"], "dynamic");
    assert_eq!(p["challenge_url_path"], v["challenge_url_path"]);
    assert_eq!(p["username"], v["username"]);
    assert_eq!(
        (
            p["challenge_ttl_secs"].as_i64(),
            p["max_outstanding"].as_i64()
        ),
        (Some(1800), Some(50))
    );
    for e in std::fs::read_dir(&data).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "password found in {path:?}"
            );
        }
    }
}

#[test]
fn init_with_store_url_creates_the_ca_once_in_postgresql_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let c = super::test_store::cluster();
    let db = super::test_store::database_of(&dir.path().join("explicit-url"));
    let url = c.url(&db);
    let run = |args: &[&str]| {
        Command::new(scepd_bin())
            .args(args)
            .args(["--data-dir", d, "--store-url", &url])
            .env_remove("SCEPD_STORE_URL")
            .env("SCEPD_STORE_PASSWORD", &c.password)
            .env("SCEPD_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["init", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !data.join("scepd.sqlite3").exists(),
        "no SQLite database beside a PostgreSQL store"
    );
    assert!(data.join("keys").is_dir(), "the keys stay in the data dir");
    let list = run(&["platform", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["name"], "default");
    let again = run(&["init", "--json"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        err.contains(&format!(
            "database postgres://scepd@127.0.0.1:{}/{db} is already initialized",
            c.port
        )),
        "{err}"
    );
    // A node whose data dir is not the shared one: refused with the reason.
    let elsewhere = dir.path().join("not-shared");
    let out = Command::new(scepd_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--store-url", &url, "--data-dir"])
        .arg(&elsewhere)
        .env_remove("SCEPD_STORE_URL")
        .env("SCEPD_STORE_PASSWORD", &c.password)
        .env("SCEPD_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("every node on one database needs the same data dir"),
        "{err}"
    );
    // A wrong password: a clear failure that names neither password.
    let out = Command::new(scepd_bin())
        .args(["platform", "list", "--data-dir", d, "--store-url", &url])
        .env_remove("SCEPD_STORE_URL")
        .env("SCEPD_STORE_PASSWORD", "not-the-password")
        .env("SCEPD_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("database unavailable"), "{err}");
    assert!(
        !err.contains("not-the-password") && !err.contains(&c.password),
        "{err}"
    );
    // A database off this machine needs an explicit sslmode.
    let cfg = dir.path().join("remote.toml");
    std::fs::write(
        &cfg,
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://scepd@db.example.net/ca\"\n",
    )
    .unwrap();
    let out = Command::new(scepd_bin())
        .args(["platform", "list", "--data-dir", d, "--config"])
        .arg(&cfg)
        .env_remove("SCEPD_STORE_URL")
        .env("SCEPD_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("set [store] sslmode"),
        "{err}"
    );
}

/// A command run against a data dir that is not there (a mistyped `--data-dir`, the wrong
/// working directory) says so and creates nothing: only `init` and `serve` create one.
#[test]
fn no_command_but_init_and_serve_creates_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("typo");
    let d = absent.to_str().unwrap();
    for args in [
        &["platform", "list"][..],
        &["cert", "list"],
        &["device", "list"],
        &["audit", "list"],
        &["admin", "token", "list"],
        &["ca", "list"],
        &["platform", "add", "--name", "x", "--challenge", "static"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--data-dir", d]);
        let out = scepd(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no scepd data at data dir"), "{args:?}: {err}");
        assert!(!absent.exists(), "{args:?} created {}", absent.display());
    }
}

/// Two servers on one SQLite data dir would both run its committer and CRL publisher: the
/// second is refused at start, naming the first one's pid; once the first stops, a new one
/// starts.
#[test]
fn a_second_serve_on_one_sqlite_data_dir_is_refused() {
    use std::io::BufRead;
    let mut first = Server::start_with_own_store("");
    let data = first.data_path();
    // `serve` on the first one's data dir: its exit code and stderr, or None once it listens
    // (then it is stopped), bounded at 30 s.
    let second = || -> (Option<i32>, String) {
        let mut child = Command::new(scepd_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&data)
            .env("SCEPD_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with("scepd listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            if rx.try_recv().is_ok() || std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (code, err)
    };
    let (code, err) = second();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("another scepd serve is running")
            && err.contains(&format!("pid {}", first.pid())),
        "{err}"
    );
    assert!(first.alive(), "the first server keeps running");
    assert_eq!(first.terminate(), Some(0));
    // Stopped: the lock went with it, so a new server starts.
    let (code, err) = second();
    assert_eq!(code, None, "a server after the first one stopped: {err}");
}

/// Enum-like flags list their values in `--help` and refuse others before anything runs.
#[test]
fn enum_like_flags_list_their_values_and_refuse_others() {
    for (args, listed) in [
        (&["cert", "list", "--help"][..], &["valid", "revoked"][..]),
        (
            &["device", "list", "--help"],
            &["active", "suspended", "deactivated", "deleted"],
        ),
        (
            &["cert", "revoke", "--help"],
            &["keyCompromise", "cessationOfOperation"],
        ),
        (
            &["platform", "profile", "--help"],
            &["apple", "windows", "intune", "workspace-one"],
        ),
        (&["admin", "token", "create", "--help"], &["admin", "read"]),
        (&["ca", "rotate", "--help"], &["rsa-2048", "ecdsa-p256"]),
    ] {
        let out = scepd(args);
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for v in listed {
            assert!(help.contains(v), "{args:?} does not list {v}: {help}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("never");
    for args in [
        &["cert", "list", "--status", "expired"][..],
        &["device", "list", "--state", "lost"],
        &["cert", "revoke", "01", "--reason", "because"],
        &["platform", "profile", "p", "--format", "jamf"],
        &["admin", "token", "create", "--name", "n", "--scope", "root"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--data-dir", d.to_str().unwrap()]);
        let out = scepd(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("possible values"),
            "{args:?}"
        );
    }
    assert!(!d.exists(), "a refused flag touched the data dir");
}

/// `scepd completions SHELL` prints a script for each shell, without a config or data dir.
#[test]
fn completions_are_printed_for_each_shell_without_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("never");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef scepd"),
        ("fish", "complete -c scepd"),
    ] {
        let out = scepd(&["completions", shell, "--data-dir", d.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains(marker) && script.contains("platform"),
            "{shell}: {script}"
        );
    }
    assert!(!d.exists());
}
