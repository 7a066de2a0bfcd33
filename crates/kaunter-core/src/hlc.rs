//! Hybrid logical clocks: the order of edits across desks whose wall clocks disagree.
//!
//! A timestamp is wall-clock milliseconds (48 bits) and a counter (16 bits) packed into one
//! `u64`, so timestamps compare as integers. A clock never issues a timestamp at or below one it
//! has issued or observed, whatever the wall clock does: an edit made after seeing another edit
//! always sorts after it, even when this desk's clock is a day behind. Drift is bounded: a remote
//! timestamp further ahead of our wall clock than [`MAX_DRIFT_MS`] is refused, so one desk with
//! its clock set to next year cannot drag every other desk's clock (and every later edit's
//! order) along with it.
//!
//! The clock is a value: the caller reads the wall clock, and persists [`HlcClock::last`] with
//! every write that used it, so it survives restarts.

use std::fmt;

use crate::ids::DeviceId;

/// How far ahead of our wall clock a remote timestamp may be: 48 hours, enough for desks whose
/// clocks are a day off either way.
pub const MAX_DRIFT_MS: u64 = 48 * 60 * 60 * 1000;

const COUNTER_BITS: u32 = 16;
const MAX_MILLIS: u64 = (1 << (64 - COUNTER_BITS)) - 1;

/// A hybrid logical timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc(u64);

impl Hlc {
    pub const ZERO: Hlc = Hlc(0);

    /// `None` when `millis` does not fit in 48 bits (beyond the year 10889).
    pub fn new(millis: u64, counter: u16) -> Option<Hlc> {
        (millis <= MAX_MILLIS).then_some(Hlc((millis << COUNTER_BITS) | u64::from(counter)))
    }

    pub const fn from_u64(packed: u64) -> Hlc {
        Hlc(packed)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub const fn millis(self) -> u64 {
        self.0 >> COUNTER_BITS
    }

    pub const fn counter(self) -> u16 {
        // The mask keeps 16 bits, so the cast loses nothing.
        (self.0 & 0xffff) as u16
    }

    /// The smallest timestamp after this one.
    fn successor(self) -> Hlc {
        Hlc(self.0.saturating_add(1))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis(), self.counter())
    }
}

/// Why a remote timestamp was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
    /// The remote timestamp is more than the allowed drift ahead of our wall clock.
    TooFarAhead { remote_millis: u64, now_millis: u64 },
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::TooFarAhead {
                remote_millis,
                now_millis,
            } => write!(
                f,
                "a timestamp {} hours ahead of this clock; check the date and time settings of the desk that made it",
                (remote_millis - now_millis) / 3_600_000
            ),
        }
    }
}

impl std::error::Error for ClockError {}

/// One desk's (or the server's) clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlcClock {
    last: Hlc,
    max_drift_ms: u64,
}

impl HlcClock {
    /// A clock that continues after `last` (the value persisted with the latest write).
    pub fn new(last: Hlc) -> HlcClock {
        HlcClock {
            last,
            max_drift_ms: MAX_DRIFT_MS,
        }
    }

    pub fn with_max_drift_ms(mut self, max_drift_ms: u64) -> HlcClock {
        self.max_drift_ms = max_drift_ms;
        self
    }

    /// The latest timestamp issued or observed: persist it.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A timestamp for a local event at wall time `now_millis`, later than everything this clock
    /// has issued or observed. When the wall clock is behind (or the counter is full) the logical
    /// part moves on instead.
    pub fn tick(&mut self, now_millis: u64) -> Hlc {
        let wall = Hlc::new(now_millis.min(MAX_MILLIS), 0).unwrap_or(Hlc(MAX_MILLIS << 16));
        self.last = if wall > self.last {
            wall
        } else {
            self.last.successor()
        };
        self.last
    }

    /// Takes in a timestamp from another desk, so the next [`HlcClock::tick`] sorts after it.
    /// A timestamp too far ahead of `now_millis` is refused and the clock is left unchanged.
    pub fn observe(&mut self, remote: Hlc, now_millis: u64) -> Result<(), ClockError> {
        check_drift(remote, now_millis, self.max_drift_ms)?;
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }
}

/// Refuses a timestamp more than `max_drift_ms` ahead of `now_millis` (the server's check on
/// pushed changes, and the desk's on pulled ones).
pub fn check_drift(remote: Hlc, now_millis: u64, max_drift_ms: u64) -> Result<(), ClockError> {
    if remote.millis() > now_millis.saturating_add(max_drift_ms) {
        return Err(ClockError::TooFarAhead {
            remote_millis: remote.millis(),
            now_millis,
        });
    }
    Ok(())
}

/// When and where a write happened. Stamps are unique per write (a device never issues one
/// timestamp twice) and totally ordered: by timestamp, then by device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub hlc: Hlc,
    pub device: DeviceId,
}

