//! The build's epoch: the one time every image of a build carries (`pin` writes it).
//!
//! The epoch is SOURCE_DATE_EPOCH when set, otherwise the source image's own `created`:
//! a rebuild from the same source gives the same bytes, and a new source moves the date.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// SOURCE_DATE_EPOCH, when set to a number of seconds: the one reader of it.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// The one time every image of a build carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(OffsetDateTime);

impl Epoch {
    /// SOURCE_DATE_EPOCH when set, else the source image's `created`, else 1970.
    pub fn of(source_created: Option<OffsetDateTime>) -> Self {
        Self::from_times(source_date_epoch(), source_created)
    }

    /// `seconds` (SOURCE_DATE_EPOCH's) when given, else `created`, else 1970; whole seconds.
    fn from_times(seconds: Option<i64>, created: Option<OffsetDateTime>) -> Self {
        let given = seconds.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        Epoch(
            given
                .or(created)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// The epoch at `seconds` since 1970.
    pub fn at(seconds: i64) -> Self {
        Self::from_times(Some(seconds), None)
    }

    /// Seconds since 1970 (0 for anything earlier): what tar headers carry.
    pub fn seconds(&self) -> u64 {
        self.0.unix_timestamp().max(0) as u64
    }

    /// RFC 3339, whole seconds, UTC: `2024-06-01T12:00:00Z`.
    pub fn rfc3339(&self) -> String {
        self.0
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_whole_seconds_in_utc_and_source_date_epoch_comes_first() {
        let created = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let epoch = |seconds, created| Epoch::from_times(seconds, created).rfc3339();
        assert_eq!(epoch(None, Some(created)), "2023-11-14T22:13:20Z");
        assert_eq!(epoch(None, None), "1970-01-01T00:00:00Z");
        assert_eq!(epoch(Some(86_400), Some(created)), "1970-01-02T00:00:00Z");
        assert_eq!(Epoch::at(-5).seconds(), 0);
    }
}
