//! The NEWS2 engine: the Royal College of Physicians' National Early Warning
//! Score 2 chart (December 2017), exactly as printed.
//!
//! A paramedic scores a set of observations at the bedside and the score's
//! band decides who they call and how fast, so the chart is encoded band by
//! band below and tested edge by edge from the chart itself. Each score records
//! the [`Chart`] that made it: if the RCP revises the chart, old records still
//! say which one they were scored on.
//!
//! Validation refuses only what no living patient can have (a pulse of 600, a
//! temperature of 60 °C, a saturation over 100 %); every real extreme scores.

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The chart a score was made with. Stored beside every score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Chart {
    /// Royal College of Physicians, NEWS2, December 2017.
    #[serde(rename = "rcp-news2-2017")]
    RcpNews2_2017,
}

impl Chart {
    /// The chart new scores are made with.
    pub const CURRENT: Chart = Chart::RcpNews2_2017;

    /// Scores a set of observations on this chart.
    pub fn score(self, obs: &Observations) -> News2Score {
        match self {
            Chart::RcpNews2_2017 => rcp_2017(obs),
        }
    }
}

/// Level of consciousness on the ACVPU scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Consciousness {
    /// Alert.
    #[serde(rename = "A")]
    Alert,
    /// New confusion (or new disorientation or agitation).
    #[serde(rename = "C")]
    NewConfusion,
    /// Responds to voice.
    #[serde(rename = "V")]
    Voice,
    /// Responds to pain.
    #[serde(rename = "P")]
    Pain,
    /// Unresponsive.
    #[serde(rename = "U")]
    Unresponsive,
}

/// Which SpO2 scale applies. Scale 2 (target 88–92 %) is only for patients
/// with hypercapnic respiratory failure for whom a clinician has prescribed
/// that target; everyone else is on Scale 1. Using Scale 2 wrongly hides
/// hypoxia, so records require the prescription to be cited (see
/// [`crate::record::ObservationSet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Spo2Scale {
    /// The default scale.
    Scale1,
    /// The prescribed 88–92 % target scale.
    Scale2,
}

impl TryFrom<u8> for Spo2Scale {
    type Error = ValidationError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(Self::Scale1),
            2 => Ok(Self::Scale2),
            _ => Err(ValidationError::new("", "must be 1 or 2")),
        }
    }
}

impl From<Spo2Scale> for u8 {
    fn from(value: Spo2Scale) -> Self {
        match value {
            Spo2Scale::Scale1 => 1,
            Spo2Scale::Scale2 => 2,
        }
    }
}

/// The ranges a value must fall in to be accepted: wide enough for every
/// patient who is alive, narrow enough to catch a slipped digit.
pub mod limits {
    /// Breaths per minute.
    pub const RESPIRATION_RATE: (u16, u16) = (1, 90);
    /// Percent saturation.
    pub const SPO2: (u16, u16) = (20, 100);
    /// Systolic blood pressure, mmHg.
    pub const SYSTOLIC_BP: (u16, u16) = (20, 320);
    /// Beats per minute.
    pub const PULSE: (u16, u16) = (10, 320);
    /// Temperature in tenths of a degree Celsius (15.0–47.0 °C).
    pub const TEMPERATURE_TENTHS: (i16, i16) = (150, 470);
}

/// One set of observations as a person or device sends it: the serde form of
/// [`Observations`], unchecked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationsInput {
    /// Breaths per minute.
    pub respiration_rate: u16,
    /// Oxygen saturation, percent.
    pub spo2: u16,
    /// 1 or 2.
    pub spo2_scale: u8,
    /// True when the patient is on supplemental oxygen.
    pub supplemental_oxygen: bool,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp: u16,
    /// Pulse, beats per minute.
    pub pulse: u16,
    /// ACVPU.
    pub consciousness: Consciousness,
    /// Degrees Celsius, to one decimal place.
    pub temperature: f64,
}

/// A checked set of the seven NEWS2 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ObservationsInput", into = "ObservationsInput")]
pub struct Observations {
    respiration_rate: u16,
    spo2: u16,
    spo2_scale: Spo2Scale,
    supplemental_oxygen: bool,
    systolic_bp: u16,
    pulse: u16,
    consciousness: Consciousness,
    temperature_tenths: i16,
}

fn in_range(
    field: &str,
    value: u16,
    (lo, hi): (u16, u16),
    unit: &str,
) -> Result<u16, ValidationError> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("outside the possible range {lo}-{hi} {unit}"),
        ))
    }
}

