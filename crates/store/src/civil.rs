//! Calendar fields of a Unix time in UTC (Howard Hinnant's `civil_from_days`), for the places
//! that print dates the way AWS does: SigV4's `X-Amz-Date` and DynamoDB stream labels.

/// (year, month 1-12, day 1-31, hour, minute, second) of `secs` since the epoch, in UTC.
pub fn utc(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmm` (UTC, no zone suffix), the form of a
/// DynamoDB stream label.
pub fn iso8601_millis(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms / 1000);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}",
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_the_calendar() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        // 2024-02-29T12:34:56Z, a leap day.
        assert_eq!(utc(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        assert_eq!(iso8601_millis(1_709_210_096_789), "2024-02-29T12:34:56.789");
    }
}
