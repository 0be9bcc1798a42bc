//! Points on the earth and the distance between them.
//!
//! Routing works with no signal, so the default travel model is the
//! great-circle distance between two WGS84 points (computed by `geo`) and a
//! speed model in the optimiser; a road matrix from the endpoint can replace it.

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A checked WGS84 position in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLocation", into = "RawLocation")]
pub struct Location {
    lat: f64,
    lon: f64,
}

/// The unchecked serde form of [`Location`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    lat: f64,
    lon: f64,
}

impl Location {
    /// Checks latitude in −90..=90 and longitude in −180..=180.
    pub fn new(lat: f64, lon: f64) -> Result<Self, ValidationError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(ValidationError::new("lat", "must be between -90 and 90"));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(ValidationError::new("lon", "must be between -180 and 180"));
        }
        Ok(Self { lat, lon })
    }

    /// Latitude in degrees north.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees east.
    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in metres, the offline travel model's input.
    pub fn distance_m(&self, other: &Location) -> f64 {
        Haversine.distance(
            Point::new(self.lon, self.lat),
            Point::new(other.lon, other.lat),
        )
    }
}

impl TryFrom<RawLocation> for Location {
    type Error = ValidationError;
    fn try_from(raw: RawLocation) -> Result<Self, Self::Error> {
        Self::new(raw.lat, raw.lon)
    }
}

impl From<Location> for RawLocation {
    fn from(l: Location) -> Self {
        Self {
            lat: l.lat,
            lon: l.lon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wimborne_to_ferndown_is_about_six_kilometres() {
        let wimborne = Location::new(50.7990, -1.9870).unwrap();
        let ferndown = Location::new(50.8070, -1.8990).unwrap();
        let d = wimborne.distance_m(&ferndown);
        assert!((6_000.0..6_500.0).contains(&d), "{d}");
    }

    #[test]
    fn refuses_impossible_coordinates() {
        assert_eq!(Location::new(91.0, 0.0).unwrap_err().field, "lat");
        assert_eq!(Location::new(0.0, -181.0).unwrap_err().field, "lon");
        assert_eq!(Location::new(f64::NAN, 0.0).unwrap_err().field, "lat");
        assert!(serde_json::from_str::<Location>(r#"{"lat":95,"lon":0}"#).is_err());
    }
}