/// Turns degrees into tenths, refusing readings with more precision than a
/// thermometer gives: the chart's bands are drawn on tenths, and silently
/// rounding 38.05 would move a patient between bands.
fn temperature_tenths(celsius: f64) -> Result<i16, ValidationError> {
    let field = "temperature";
    if !celsius.is_finite() {
        return Err(ValidationError::new(field, "must be a number"));
    }
    let tenths = (celsius * 10.0).round();
    if (celsius * 10.0 - tenths).abs() > 1e-6 {
        return Err(ValidationError::new(
            field,
            "must be given to at most one decimal place",
        ));
    }
    let (lo, hi) = limits::TEMPERATURE_TENTHS;
    if tenths < f64::from(lo) || tenths > f64::from(hi) {
        return Err(ValidationError::new(
            field,
            "outside the possible range 15.0-47.0 degrees C",
        ));
    }
    // In range, so the cast cannot truncate.
    Ok(tenths as i16)
}

impl Observations {
    /// Checks every parameter against [`limits`].
    pub fn new(input: &ObservationsInput) -> Result<Self, ValidationError> {
        Ok(Self {
            respiration_rate: in_range(
                "respiration_rate",
                input.respiration_rate,
                limits::RESPIRATION_RATE,
                "breaths/min",
            )?,
            spo2: in_range("spo2", input.spo2, limits::SPO2, "%")?,
            spo2_scale: Spo2Scale::try_from(input.spo2_scale)
                .map_err(|e| e.within("spo2_scale"))?,
            supplemental_oxygen: input.supplemental_oxygen,
            systolic_bp: in_range(
                "systolic_bp",
                input.systolic_bp,
                limits::SYSTOLIC_BP,
                "mmHg",
            )?,
            pulse: in_range("pulse", input.pulse, limits::PULSE, "beats/min")?,
            consciousness: input.consciousness,
            temperature_tenths: temperature_tenths(input.temperature)?,
        })
    }

    /// Which SpO2 scale these observations were scored on.
    pub fn spo2_scale(&self) -> Spo2Scale {
        self.spo2_scale
    }

    /// Scores them on the current chart.
    pub fn score(&self) -> News2Score {
        Chart::CURRENT.score(self)
    }
}

impl TryFrom<ObservationsInput> for Observations {
    type Error = ValidationError;
    fn try_from(input: ObservationsInput) -> Result<Self, Self::Error> {
        Self::new(&input)
    }
}

impl From<Observations> for ObservationsInput {
    fn from(o: Observations) -> Self {
        Self {
            respiration_rate: o.respiration_rate,
            spo2: o.spo2,
            spo2_scale: o.spo2_scale.into(),
            supplemental_oxygen: o.supplemental_oxygen,
            systolic_bp: o.systolic_bp,
            pulse: o.pulse,
            consciousness: o.consciousness,
            temperature: f64::from(o.temperature_tenths) / 10.0,
        }
    }
}

/// Each parameter's sub-score, 0–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubScores {
    /// Respiration rate.
    pub respiration_rate: u8,
    /// SpO2 on the scale in use.
    pub spo2: u8,
    /// Air (0) or supplemental oxygen (2).
    pub air_or_oxygen: u8,
    /// Systolic blood pressure.
    pub systolic_bp: u8,
    /// Pulse.
    pub pulse: u8,
    /// Consciousness (ACVPU).
    pub consciousness: u8,
    /// Temperature.
    pub temperature: u8,
}

impl SubScores {
    fn all(&self) -> [u8; 7] {
        [
            self.respiration_rate,
            self.spo2,
            self.air_or_oxygen,
            self.systolic_bp,
            self.pulse,
            self.consciousness,
            self.temperature,
        ]
    }

    /// The aggregate score.
    pub fn total(&self) -> u8 {
        self.all().iter().sum()
    }

    /// True when any single parameter scores 3 (a "red score").
    pub fn any_red(&self) -> bool {
        self.all().contains(&3)
    }
}

/// The clinical risk band that decides the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskBand {
    /// Aggregate 0–4 with no red parameter.
    Low,
    /// A single parameter scores 3 and the aggregate is under 5.
    LowMedium,
    /// Aggregate 5–6.
    Medium,
    /// Aggregate 7 or more.
    High,
}