impl Stamp {
    pub fn new(hlc: Hlc, device: DeviceId) -> Stamp {
        Stamp { hlc, device }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;
    /// 2026-11-25T00:00:00Z in milliseconds.
    const NOW: u64 = 1_795_564_800_000;

    fn hlc(millis: u64, counter: u16) -> Hlc {
        Hlc::new(millis, counter).unwrap()
    }

    #[test]
    fn packing_orders_by_millis_then_counter() {
        assert!(hlc(5, 0) > hlc(4, u16::MAX));
        assert!(hlc(5, 1) > hlc(5, 0));
        assert_eq!(hlc(NOW, 7).millis(), NOW);
        assert_eq!(hlc(NOW, 7).counter(), 7);
        assert_eq!(Hlc::from_u64(hlc(NOW, 7).as_u64()), hlc(NOW, 7));
        assert_eq!(Hlc::new(1 << 48, 0), None);
        assert_eq!(hlc(NOW, 3).to_string(), format!("{NOW}.3"));
    }

    #[test]
    fn tick_table() {
        // (last persisted, wall clock now, expected tick)
        let table = [
            (Hlc::ZERO, NOW, hlc(NOW, 0)),
            (hlc(NOW - 10, 4), NOW, hlc(NOW, 0)),
            // Same millisecond: the counter moves.
            (hlc(NOW, 0), NOW, hlc(NOW, 1)),
            // Wall clock went back an hour (NTP fix, battery): never backwards.
            (hlc(NOW, 2), NOW - HOUR, hlc(NOW, 3)),
            // Counter full: the logical millisecond moves on.
            (hlc(NOW, u16::MAX), NOW, hlc(NOW + 1, 0)),
        ];
        for (last, now, want) in table {
            let mut clock = HlcClock::new(last);
            assert_eq!(clock.tick(now), want, "last {last} now {now}");
            assert_eq!(clock.last(), want);
        }
    }

    #[test]
    fn ticks_strictly_increase_whatever_the_wall_clock_does() {
        let mut clock = HlcClock::new(Hlc::ZERO);
        let walls = [
            NOW,
            NOW,
            NOW - DAY,
            NOW + 5,
            NOW + 5,
            NOW - 3 * DAY,
            NOW + 6,
        ];
        let mut previous = Hlc::ZERO;
        for wall in walls {
            let next = clock.tick(wall);
            assert!(next > previous, "{next} after {previous} at wall {wall}");
            previous = next;
        }
    }

    #[test]
    fn a_desk_a_day_behind_still_orders_its_later_edit_after_what_it_saw() {
        // Desk A's clock is a day ahead; desk B's a day behind.
        let mut a = HlcClock::new(Hlc::ZERO);
        let mut b = HlcClock::new(Hlc::ZERO);
        let edit_a = a.tick(NOW + DAY);
        b.observe(edit_a, NOW - DAY).unwrap();
        let edit_b = b.tick(NOW - DAY);
        assert!(
            edit_b > edit_a,
            "B's edit, made after seeing A's, sorts after it"
        );
    }

    #[test]
    fn observe_table() {
        // (last, remote, now, outcome, last afterwards)
        let table = [
            (hlc(NOW, 0), hlc(NOW - HOUR, 0), Ok(()), hlc(NOW, 0)),
            (hlc(NOW, 0), hlc(NOW + HOUR, 9), Ok(()), hlc(NOW + HOUR, 9)),
            (
                hlc(NOW, 0),
                hlc(NOW + MAX_DRIFT_MS, 0),
                Ok(()),
                hlc(NOW + MAX_DRIFT_MS, 0),
            ),
            (
                hlc(NOW, 0),
                hlc(NOW + MAX_DRIFT_MS + 1, 0),
                Err(ClockError::TooFarAhead {
                    remote_millis: NOW + MAX_DRIFT_MS + 1,
                    now_millis: NOW,
                }),
                hlc(NOW, 0),
            ),
        ];
        for (last, remote, want, after) in table {
            let mut clock = HlcClock::new(last);
            assert_eq!(clock.observe(remote, NOW), want, "remote {remote}");
            assert_eq!(clock.last(), after, "remote {remote}");
        }
    }

    #[test]
    fn the_drift_bound_is_configurable() {
        let mut clock = HlcClock::new(Hlc::ZERO).with_max_drift_ms(HOUR);
        assert!(clock.observe(hlc(NOW + HOUR + 1, 0), NOW).is_err());
        assert!(clock.observe(hlc(NOW + HOUR, 0), NOW).is_ok());
    }

    #[test]
    fn stamps_order_by_time_then_device() {
        let low = DeviceId::from_uuid(uuid::Uuid::from_u128(1));
        let high = DeviceId::from_uuid(uuid::Uuid::from_u128(2));
        assert!(Stamp::new(hlc(NOW, 1), low) > Stamp::new(hlc(NOW, 0), high));
        assert!(Stamp::new(hlc(NOW, 0), high) > Stamp::new(hlc(NOW, 0), low));
    }
}
