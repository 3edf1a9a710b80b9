//! Replays every fuzz seed (`fuzz/seeds/<target>/`) and every recorded crash
//! (`tests/data/fuzz-regressions/<target>/`) through the fuzz targets' own entry points, which
//! this file includes from `fuzz/src/entries.rs`. Passing means: no panic on any of them.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/entries.rs"]
#[allow(dead_code, clippy::cast_possible_truncation)]
mod entries;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_seed_and_recorded_crash_replays_without_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, entry) in entries::TARGETS {
        let seeds = files_under(&root.join("fuzz/seeds").join(name));
        assert!(!seeds.is_empty(), "fuzz/seeds/{name} is empty");
        let crashes = files_under(&root.join("tests/data/fuzz-regressions").join(name));
        for f in seeds.iter().chain(&crashes) {
            let data = std::fs::read(f).unwrap();
            let caught = std::panic::catch_unwind(|| entry(&data));
            assert!(caught.is_ok(), "{name}: {} panics", f.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 20, "only {replayed} inputs replayed");
}

#[test]
fn envelope_target_gets_past_decryption() {
    // The committed key opens the committed envelopes: otherwise the fuzzer would only ever
    // explore the RSA-failure path.
    use scepd_pki::cms::enveloped_data::EnvelopedData;
    use scepd_pki::keys::SoftwareKey;
    use scepd_pki::random::SystemRandom;
    use scepd_pki::x509::Certificate;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let key = SoftwareKey::from_pkcs8(entries::FUZZ_RA_KEY_PKCS8).unwrap();
    let cert = Certificate::parse(entries::FUZZ_RA_CERT).unwrap();
    let mut opened = 0;
    for f in files_under(&root.join("fuzz/seeds/envelope")) {
        let data = std::fs::read(&f).unwrap();
        if data[0] != 0 {
            continue;
        }
        let ed = EnvelopedData::parse(&data[1..]).unwrap();
        let (_, _, plain) = ed.decrypt(&cert, &key, false, &SystemRandom).unwrap();
        scepd_pki::pkcs10::CertificationRequest::parse_and_verify(&plain)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        opened += 1;
    }
    assert!(opened >= 4);
}
