//! The wall clock, in the unit every record and certificate uses: whole seconds since the Unix
//! epoch. One function, so that tests and benches can see where time enters.

/// Now, in unix seconds (0 if the system clock is before 1970, which no certificate survives).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
