//! The synthetic demo network: six practices in East Dorset, about 31,000
//! registered patients, a few hundred housebound, ten care homes, four
//! paramedics, three clinical pharmacists and a morning's visit requests.
//!
//! It is generated from a seed with a portable generator (ChaCha8), so the
//! same seed gives the same network on every machine: demos, benchmarks and
//! tests can share it. Every NHS number is in the `999` test range and every
//! name is assembled from common word lists: no real person's data.

use jiff::civil::{Date, Time, time};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::network::{
    BreakWindow, CareHomeId, Clinician, ClinicianId, Network, NetworkId, OdsCode, Practice, Role,
    Shift, Skill,
};
use crate::patient::{
    Address, CareHome, KeyFlags, Patient, PersonName, Postcode, Resident, Scale2Prescription,
};
use crate::text::{FreeText, ShortText};
use crate::visit::{TimeWindow, Urgency, VisitRequest, VisitRequestId};
use crate::{Location, NhsNumber};

/// Everything the demo needs about one network on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoNetwork {
    /// The day the requests and shifts are for.
    pub day: Date,
    /// The network and its practices.
    pub network: Network,
    /// Every registered patient.
    pub patients: Vec<Patient>,
    /// The care homes and their residents.
    pub care_homes: Vec<CareHome>,
    /// The visiting clinicians on shift.
    pub clinicians: Vec<Clinician>,
    /// The morning's visit requests, after duty-GP triage.
    pub visit_requests: Vec<VisitRequest>,
}

impl DemoNetwork {
    /// Housebound patients: the service's caseload.
    pub fn housebound(&self) -> impl Iterator<Item = &Patient> {
        self.patients.iter().filter(|p| p.housebound)
    }
}

/// (name, town, postcode district, lat, lon, list size) of the six practices.
const PRACTICES: [(&str, &str, &str, f64, f64, usize); 6] = [
    (
        "Minster Green Surgery",
        "Wimborne",
        "BH21",
        50.7990,
        -1.9870,
        7_200,
    ),
    (
        "Ferndown Heath Practice",
        "Ferndown",
        "BH22",
        50.8070,
        -1.8990,
        6_100,
    ),
    (
        "Verwood Meadows Surgery",
        "Verwood",
        "BH31",
        50.8790,
        -1.8750,
        5_300,
    ),
    (
        "West Moors Pines Practice",
        "West Moors",
        "BH22",
        50.8290,
        -1.8830,
        4_400,
    ),
    (
        "Corfe Mullen Village Surgery",
        "Corfe Mullen",
        "BH21",
        50.7710,
        -2.0130,
        4_300,
    ),
    (
        "Colehill Lane Surgery",
        "Colehill",
        "BH21",
        50.8080,
        -1.9570,
        3_700,
    ),
];

const GIVEN: [&str; 24] = [
    "Alice", "Arthur", "Barbara", "Brian", "Carol", "Colin", "Dorothy", "David", "Edith", "Eric",
    "Florence", "Frank", "Grace", "George", "Helen", "Harold", "Irene", "Ian", "Joan", "John",
    "Margaret", "Kenneth", "Susan", "Peter",
];
const FAMILY: [&str; 24] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Hughes", "Edwards", "Turner", "Baker",
];
const STREETS: [&str; 12] = [
    "Church Road",
    "Station Road",
    "Victoria Road",
    "Park Lane",
    "Mill Lane",
    "Oak Avenue",
    "The Crescent",
    "Heath Close",
    "Pine Walk",
    "Meadow Way",
    "Manor Road",
    "Riverside",
];
const MEDICINES: [&str; 16] = [
    "Amlodipine 5 mg once daily",
    "Atorvastatin 20 mg at night",
    "Ramipril 5 mg once daily",
    "Metformin 500 mg twice daily",
    "Bisoprolol 2.5 mg once daily",
    "Apixaban 5 mg twice daily",
    "Furosemide 40 mg in the morning",
    "Omeprazole 20 mg once daily",
    "Paracetamol 1 g four times daily when required",
    "Levothyroxine 75 micrograms once daily",
    "Donepezil 10 mg at night",
    "Sertraline 50 mg once daily",
    "Tiotropium 2.5 micrograms two puffs once daily",
    "Alendronic acid 70 mg once weekly",
    "Adcal-D3 one tablet twice daily",
    "Zopiclone 3.75 mg at night",
];
const ALLERGIES: [&str; 5] = ["Penicillin", "Codeine", "Latex", "Trimethoprim", "Aspirin"];
const CARE_HOMES: [&str; 10] = [
    "The Elms",
    "Harbour View",
    "Beechwood House",
    "Stour Lodge",
    "Heathlands",
    "Millbrook Court",
    "St Aldhelm's",
    "Pinewood Grange",
    "Riverside Manor",
    "Oakfield House",
];
const REASONS: [(&str, u16); 10] = [
    ("Fall at home, on the floor earlier, now in chair", 45),
    ("Increasing breathlessness, known COPD", 40),
    ("Confusion, possible urinary infection", 40),
    ("Chest infection not improving on antibiotics", 35),
    ("Leg swelling and redness", 30),
    ("Blocked urinary catheter", 45),
    ("Reduced mobility and general decline", 50),
    ("Post-discharge review after hospital stay", 40),
    ("Pain not controlled, palliative care", 45),
    ("Dizziness on standing", 35),
];

