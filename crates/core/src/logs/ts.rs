//! Timestamps straight from bytes: the RFC 3339 time a log line starts with, parsed into UTC
//! nanoseconds without allocating, the civil-date arithmetic it needs, and the text of a time
//! written back. Every read of `logs` goes through here, once per line.

pub const NANOS: i64 = 1_000_000_000;

fn d2(b: &[u8], i: usize) -> Option<u32> {
    let (a, c) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    (a < 10 && c < 10).then_some((a as u32) * 10 + c as u32)
}

/// Pure: days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Pure: the date of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Pure: the RFC 3339 timestamp a line starts with (`2026-11-25T10:00:00.123Z`, any fraction,
/// `Z` or `±HH:MM`, `T` or a space) as UTC nanoseconds since the epoch, and the index where the
/// rest of the line starts (after `: ` as PM2 writes it, a space, or a colon). Years outside
/// 1678–2261 (what fits in i64 nanoseconds) and impossible dates are not timestamps.
pub fn parse_ts_bytes(b: &[u8]) -> Option<(i64, usize)> {
    parse_tail(b, local_seconds(b)?)
}

/// The date and time of day of `b[..19]` as seconds (before the zone offset), validated.
fn local_seconds(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let y = (d2(b, 0)? * 100 + d2(b, 2)?) as i64;
    let (mo, d, h, mi, s) = (d2(b, 5)?, d2(b, 8)?, d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    if !(1678..=2261).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64)
}

/// The fraction, the zone and the separator after `b[..19]`, whose seconds are `local`.
fn parse_tail(b: &[u8], local: i64) -> Option<(i64, usize)> {
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        let frac = &b[start..end.min(start + 9)];
        nanos = frac.iter().fold(0i64, |n, c| n * 10 + (c - b'0') as i64)
            * 10i64.pow(9 - frac.len() as u32);
        i = end;
    }
    let offset: i64 = match *b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            if b.len() < i + 6 || b[i + 3] != b':' {
                return None;
            }
            let o = (d2(b, i + 1)? * 3600 + d2(b, i + 4)? * 60) as i64;
            i += 6;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let skip = match &b[i..] {
        [b':', b' ', ..] => 2,
        [b' ' | b':', ..] => 1,
        _ => 0,
    };
    Some(((local - offset) * NANOS + nanos, i + skip))
}

/// [`parse_ts_bytes`] for consecutive lines of one file: a log writes hundreds of lines a
/// second, so the date and time of day (the first 19 bytes) are usually the line before's.
#[derive(Default)]
pub struct TsParser {
    prefix: [u8; 19],
    local: Option<i64>,
}

impl TsParser {
    pub fn parse(&mut self, b: &[u8]) -> Option<(i64, usize)> {
        if b.len() >= 20 && self.local.is_some() && b[..19] == self.prefix {
            return parse_tail(b, self.local?);
        }
        let local = local_seconds(b)?;
        self.prefix.copy_from_slice(&b[..19]);
        self.local = Some(local);
        parse_tail(b, local)
    }
}

/// Formats UTC nanoseconds as `2026-11-26T10:00:00.123Z` (milliseconds, truncated, as chrono's
/// `to_rfc3339_opts(Millis, true)`), re-using the text of the second before: a log has
/// hundreds of lines a second.
pub struct TimeText {
    sec: i64,
    text: [u8; 24],
}

impl Default for TimeText {
    fn default() -> Self {
        TimeText {
            sec: i64::MIN,
            text: *b"0000-00-00T00:00:00.000Z",
        }
    }
}

impl TimeText {
    pub fn format(&mut self, nanos: i64) -> &[u8; 24] {
        let sec = nanos.div_euclid(NANOS);
        if sec != self.sec {
            self.sec = sec;
            let (y, m, d) = civil_from_days(sec.div_euclid(86400));
            let s = sec.rem_euclid(86400);
            let put = |t: &mut [u8; 24], at: usize, v: u32| {
                t[at] = b'0' + (v / 10) as u8;
                t[at + 1] = b'0' + (v % 10) as u8;
            };
            put(&mut self.text, 0, (y / 100) as u32);
            put(&mut self.text, 2, (y % 100) as u32);
            put(&mut self.text, 5, m);
            put(&mut self.text, 8, d);
            put(&mut self.text, 11, (s / 3600) as u32);
            put(&mut self.text, 14, (s / 60 % 60) as u32);
            put(&mut self.text, 17, (s % 60) as u32);
        }
        let ms = (nanos.rem_euclid(NANOS) / 1_000_000) as u32;
        self.text[20] = b'0' + (ms / 100) as u8;
        self.text[21] = b'0' + (ms / 10 % 10) as u8;
        self.text[22] = b'0' + (ms % 10) as u8;
        &self.text
    }
}

/// Nanoseconds of an instant, saturating beyond what i64 holds.
pub fn nanos_of(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn chrono_nanos(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn timestamps_agree_with_chrono_and_say_where_the_rest_starts() {
        for s in [
            "2026-11-25T10:00:00.123Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.123456789Z",
            "2026-11-25T10:00:00.123+01:00",
            "2026-11-25T10:00:00.1-05:30",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00Z",
        ] {
            let (n, off) = parse_ts_bytes(format!("{s}: hello").as_bytes()).unwrap();
            assert_eq!(n, chrono_nanos(s), "{s}");
            assert_eq!(off, s.len() + 2, "{s}");
        }
        assert_eq!(parse_ts_bytes(b"2026-11-25 10:00:00.5Z x").unwrap().1, 23);
        // The memo of the line before never changes an answer.
        let mut p = TsParser::default();
        for l in [
            "2026-11-25T10:00:00.100Z: a",
            "2026-11-25T10:00:00.200Z: same second",
            "2026-11-25T10:00:00.300+01:00: same text, another zone",
            "2026-11-25T10:00:00: same text, no zone",
            "2026-11-25T10:00:01.000Z: next second",
            "    a continuation",
            "2026-11-25T10:00:01.5Z x",
        ] {
            assert_eq!(p.parse(l.as_bytes()), parse_ts_bytes(l.as_bytes()), "{l}");
        }
        assert_eq!(parse_ts_bytes(b"2026-11-25T10:00:00Z:x").unwrap().1, 21);
        for bad in [
            "2026-02-30T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:60:00Z",
            "2026-11-25T10:00:60Z",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00+0100",
            "9999-11-25T10:00:00Z",
            "x026-11-25T10:00:00Z",
            "not a timestamp at all",
        ] {
            assert_eq!(parse_ts_bytes(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn days_round_trip_and_times_print_like_chrono() {
        for z in [-800_000i64, -1, 0, 1, 59, 60, 365, 10_957, 20_000, 106_750] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        let mut tt = TimeText::default();
        for s in [
            "2026-11-25T10:00:00.123Z",
            "2026-11-25T10:00:00.999Z",
            "2026-11-25T10:00:01.000Z",
            "2024-02-29T23:59:59.999Z",
            "1969-12-31T23:59:59.500Z",
            "2026-11-25T10:00:00.123Z",
        ] {
            let n = chrono_nanos(s);
            assert_eq!(std::str::from_utf8(tt.format(n)).unwrap(), s);
            let want = DateTime::from_timestamp_nanos(n + 456_789)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(std::str::from_utf8(tt.format(n + 456_789)).unwrap(), want);
        }
    }
}
