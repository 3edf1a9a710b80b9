//! A full disk: enrollments cannot commit, so `/readyz` must say so (the security audit found
//! it answering 200 while every enrollment failed), and recover by itself once there is room.
//! The data dir is a small tmpfs in the server's own mount namespace; the test fills it
//! through `/proc/PID/root`.

use std::io::Write;
use std::time::{Duration, Instant};

use super::testkit::*;

/// Mounts a 16 MiB tmpfs (mode 0700) as the data dir, then runs its arguments.
const SMALL_DATA_DIR: &str = r#"set -e
mount --make-rprivate /
mkdir -p "$SCEPD_TEST_DIR/data"
mount -t tmpfs -o size=16m,mode=0700 tmpfs "$SCEPD_TEST_DIR/data"
exec "$@""#;

fn readyz(server: &Server) -> u16 {
    http(&server.admin_addr, "GET", "/readyz", b"", None).status
}

#[test]
fn readiness_follows_the_stores_ability_to_commit() {
    // On PostgreSQL the data dir holds no database; the same property (no commit, not ready,
    // recovery without a restart) is shown by stopping the database: database_outage.rs.
    if super::test_store::postgres() {
        eprintln!("full disk: SQLite only; see database_outage.rs for PostgreSQL");
        return;
    }
    // A mount namespace needs root, as in read_only_fs.rs (CI runs as root).
    if !can_unshare() {
        eprintln!("skipping: `unshare -m` is not permitted (run the tests as root)");
        return;
    }
    let server = Server::start_launched(
        "[limits]\npki_operation_per_minute = 0\n",
        &["unshare", "-m", "sh", "-c", SMALL_DATA_DIR, "sh"],
    );
    let ca = server.ca_certs();
    issued(&Device::new("before").enroll(
        &server,
        &ca,
        Some(&server.challenge),
        DEFAULT_PROTECTION,
    ));
    assert_eq!(readyz(&server), 200);

    // Fill the file system the server writes to.
    let data = format!(
        "/proc/{}/root{}",
        server.pid(),
        server.data_dir.path().join("data").display()
    );
    let filler = format!("{data}/filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5au8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // SQLite may still reuse WAL space for a few commits; within a bounded number of
    // enrollments one fails, and from then on the server is not ready.
    let mut failed = false;
    for n in 0..200 {
        let device = Device::new(&format!("full {n}"));
        let req = device.pkcs_req(&ca, Some(&server.challenge));
        if server.pki_operation(&req.der).status != 200 {
            failed = true;
            break;
        }
    }
    assert!(failed, "no enrollment failed on a full disk");
    assert_eq!(
        readyz(&server),
        503,
        "a store that cannot commit is not ready"
    );

    // Room again: readiness comes back by itself (a probe commits), and enrollments work.
    std::fs::remove_file(&filler).unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    while readyz(&server) != 200 {
        assert!(Instant::now() < end, "readiness did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    issued(&Device::new("after").enroll(&server, &ca, Some(&server.challenge), DEFAULT_PROTECTION));
}
