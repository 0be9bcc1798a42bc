//! Time of day on the planned day. Plans are made for one day at a time, so seconds since local
//! midnight are enough, and they read naturally in JSON as `"09:30"`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since local midnight of the planned day; JSON `"HH:MM"` or `"HH:MM:SS"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Clock(pub u32);

impl Clock {
    /// The time `h:m` (panics on out-of-range input, which only code can give).
    pub const fn hm(h: u32, m: u32) -> Clock {
        assert!(h < 48 && m < 60, "hour or minute out of range");
        Clock(h * 3600 + m * 60)
    }

    /// Seconds since midnight.
    pub fn secs(self) -> i64 {
        i64::from(self.0)
    }

    /// From seconds since midnight, clamped at midnight.
    pub fn from_secs(s: i64) -> Clock {
        Clock(s.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

/// Why a time of day did not parse. It does not repeat the text: an error travels to logs and
/// screens, and the field's path already says where to look.
const BAD_TIME: &str = "not a time of day: expected HH:MM or HH:MM:SS, from 00:00 to 47:59:59";

impl std::str::FromStr for Clock {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |p: &str, max: u32| {
            p.parse::<u32>()
                .ok()
                .filter(|&v| v < max)
                .ok_or_else(|| BAD_TIME.to_owned())
        };
        match parts.as_slice() {
            [h, m] => Ok(Clock(num(h, 48)? * 3600 + num(m, 60)? * 60)),
            [h, m, s] => Ok(Clock(num(h, 48)? * 3600 + num(m, 60)? * 60 + num(s, 60)?)),
            _ => Err(BAD_TIME.to_owned()),
        }
    }
}

impl Serialize for Clock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Clock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_hours_and_minutes() {
        let t: Clock = "09:30".parse().unwrap();
        assert_eq!(t, Clock::hm(9, 30));
        assert_eq!(t.to_string(), "09:30");
        assert_eq!(Clock(9 * 3600 + 5).to_string(), "09:00:05");
        assert!("9h30".parse::<Clock>().is_err());
        assert_eq!("09:75".parse::<Clock>(), Err(BAD_TIME.to_owned()));
        assert!("48:00".parse::<Clock>().is_err());
        assert_eq!(Clock::hm(47, 59).to_string().parse(), Ok(Clock::hm(47, 59)));
    }
}
