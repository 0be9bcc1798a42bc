//! What the clinician needs with no signal: the day's round, the summaries of
//! the patients on it, and the care homes with their residents.
//!
//! These arrive in pull batches (see [`crate::pull`]) and are replaced by
//! newer ones; a round re-planned on the device (an urgent visit slotted in)
//! is saved with [`Store::save_round`]. A round is stored whole, with an index
//! of the patients it visits so loading it joins their summaries in one query.

use std::collections::HashMap;

use doorstep_domain::network::{CareHomeId, ClinicianId};
use doorstep_domain::patient::{CareHome, Patient};
use doorstep_domain::record::{EARLIEST_RECORDED, RECORDED_UNTIL};
use doorstep_domain::visit::VisitRequest;
use doorstep_domain::{NhsNumber, ValidationError};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::records::{from_json, to_json};
use crate::store::Store;

/// One clinician's planned day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// The day.
    pub day: Date,
    /// Whose round it is.
    pub clinician: ClinicianId,
    /// The stops, in the order planned.
    pub stops: Vec<RoundStop>,
}

/// One planned stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundStop {
    /// Planned arrival.
    pub planned_start: Timestamp,
    /// Planned departure.
    pub planned_end: Timestamp,
    /// What is done there.
    pub work: StopWork,
}

/// The work at a stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopWork {
    /// A home visit answering a request.
    Visit {
        /// The request, as the practice made it.
        request: VisitRequest,
    },
    /// Medication reviews at a care home.
    CareHome {
        /// The home.
        care_home: CareHomeId,
        /// The residents planned for review on this stop.
        residents: Vec<NhsNumber>,
    },
}

/// Most residents a pulled care home may list. The largest homes in
/// England have a few hundred beds, so a thousand is far past any real one,
/// and it keeps a home's summary (about 60 bytes a resident) small. It is
/// not [`doorstep_domain::patient::MAX_PATIENT_LIST`], the bound of a
/// patient's lists, which a large home could pass: refusing a real home
/// would refuse its whole pull page and stop every pull after it.
pub const MAX_CARE_HOME_RESIDENTS: usize = 1_000;

/// The longest a stop can plausibly last: a whole day at one care home.
const LONGEST_STOP: SignedDuration = SignedDuration::from_hours(24);

impl Round {
    /// Checks what the types cannot, so that an impossible round (a stop
    /// ending before it starts or lasting more than a day, a visit request
    /// its own rules refuse, a care-home stop reviewing nobody) is refused with the
    /// field that is wrong instead of being shown to a clinician as their day.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (i, stop) in self.stops.iter().enumerate() {
            let at = |e: ValidationError| e.at_index("stops", i);
            if stop.planned_end < stop.planned_start {
                return Err(at(ValidationError::new(
                    "planned_end",
                    "must not be before planned_start",
                )));
            }
            if stop.planned_end.duration_since(stop.planned_start) > LONGEST_STOP {
                return Err(at(ValidationError::new(
                    "planned_end",
                    "must be within 24 hours of planned_start",
                )));
            }
            match &stop.work {
                StopWork::Visit { request } => request
                    .validate()
                    .map_err(|e| at(e.within("work.request")))?,
                StopWork::CareHome { residents, .. } if residents.is_empty() => {
                    return Err(at(ValidationError::new(
                        "work.residents",
                        "must name at least one resident",
                    )));
                }
                StopWork::CareHome { .. } => {}
            }
        }
        Ok(())
    }

    /// Every patient the round visits, each once, in round order.
    pub fn patients(&self) -> Vec<&NhsNumber> {
        let mut seen = std::collections::HashSet::new();
        self.stops
            .iter()
            .flat_map(|stop| match &stop.work {
                StopWork::Visit { request } => std::slice::from_ref(&request.patient),
                StopWork::CareHome { residents, .. } => residents.as_slice(),
            })
            .filter(|nhs| seen.insert(*nhs))
            .collect()
    }
}

/// A round with the summaries of its patients, ready for the round screen.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRound {
    /// The round.
    pub round: Round,
    /// Summaries of the round's patients that are on the device. A patient
    /// missing here has no summary yet (the shell says so).
    pub patients: HashMap<NhsNumber, Patient>,
}