/// Builds the demo network for `day` from `seed`.
pub fn generate(seed: u64, day: Date) -> DemoNetwork {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let label = |s: &str| ShortText::parse("demo", s).expect("demo labels are valid");

    let practices: Vec<Practice> = PRACTICES
        .iter()
        .enumerate()
        .map(|(i, (name, _, _, lat, lon, _))| Practice {
            ods_code: OdsCode::parse(&format!("D{:05}", 99_001 + i)).expect("valid code"),
            name: label(name),
            location: Location::new(*lat, *lon).expect("valid coordinates"),
        })
        .collect();

    let mut stems = NhsStems::new(&mut rng);
    let mut patients = Vec::with_capacity(31_000);
    for (i, (_, town, district, lat, lon, list_size)) in PRACTICES.iter().enumerate() {
        for _ in 0..*list_size {
            let location = jitter(&mut rng, *lat, *lon, 0.03);
            let nhs_number = stems.next(&mut rng);
            let patient = make_patient(
                &mut rng,
                nhs_number,
                &practices[i].ods_code,
                town,
                district,
                location,
                day,
            );
            patients.push(patient);
        }
    }

    // Ten care homes, each aligned to a practice, with 15-45 residents drawn
    // from that practice's oldest patients.
    let mut care_homes = Vec::with_capacity(CARE_HOMES.len());
    for (h, name) in CARE_HOMES.iter().enumerate() {
        let practice = h % practices.len();
        let (_, _, _, lat, lon, _) = PRACTICES[practice];
        let location = jitter(&mut rng, lat, lon, 0.02);
        let id = CareHomeId::parse(&name.to_ascii_lowercase().replace([' ', '\''], "-"))
            .expect("valid id");
        let count = rng.random_range(15..=45);
        let mut residents = Vec::with_capacity(count);
        for p in patients.iter_mut().filter(|p| {
            p.registered_practice == practices[practice].ods_code
                && p.care_home.is_none()
                && age_on(p.date_of_birth, day) >= 75
        }) {
            if residents.len() == count {
                break;
            }
            p.care_home = Some(id.clone());
            p.housebound = true;
            p.address.lines = vec![label(name)];
            p.address.location = location;
            residents.push(Resident {
                nhs_number: p.nhs_number.clone(),
                review_due: day
                    .checked_add(jiff::Span::new().days(rng.random_range(-40..60)))
                    .expect("date in range"),
            });
        }
        care_homes.push(CareHome {
            id,
            name: label(name),
            location,
            aligned_practice: practices[practice].ods_code.clone(),
            residents,
        });
    }

    let clinicians = make_clinicians(&practices);
    let housebound: Vec<&Patient> = patients
        .iter()
        .filter(|p| p.housebound && p.care_home.is_none())
        .collect();
    let visit_requests = make_requests(&mut rng, &housebound, day);

    DemoNetwork {
        day,
        network: Network {
            id: NetworkId::parse("east-dorset").expect("valid id"),
            name: label("East Dorset PCN (synthetic demo)"),
            practices,
        },
        patients,
        care_homes,
        clinicians,
        visit_requests,
    }
}

/// Hands out distinct nine-digit stems in the 999 range that have a valid
/// check digit, walking upwards from a random start.
struct NhsStems {
    next: u32,
}

