//! Expiry times in the environment syntax: Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn parse_timestamp(value: &str) -> Result<SystemTime, String> {
    const BAD: &str = "`exp` is not Unix seconds or YYYY-MM-DDTHH:MM:SSZ";
    let bad = || BAD.to_owned();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = value.parse().map_err(|_| bad())?;
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let b = value.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let shape_ok = b.len() == 20
        && [4, 7].iter().all(|&i| at(i) == Some(b'-'))
        && at(10) == Some(b'T')
        && [13, 16].iter().all(|&i| at(i) == Some(b':'))
        && at(19) == Some(b'Z');
    if !shape_ok {
        return Err(bad());
    }
    // Each field is 2 or 4 ASCII digits, so every value below fits an i64 many times over.
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = value.get(r).ok_or_else(bad)?;
        if !digits.bytes().all(|d| d.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo, d)
        .checked_mul(86_400)
        .and_then(|t| t.checked_add(h * 3600 + mi * 60 + s))
        .ok_or_else(bad)?;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(bad)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). The
/// callers pass 4-digit years, 1..=12 and 1..=31, so nothing here comes near overflow.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