impl Store {
    /// The round for `day` with its patients' summaries; `None` when no round
    /// for that day is on the device.
    pub fn round(&self, day: Date) -> Result<Option<DayRound>> {
        let day_text = day.to_string();
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM rounds WHERE day = ?1")?
            .query_row([&day_text], |row| row.get(0))
            .optional()?;
        let Some(body) = body else {
            return Ok(None);
        };
        let round: Round = from_json(&body, "round")?;
        let mut statement = self.conn.prepare_cached(
            "SELECT p.body FROM round_patients r
             JOIN patients p ON p.nhs_number = r.nhs_number
             WHERE r.day = ?1",
        )?;
        let mut patients = HashMap::new();
        for row in statement.query_map([&day_text], |row| row.get::<_, String>(0))? {
            let patient: Patient = from_json(&row?, "patient summary")?;
            patients.insert(patient.nhs_number.clone(), patient);
        }
        Ok(Some(DayRound { round, patients }))
    }

    /// Saves a round planned or re-planned on the device, replacing the one
    /// for its day. An impossible round ([`Round::validate`]) is refused and
    /// the stored one kept.
    pub fn save_round(&mut self, round: &Round) -> Result<()> {
        round.validate()?;
        let tx = crate::store::immediate(&mut self.conn)?;
        put_round(&tx, round)?;
        tx.commit()?;
        Ok(())
    }

    /// One patient's summary, if it is on the device.
    pub fn patient(&self, nhs_number: &NhsNumber) -> Result<Option<Patient>> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM patients WHERE nhs_number = ?1")?
            .query_row([nhs_number.as_str()], |row| row.get(0))
            .optional()?;
        body.map(|b| from_json(&b, "patient summary")).transpose()
    }

    /// One care home with its residents, if it is on the device.
    pub fn care_home(&self, id: &CareHomeId) -> Result<Option<CareHome>> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM care_homes WHERE id = ?1")?
            .query_row([id.as_str()], |row| row.get(0))
            .optional()?;
        body.map(|b| from_json(&b, "care home")).transpose()
    }

    /// Every care home on the device, by id.
    pub fn care_homes(&self) -> Result<Vec<CareHome>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT body FROM care_homes ORDER BY id")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|body| from_json(&body?, "care home")).collect()
    }
}

pub(crate) fn put_round(tx: &Transaction<'_>, round: &Round) -> Result<()> {
    let day = round.day.to_string();
    tx.prepare_cached("DELETE FROM rounds WHERE day = ?1")?
        .execute([&day])?;
    tx.prepare_cached("INSERT INTO rounds (day, body) VALUES (?1, ?2)")?
        .execute(params![day, to_json(round)?])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO round_patients (day, nhs_number) VALUES (?1, ?2)")?;
    for nhs in round.patients() {
        insert.execute(params![day, nhs.as_str()])?;
    }
    Ok(())
}

pub(crate) fn put_patient(tx: &Transaction<'_>, patient: &Patient) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO patients (nhs_number, body) VALUES (?1, ?2)
         ON CONFLICT (nhs_number) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![patient.nhs_number.as_str(), to_json(patient)?])?;
    Ok(())
}

pub(crate) fn forget_patient(tx: &Transaction<'_>, nhs_number: &NhsNumber) -> Result<()> {
    tx.prepare_cached("DELETE FROM patients WHERE nhs_number = ?1")?
        .execute([nhs_number.as_str()])?;
    Ok(())
}

/// Checks a pulled care home for what its types cannot hold, as a pulled
/// patient summary is checked: at most [`MAX_CARE_HOME_RESIDENTS`]
/// residents, and each review due in the years a record may name
/// ([`EARLIEST_RECORDED`] to [`RECORDED_UNTIL`]), not against the device's
/// date, which may be wrong. Names the field, never a resident.
pub(crate) fn check_care_home(home: &CareHome) -> Result<(), ValidationError> {
    if home.residents.len() > MAX_CARE_HOME_RESIDENTS {
        return Err(ValidationError::new(
            "residents",
            format!("must have at most {MAX_CARE_HOME_RESIDENTS} entries"),
        ));
    }
    let first = EARLIEST_RECORDED.to_zoned(TimeZone::UTC).date();
    let until = RECORDED_UNTIL.to_zoned(TimeZone::UTC).date();
    for (i, resident) in home.residents.iter().enumerate() {
        if !(first..until).contains(&resident.review_due) {
            return Err(ValidationError::new(
                "review_due",
                format!("must be from {} to {}", first.year(), until.year() - 1),
            )
            .at_index("residents", i));
        }
    }
    Ok(())
}

pub(crate) fn put_care_home(tx: &Transaction<'_>, home: &CareHome) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO care_homes (id, body) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![home.id.as_str(), to_json(home)?])?;
    Ok(())
}