impl RiskBand {
    /// What a community clinician on a home visit should do for this band:
    /// who to call and how fast. `total` distinguishes a score of 0 within the
    /// low band.
    pub fn advice(self, total: u8) -> &'static str {
        match self {
            RiskBand::Low if total == 0 => {
                "Low risk (NEWS2 0). Continue the planned care; give safety-netting advice and repeat \
                 NEWS2 at the next contact or sooner if the patient's condition changes."
            }
            RiskBand::Low => {
                "Low risk (NEWS2 1-4). Use clinical judgement on whether the patient can stay at home; \
                 repeat observations before leaving and discuss with the duty GP the same day if you \
                 are concerned or the score rises."
            }
            RiskBand::LowMedium => {
                "Low-medium risk: one parameter scores 3. Urgent review: discuss with the duty GP or \
                 urgent care clinician within 1 hour and agree whether the patient needs hospital \
                 assessment; repeat observations while you wait and call 999 if the patient \
                 deteriorates."
            }
            RiskBand::Medium => {
                "Medium risk (NEWS2 5-6): key threshold for urgent response; think sepsis. Discuss \
                 with the duty GP or urgent care clinician now (within 30 minutes) for a decision on \
                 same-day hospital assessment; repeat observations at least every 30 minutes and stay \
                 with the patient until a plan is agreed."
            }
            RiskBand::High => {
                "High risk (NEWS2 7 or more): emergency response. Call 999 now for an emergency \
                 ambulance and hospital assessment (respect any ReSPECT or DNACPR decision), start \
                 immediate treatment, repeat observations every 15 minutes, stay with the patient \
                 and hand over the NEWS2 score."
            }
        }
    }
}

/// Longest escalation advice a stored score may carry, in characters. The
/// advice is kept as the clinician saw it and not compared with today's
/// wording, so it is bounded instead: the longest wording now is under 400
/// characters, and the bound keeps a record's size bounded (see
/// [`crate::record::MAX_RECORD_JSON_BYTES`]).
pub const MAX_ADVICE_CHARS: usize = 1_000;

/// A scored set of observations: what the screen shows and the record keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct News2Score {
    /// The aggregate score.
    pub total: u8,
    /// The clinical risk band.
    pub risk: RiskBand,
    /// Each parameter's sub-score.
    pub parameters: SubScores,
    /// The escalation advice shown to the clinician, worded for a home
    /// visit; at most [`MAX_ADVICE_CHARS`] in a stored record.
    pub advice: String,
    /// The chart that produced this score.
    pub chart: Chart,
}

fn band(value: u16, bands: &[(u16, u8)]) -> u8 {
    // `bands` lists (upper bound inclusive, score) in rising order; the last
    // entry's bound is u16::MAX.
    bands
        .iter()
        .find(|(upper, _)| value <= *upper)
        .map_or(0, |(_, score)| *score)
}

fn rcp_2017(o: &Observations) -> News2Score {
    let respiration_rate = band(
        o.respiration_rate,
        &[(8, 3), (11, 1), (20, 0), (24, 2), (u16::MAX, 3)],
    );
    let spo2 = match o.spo2_scale {
        Spo2Scale::Scale1 => band(o.spo2, &[(91, 3), (93, 2), (95, 1), (u16::MAX, 0)]),
        Spo2Scale::Scale2 => {
            if o.spo2 <= 92 || !o.supplemental_oxygen {
                // On air, anything from 88 up is on target; the chart only
                // scores high saturations when they come from oxygen.
                band(o.spo2, &[(83, 3), (85, 2), (87, 1), (u16::MAX, 0)])
            } else {
                band(o.spo2, &[(94, 1), (96, 2), (u16::MAX, 3)])
            }
        }
    };
    let air_or_oxygen = if o.supplemental_oxygen { 2 } else { 0 };
    let systolic_bp = band(
        o.systolic_bp,
        &[(90, 3), (100, 2), (110, 1), (219, 0), (u16::MAX, 3)],
    );
    let pulse = band(
        o.pulse,
        &[(40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (u16::MAX, 3)],
    );
    let consciousness = match o.consciousness {
        Consciousness::Alert => 0,
        _ => 3,
    };
    let t = o.temperature_tenths;
    let temperature = match t {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        _ => 2,
    };
    let parameters = SubScores {
        respiration_rate,
        spo2,
        air_or_oxygen,
        systolic_bp,
        pulse,
        consciousness,
        temperature,
    };
    let total = parameters.total();
    let risk = match total {
        7.. => RiskBand::High,
        5..=6 => RiskBand::Medium,
        _ if parameters.any_red() => RiskBand::LowMedium,
        _ => RiskBand::Low,
    };
    News2Score {
        total,
        risk,
        parameters,
        advice: risk.advice(total).to_owned(),
        chart: Chart::RcpNews2_2017,
    }
}