impl NhsStems {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            next: rng.random_range(999_000_000..999_500_000),
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> NhsNumber {
        loop {
            self.next += rng.random_range(1..=7);
            if let Some(n) = NhsNumber::from_stem(self.next) {
                return n;
            }
        }
    }
}

fn jitter(rng: &mut ChaCha8Rng, lat: f64, lon: f64, spread: f64) -> Location {
    let dlat = rng.random_range(-spread..spread);
    let dlon = rng.random_range(-spread..spread) * 1.6;
    Location::new(lat + dlat, lon + dlon).expect("demo points stay in range")
}

fn age_on(dob: Date, day: Date) -> i16 {
    let mut age = day.year() - dob.year();
    if (day.month(), day.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

fn make_patient(
    rng: &mut ChaCha8Rng,
    nhs_number: NhsNumber,
    practice: &OdsCode,
    town: &str,
    district: &str,
    location: Location,
    day: Date,
) -> Patient {
    let label = |s: &str| ShortText::parse("demo", s).expect("demo labels are valid");
    // Roughly a practice's age profile, with a long tail of the very old.
    let age: i16 = match rng.random_range(0..100) {
        0..=19 => rng.random_range(0..18),
        20..=69 => rng.random_range(18..65),
        70..=91 => rng.random_range(65..85),
        _ => rng.random_range(85..102),
    };
    let date_of_birth = Date::new(
        day.year() - age,
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    )
    .expect("valid date");
    let date_of_birth = if date_of_birth > day {
        date_of_birth
            .checked_sub(jiff::Span::new().years(1))
            .expect("valid date")
    } else {
        date_of_birth
    };
    let housebound = age >= 70 && rng.random_bool(0.035);
    let n_meds = if age >= 65 {
        rng.random_range(2..9)
    } else {
        rng.random_range(0..3)
    };
    let medicines = MEDICINES
        .choose_multiple(rng, n_meds)
        .map(|m| label(m))
        .collect();
    let allergies = if rng.random_bool(0.15) {
        vec![label(ALLERGIES.choose(rng).expect("non-empty"))]
    } else {
        Vec::new()
    };
    let copd_target = housebound && rng.random_bool(0.08);
    let postcode = format!(
        "{district} {}{}{}",
        rng.random_range(1..10),
        char::from(rng.random_range(b'A'..=b'Z')),
        char::from(rng.random_range(b'A'..=b'Z')),
    );
    Patient {
        nhs_number,
        name: PersonName {
            given: label(GIVEN.choose(rng).expect("non-empty")),
            family: label(FAMILY.choose(rng).expect("non-empty")),
        },
        date_of_birth,
        address: Address {
            lines: vec![label(&format!(
                "{} {}",
                rng.random_range(1..120),
                STREETS.choose(rng).expect("non-empty")
            ))],
            town: label(town),
            postcode: Postcode::parse(&postcode).expect("generated postcodes are valid"),
            location,
        },
        registered_practice: practice.clone(),
        care_home: None,
        housebound,
        flags: KeyFlags {
            dnacpr: housebound && rng.random_bool(0.2),
            respect_plan: housebound && rng.random_bool(0.3),
            spo2_scale2: copd_target.then(|| Scale2Prescription {
                prescribed_by: label("Respiratory consultant"),
                prescribed_on: day
                    .checked_sub(jiff::Span::new().days(rng.random_range(30..400)))
                    .expect("valid date"),
            }),
        },
        allergies,
        medicines,
        notes: if housebound {
            FreeText::parse(
                "notes",
                "Keysafe by the front door; code held by the practice.",
            )
            .expect("valid")
        } else {
            FreeText::default()
        },
    }
}

/// (id, name, role, skills, base practice index, shift start, shift end).
type ClinicianSpec = (
    &'static str,
    &'static str,
    Role,
    &'static [&'static str],
    usize,
    Time,
    Time,
);

fn make_clinicians(practices: &[Practice]) -> Vec<Clinician> {
    let skill = |s: &str| Skill::parse(s).expect("valid skill");
    let shift = |start: Time, end: Time| {
        Shift::new(
            start,
            end,
            Some(BreakWindow {
                earliest: time(12, 0, 0, 0),
                latest: time(13, 30, 0, 0),
                minutes: 30,
            }),
        )
        .expect("valid shift")
    };
    #[rustfmt::skip]
    let specs: [ClinicianSpec; 7] = [
        ("para-ahmed", "Sam Ahmed", Role::Paramedic, &["paramedic", "prescriber"], 0, time(8, 0, 0, 0), time(16, 0, 0, 0)),
        ("para-okafor", "Jo Okafor", Role::Paramedic, &["paramedic", "catheter-care"], 1, time(8, 0, 0, 0), time(16, 0, 0, 0)),
        ("para-lewis", "Chris Lewis", Role::Paramedic, &["paramedic"], 2, time(9, 0, 0, 0), time(17, 0, 0, 0)),
        ("para-novak", "Alex Novak", Role::Paramedic, &["paramedic", "catheter-care", "prescriber"], 4, time(8, 30, 0, 0), time(16, 30, 0, 0)),
        ("pharm-shah", "Priya Shah", Role::ClinicalPharmacist, &["pharmacist", "prescriber"], 0, time(9, 0, 0, 0), time(17, 0, 0, 0)),
        ("pharm-byrne", "Ciara Byrne", Role::ClinicalPharmacist, &["pharmacist"], 3, time(9, 0, 0, 0), time(15, 0, 0, 0)),
        ("pharm-mensah", "Kofi Mensah", Role::ClinicalPharmacist, &["pharmacist", "prescriber"], 5, time(8, 30, 0, 0), time(16, 30, 0, 0)),
    ];
    specs
        .iter()
        .map(|(id, name, role, skills, base, start, end)| Clinician {
            id: ClinicianId::parse(id).expect("valid id"),
            name: ShortText::parse("name", name).expect("valid name"),
            role: *role,
            skills: skills.iter().map(|s| skill(s)).collect(),
            base_practice: practices[*base].ods_code.clone(),
            shift: shift(*start, *end),
        })
        .collect()
}

fn make_requests(rng: &mut ChaCha8Rng, housebound: &[&Patient], day: Date) -> Vec<VisitRequest> {
    let count = 24.min(housebound.len());
    let chosen: Vec<&&Patient> = housebound.choose_multiple(rng, count).collect();
    // The duty GP triages the morning's list from 07:00 UK time, before the
    // first shift starts, so no visit is planned before it was asked for.
    let morning = day
        .at(7, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").expect("built-in time zone"))
        .expect("valid time")
        .timestamp();
    chosen
        .into_iter()
        .enumerate()
        .map(|(i, patient)| {
            let (reason, minutes) = REASONS.choose(rng).expect("non-empty");
            // Two immediate visits a morning, the rest a mix of same-day and
            // routine, as a duty GP's triage list usually looks.
            let urgency = match (i, rng.random_range(0..10)) {
                (0..2, _) => Urgency::Immediate,
                (_, 0..=6) => Urgency::SameDay,
                (_, _) => Urgency::Routine {
                    due_by: day
                        .checked_add(jiff::Span::new().days(rng.random_range(1..5)))
                        .expect("valid date"),
                },
            };
            let mut required_skills = vec![Skill::parse("paramedic").expect("valid")];
            if reason.contains("catheter") {
                required_skills.push(Skill::parse("catheter-care").expect("valid"));
            }
            let mut time_windows = if rng.random_bool(0.4) {
                let start_hour = rng.random_range(9..14);
                vec![
                    TimeWindow::new(time(start_hour, 0, 0, 0), time(start_hour + 2, 0, 0, 0))
                        .expect("valid window"),
                ]
            } else {
                Vec::new()
            };
            // An immediate visit is as soon as possible: no window to wait for.
            // (Drawn all the same, so each seed's network stays as it was.)
            if matches!(urgency, Urgency::Immediate) {
                time_windows.clear();
            }
            let mut id = [0u8; 16];
            rng.fill(&mut id);
            VisitRequest {
                id: VisitRequestId(uuid::Builder::from_random_bytes(id).into_uuid()),
                patient: patient.nhs_number.clone(),
                practice: patient.registered_practice.clone(),
                reason: ShortText::parse("reason", reason).expect("valid reason"),
                urgency,
                required_skills,
                time_windows,
                expected_minutes: *minutes,
                requested_at: morning
                    .checked_add(jiff::SignedDuration::from_mins(i as i64 * 2))
                    .unwrap_or(morning),
                triaged_by: ClinicianId::parse("duty-gp").expect("valid id"),
            }
        })
        .collect()
}
