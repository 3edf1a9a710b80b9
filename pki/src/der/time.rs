//! X.509 / CMS times. RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in
//! whole seconds with `Z` (never fractional seconds, docs/architecture.md gotcha 3).

use super::{DerError, tag, writer};

/// Days since 1970-01-01 for a civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date from days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Broken-down UTC time.
pub(crate) fn split(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    (
        y,
        mo,
        d,
        (secs / 3600) as u32,
        ((secs / 60) % 60) as u32,
        (secs % 60) as u32,
    )
}

/// RFC 5280 Time: UTCTime before 2050, GeneralizedTime from 2050.
pub fn x509_time(unix: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = split(unix);
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        writer::tlv(tag::UTC_TIME, &[text.as_bytes()])
    } else {
        generalized_time(unix)
    }
}

/// GeneralizedTime in whole seconds.
pub fn generalized_time(unix: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = split(unix);
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
    writer::tlv(tag::GENERALIZED_TIME, &[text.as_bytes()])
}

fn digits(b: &[u8]) -> Result<u32, DerError> {
    b.iter().try_fold(0u32, |acc, c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(DerError::Malformed("time digits"))
        }
    })
}

/// Parses a UTCTime or GeneralizedTime value (`YYMMDDHHMM[SS]Z` / `YYYYMMDDHHMMSS[.f]Z`).
pub fn parse_time(t: u8, v: &[u8]) -> Result<i64, DerError> {
    let (year, rest) = match t {
        tag::UTC_TIME if v.len() >= 11 => {
            let yy = digits(&v[..2])? as i64;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
        }
        tag::GENERALIZED_TIME if v.len() >= 13 => (i64::from(digits(&v[..4])?), &v[4..]),
        _ => return Err(DerError::Malformed("time")),
    };
    let mo = digits(&rest[0..2])?;
    let d = digits(&rest[2..4])?;
    let h = digits(&rest[4..6])?;
    let mi = digits(&rest[6..8])?;
    let s = match rest.get(8..10) {
        Some(ss) if ss[0].is_ascii_digit() => digits(ss)?,
        _ => 0,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(DerError::Malformed("time range"));
    }
    if rest.last() != Some(&b'Z') {
        return Err(DerError::Malformed("time zone"));
    }
    Ok(days_from_civil(year, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in [
            0i64,
            951_782_400,
            1_795_000_000,
            2_524_608_000,
            4_102_444_799,
        ] {
            let enc = x509_time(t);
            assert_eq!(parse_time(enc[0], &enc[2..]).unwrap(), t, "{t}");
        }
        assert_eq!(&x509_time(0)[2..], b"700101000000Z");
        assert_eq!(&x509_time(2_524_608_000)[2..], b"20500101000000Z");
    }
}
