//! Times: `--modified-after TIME`, shared by every reader so that they all accept exactly the
//! same TIME, and RFC 3339 UTC as the stages write it (tonbo-map's timestamps, the front door's
//! last-run marks, which the readers read back as TIME).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE_TIME: &str =
    "examples: 2026-11-01T00:00:00Z, 2026-11-01 (midnight UTC), 90m, 12h, 7d, 2w (ago)";

/// Parses `--modified-after TIME` relative to now.
pub fn parse_modified_after(s: &str) -> Result<SystemTime, String> {
    parse_time(s, SystemTime::now())
}

/// Parses an RFC 3339 timestamp (`2026-11-01T00:00:00Z`, `2026-11-01T02:00:00.5+02:00`), a date
/// (`2026-11-01`, midnight UTC) or an age (`90m`, `12h`, `7d`, `2w`: `now` minus that).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a time ({USAGE_TIME})");
    if let Some(unit) = t.chars().last().filter(char::is_ascii_alphabetic) {
        let num = &t[..t.len() - 1];
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = match unit {
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(bad()),
            };
            return num
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(secs))
                .and_then(|d| now.checked_sub(Duration::from_secs(d)))
                .ok_or_else(|| format!("`{s}` is too far back"));
        }
    }
    let (secs, nanos) = parse_rfc3339(t).ok_or_else(bad)?;
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(nanos.into())))
    };
    t.ok_or_else(|| format!("`{s}` is out of range"))
}

/// Seconds since the Unix epoch and nanoseconds of a date or an RFC 3339 date-time.
fn parse_rfc3339(t: &str) -> Option<(i64, u32)> {
    let b = t.as_bytes();
    let days = parse_date(b.get(..10)?)?;
    if b.len() == 10 {
        return Some((days * 86_400, 0));
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let rest = &b[11..];
    if rest.len() < 8 || rest[2] != b':' || rest[5] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(&rest[0..2])?, num(&rest[3..5])?, num(&rest[6..8])?);
    // 60 is a leap second (RFC 3339 §5.6).
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, d) in frac[..n].iter().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let (oh, om) = (num(&[*oh1, *oh2])?, num(&[*om1, *om2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset;
    Some((secs, nanos))
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn parse_date(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (i64::from(num(&b[0..4])?), num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((m + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// RFC 3339 UTC to the millisecond (`2026-02-13T16:26:40.123Z`) of unix milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let text = rfc3339_digits(secs, ms.rem_euclid(1000));
    match std::str::from_utf8(&text) {
        Ok(t) if (0..=253_402_300_799).contains(&secs) => t.to_string(),
        _ => rfc3339_formatted(secs, Some(ms.rem_euclid(1000))),
    }
}

/// RFC 3339 UTC to the second (`2026-02-13T16:26:40Z`) of unix seconds.
pub fn rfc3339_seconds(secs: i64) -> String {
    let text = rfc3339_digits(secs, 0);
    match std::str::from_utf8(&text[..19]) {
        Ok(t) if (0..=253_402_300_799).contains(&secs) => format!("{t}Z"),
        _ => rfc3339_formatted(secs, None),
    }
}

/// `secs` and `millis` as `YYYY-MM-DDTHH:MM:SS.mmmZ`, digit by digit (a mapping of numeric times
/// writes one per event, and `format!` cost a tenth of such a mapping's time); right for years 0
/// to 9999, which the callers check.
fn rfc3339_digits(secs: i64, millis: i64) -> [u8; 24] {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + n.rem_euclid(10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, millis);
    b
}

/// Any time, years before 0 and past 9999 included, as `format!` writes it.
fn rfc3339_formatted(secs: i64, millis: Option<i64>) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match millis {
        Some(ms) => format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z"),
        None => format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z"),
    }
}

/// `t` as [`rfc3339_seconds`] (a time before 1970 as 1970-01-01).
pub fn rfc3339_of(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339_seconds(i64::try_from(secs).unwrap_or(0))
}

/// The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`, the
/// inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_771_000_000_123),
            "2026-02-13T16:26:40.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_seconds(1_793_491_200), "2026-11-01T00:00:00Z");
        assert_eq!(rfc3339_of(at(1_709_210_096)), "2024-02-29T12:34:56Z");
        // What is written reads back as the same time.
        let now = at(2_000_000_000);
        assert_eq!(parse_time(&rfc3339_of(now), now).unwrap(), now);
    }

    #[test]
    fn writes_what_format_wrote() {
        // The format the digits replaced, for times far apart, before 1970 and past year 9999.
        let old = |ms: i64| {
            let secs = ms.div_euclid(1000);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let rem = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                ms.rem_euclid(1000)
            )
        };
        let mut ms: i64 = -70_000_000_000_000;
        while ms < 300_000_000_000_000 {
            assert_eq!(rfc3339_millis(ms), old(ms), "{ms}");
            ms += 3_999_999_937;
        }
    }

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn parses_dates_and_timestamps() {
        let now = at(2_000_000_000);
        let p = |s: &str| parse_time(s, now).unwrap();
        // Expected values from `date -u -d ... +%s`.
        assert_eq!(p("2026-11-01"), at(1_793_491_200));
        assert_eq!(p("2026-11-01T00:00:00Z"), at(1_793_491_200));
        assert_eq!(p("2026-11-01t00:00:00z"), at(1_793_491_200));
        assert_eq!(p("2026-11-01 00:00:00Z"), at(1_793_491_200));
        assert_eq!(p("2026-11-01T02:00:00+02:00"), at(1_793_491_200));
        assert_eq!(p("2026-10-31T22:30:00-01:30"), at(1_793_491_200));
        assert_eq!(p("2024-02-29T12:34:56Z"), at(1_709_210_096));
        assert_eq!(
            p("2024-02-29T12:34:56.25Z"),
            at(1_709_210_096) + Duration::from_millis(250)
        );
        assert_eq!(
            p("2024-02-29T12:34:56.1234567891Z"),
            at(1_709_210_096) + Duration::from_nanos(123_456_789)
        );
        assert_eq!(p("2000-03-01"), at(951_868_800));
        assert_eq!(p("1970-01-01"), UNIX_EPOCH);
        assert_eq!(p("1969-12-31"), at(-86_400));
        assert_eq!(p(" 2026-11-01 "), at(1_793_491_200));
    }

    #[test]
    fn parses_ages() {
        let now = at(2_000_000_000);
        let p = |s: &str| parse_time(s, now).unwrap();
        assert_eq!(p("90m"), at(2_000_000_000 - 90 * 60));
        assert_eq!(p("12h"), at(2_000_000_000 - 12 * 3600));
        assert_eq!(p("7d"), at(2_000_000_000 - 7 * 86_400));
        assert_eq!(p("2w"), at(2_000_000_000 - 14 * 86_400));
        assert_eq!(p("0d"), now);
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        let now = at(2_000_000_000);
        for bad in [
            "",
            "d",
            "7",
            "7y",
            "7 d",
            "-7d",
            "1.5h",
            "yesterday",
            "2026-11",
            "2026-13-01",
            "2026-00-10",
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-11-01T",
            "2026-11-01T00:00:00",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:60:00Z",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+0200",
            "2026-11-01T00:00:00+24:00",
            "2026-11-01X00:00:00Z",
            "2026-11-01T00:00Z",
            "２026-11-01",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_time("2000-02-29", now).is_ok());
        assert!(parse_time("99999999999999999w", now).is_err());
    }
}
