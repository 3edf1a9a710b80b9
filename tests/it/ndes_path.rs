//! NDES-style tools reach one platform at Microsoft's SCEP path,
//! `/certsrv/mscep/mscep.dll` (with or without `/pkiclient.exe`, in any case), chosen by
//! `[scep] ndes_platform`. Unset, the path is 404; a platform id that does not exist stops
//! `scepd serve` at start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::test_store::WithStore;
use super::testkit::*;

#[test]
fn the_ndes_path_serves_the_configured_platform_only() {
    let mut server = Server::start();
    let caps = "/certsrv/mscep/mscep.dll?operation=GetCACaps";
    assert_eq!(server.get(caps).status, 404, "not configured: not served");
    let p = server.add_platform(&["--name", "ndes tools", "--challenge", "static"]);
    let id = p["platform_id"].as_str().unwrap().to_owned();
    let challenge = p["challenge"].as_str().unwrap().to_owned();
    server.restart_with_config(&format!("[scep]\nndes_platform = \"{id}\"\n"));
    let own = server.get(&format!(
        "{}?operation=GetCACaps",
        p["scep_path"].as_str().unwrap()
    ));
    for path in [
        "/certsrv/mscep/mscep.dll",
        "/CertSrv/mscep/mscep.dll/pkiclient.exe",
    ] {
        let r = server.get(&format!("{path}?operation=GetCACaps"));
        assert_eq!((r.status, &r.body), (200, &own.body), "{path}");
        let r = server.get(&format!("{path}?operation=GetCACert"));
        assert_eq!(r.status, 200, "{path}");
    }
    // Enrollment through it is that platform's: its challenge works, the default one's not.
    let ca = server.ca_certs();
    let device = Device::new("ndes managementAttestation N-1");
    let cert =
        issued(&device.enroll_at(&server, "/certsrv/mscep/mscep.dll", &ca, Some(&challenge)));
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &ca, &cert);
    let other = Device::new("ndes managementAttestation N-2");
    assert!(matches!(
        other.enroll_at(
            &server,
            "/certsrv/mscep/mscep.dll",
            &ca,
            Some(&server.challenge)
        ),
        scepd_pki::scep::client::CertRepOutcome::Failure { .. }
    ));
    let list = server.cli_json(&["cert", "list", "--json"]);
    let certs = list.as_array().unwrap();
    assert_eq!(certs.len(), 1, "{list}");
    assert_eq!(certs[0]["platform_id"], id.as_str());
    // Other paths under /certsrv/mscep/ stay 404.
    assert_eq!(
        server
            .get("/certsrv/mscep/other.dll?operation=GetCACaps")
            .status,
        404
    );
}

#[test]
fn an_ndes_platform_that_does_not_exist_stops_serve() {
    let mut server = Server::start();
    assert!(server.terminate().is_some());
    let dir = server.data_path();
    let config = dir.parent().unwrap().join("scepd.toml");
    std::fs::write(&config, "[scep]\nndes_platform = \"nosuchplatform0\"\n").unwrap();
    let mut child = Command::new(scepd_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .arg("--config")
        .arg(&config)
        .store_of(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("scepd serve kept running with an unknown ndes_platform");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("ndes_platform") && stderr.contains("names no platform"),
        "{stderr}"
    );
}
