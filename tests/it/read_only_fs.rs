//! A read-only root file system (a container with `readOnlyRootFilesystem`, only the data
//! volume writable): the enrollment path must not need a temporary directory. SQLite looks for
//! one in /var/tmp, /usr/tmp, /tmp and the working directory when it spills a statement
//! journal; with the savepoints of a group commit it did, and enrollments failed with HTTP 500
//! once the tables had grown (after ~230 enrollments in the run that found it).

use super::testkit::*;

/// Runs its arguments in a private mount namespace where /tmp and /var/tmp (and so the working
/// directory, /tmp) are read-only, except the server's own directory under /tmp.
const READ_ONLY_TEMP: &str = r#"set -e
mount --make-rprivate /
mount --bind "$SCEPD_TEST_DIR" "$SCEPD_TEST_DIR"
mount --rbind /tmp /tmp
mount -o remount,bind,ro /tmp
mount --bind /var/tmp /var/tmp
mount -o remount,bind,ro /var/tmp
cd /tmp
exec "$@""#;

#[test]
fn enrollments_need_no_writable_temp_dir() {
    // A mount namespace needs root, which scripts/test cannot provide: outside CI the test
    // says so and passes; under CI (run as root) `can_unshare` fails it instead.
    if !can_unshare() {
        eprintln!(
            "skipping: `unshare -m` is not permitted (run the tests as root to include this one)"
        );
        return;
    }
    let server = Server::start_launched(
        "[limits]\npki_operation_per_minute = 0\n",
        &["unshare", "-m", "sh", "-c", READ_ONLY_TEMP, "sh"],
    );
    // The namespace took: the server sees /tmp and /var/tmp read-only.
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", server.pid())).unwrap();
    for dir in ["/tmp", "/var/tmp"] {
        assert!(
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                f.get(4) == Some(&dir) && f.get(5).is_some_and(|o| o.split(',').any(|o| o == "ro"))
            }),
            "{dir} is not read-only for the server:\n{mounts}"
        );
    }
    let ca = server.ca_certs();
    const CLIENTS: usize = 4;
    const EACH: usize = 80;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (server, ca) = (&server, &ca);
            s.spawn(move || {
                for n in 0..EACH {
                    let device = Device::new(&format!("read-only {c}-{n}"));
                    let outcome =
                        device.enroll(server, ca, Some(&server.challenge), DEFAULT_PROTECTION);
                    issued(&outcome);
                }
            });
        }
    });
}
