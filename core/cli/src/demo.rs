//! `doorstep demo`: the whole service on the embedded default, end to end, in
//! one process.
//!
//! It generates the synthetic East Dorset network, plans the day's rounds with
//! the optimiser, starts the sync endpoint on SQLite in a data directory, then
//! plays a paramedic's morning on an encrypted device store: the round is put
//! on the device, each visit is recorded with a NEWS2 set and an outcome that
//! follows the escalation advice, one record is amended, and the device syncs.
//! A second paramedic's device then syncs and receives those records, as a
//! colleague taking over a patient would. Every step is the real component;
//! only the platform keystore is replaced by an in-memory key, because a
//! command-line run has none.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doorstep_domain::demo::{DemoNetwork, generate};
use doorstep_domain::history::Head;
use doorstep_domain::network::{ClinicianId, DeviceId, Role};
use doorstep_domain::news2::{Consciousness, Observations, ObservationsInput, RiskBand};
use doorstep_domain::record::{
    FollowUpTask, ObservationSet, Outcome, RecordId, RecordVersion, ReferralUrgency, TaskOwner,
    VersionId, VersionMeta, VisitContent, VisitRecord,
};
use doorstep_domain::text::{FreeText, ShortText};
use doorstep_domain::visit::VisitRequest;
use doorstep_routing::{Budget, Plan, StopKind};
use doorstep_server::auth::{SigningKey, TokenRole};
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{Application, Config};
use doorstep_store::{
    CurrentRecord, MemoryKeyProvider, Round, RoundStop, StopWork, Store, StoreConfig,
};
use doorstep_sync::admin::list_forks;
use doorstep_sync::engine::{SyncConfig, SyncEngine, TokenSource};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::demo_data::NetworkArgs;
use crate::rounds::problem_for;

/// Options for `doorstep demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The demo network; its seed also seeds the optimiser and the visits.
    #[command(flatten)]
    network: NetworkArgs,
    /// Seconds the optimiser may spend on the day's plan.
    #[arg(long, default_value_t = 1.0)]
    time_limit: f64,
    /// Directory for the endpoint's key and database and the device stores;
    /// a fresh temporary directory when absent.
    #[arg(long)]
    data: Option<PathBuf>,
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the demo and prints what happened.
pub fn run(args: &Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("doorstep demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed the pipe (`doorstep demo | head`): it has what it wanted.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(crate::reader_gone) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("doorstep demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: &Args) -> DemoResult<()> {
    if !(args.time_limit > 0.0 && args.time_limit <= 600.0) {
        return Err("--time-limit must be more than 0 and at most 600 seconds".into());
    }
    // The day's records are written as the day goes, and the endpoint
    // refuses a record written more than a day ahead of its clock.
    let today = Timestamp::now().to_zoned(uk()?).date();
    if args.network.day > today {
        return Err(format!(
            "--day {} is after today ({today}): the demo records and syncs the day's visits, \
             and the endpoint refuses records written in its future (doorstep demo-data \
             generates any day)",
            args.network.day
        )
        .into());
    }
    let temp;
    let data = match &args.data {
        Some(dir) => {
            refuse_earlier_devices(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };

    let mut out = io::stdout();
    let network = generate(args.network.seed, args.network.day);
    writeln!(
        out,
        "{}: {} practices, {} patients ({} housebound), {} care homes, {} clinicians, {} visit requests",
        network.network.name,
        network.network.practices.len(),
        network.patients.len(),
        network.housebound().count(),
        network.care_homes.len(),
        network.clinicians.len(),
        network.visit_requests.len()
    )?;

    let problem = problem_for(&network)?;
    let plan = doorstep_routing::plan(
        &problem,
        &Budget::time(Duration::from_secs_f64(args.time_limit)),
        args.network.seed,
    )?;
    print_plan(&mut out, &plan)?;

    // The endpoint, embedded default: SQLite in the data directory.
    let server_dir = data.join("endpoint");
    let app = Application::build(Config::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        server_dir.clone(),
    ))
    .await?;
    let base_url = format!("http://{}", app.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        stop_rx.await.ok();
    }));
    writeln!(
        out,
        "\nendpoint listening on {base_url} (SQLite in the data directory)"
    )?;

    let paramedics: Vec<&ClinicianId> = network
        .clinicians
        .iter()
        .filter(|c| c.role == Role::Paramedic)
        .map(|c| &c.id)
        .collect();
    let busiest = plan
        .rounds
        .iter()
        .filter(|r| paramedics.iter().any(|p| p.as_str() == r.clinician))
        .max_by_key(|r| r.stops.iter().filter(|s| s.kind == StopKind::Visit).count())
        .ok_or("the plan gave no paramedic a round")?;
    let clinician = ClinicianId::parse(&busiest.clinician)?;
    let colleague = paramedics
        .iter()
        .find(|p| **p != &clinician)
        .ok_or("the demo needs two paramedics")?;

    let key = SigningKey::load_or_create(&server_dir)?;
    let device = DeviceId::parse(&format!("{clinician}-phone"))?;
    let token = token_for(&key, &network, &clinician, &device)?;
    let store = Arc::new(Mutex::new(open_device(&data, &device)?));

    let round = device_round(&network, &plan, &clinician, args.network.day)?;
    lock(&store)?.save_round(&round)?;
    let on_device = lock(&store)?
        .round(args.network.day)?
        .ok_or("the round did not reach the device store")?;
    writeln!(
        out,
        "\n{clinician}'s device holds today's round offline: {} visits",
        on_device.round.stops.len()
    )?;

    let mut rng = ChaCha8Rng::seed_from_u64(args.network.seed);
    let mut first: Option<VisitRecord> = None;
    let mut recorded: Vec<RecordId> = Vec::new();
    for stop in &round.stops {
        let StopWork::Visit { request } = &stop.work else {
            continue;
        };
        let record = record_visit(&mut rng, request, stop, &clinician, &device)?;
        let score = record
            .content
            .latest_score()
            .ok_or("a recorded visit has no NEWS2 set")?;
        writeln!(
            out,
            "  visit {} NEWS2 {:>2} {:<11} -> {}",
            stop.planned_start.to_zoned(uk()?).strftime("%H:%M"),
            score.total,
            band(score.risk),
            outcome_label(&record.content.outcome)
        )?;
        lock(&store)?.save(&record)?;
        recorded.push(record.meta.record_id);
        first.get_or_insert(record);
    }
    if let Some(original) = first {
        let amended = amend(
            &original,
            &clinician,
            &device,
            "Telephone review tomorrow morning",
        )?;
        lock(&store)?.save(&amended)?;
        writeln!(
            out,
            "  amended the first record (new version supersedes the old; both kept)"
        )?;
    }
    let unsynced = lock(&store)?.unsynced_count()?;
    writeln!(out, "  outbox before sync: {unsynced} changes waiting")?;

    let engine = SyncEngine::new(
        SyncConfig::new(base_url.clone(), network.network.id.clone(), device.clone()),
        Arc::clone(&store),
        Arc::new(token.clone()) as Arc<dyn TokenSource>,
    )?;
    let report = engine.sync().await?;
    let counts = engine.status().counts;
    if report.rejected != 0 || counts.unsynced() != 0 {
        return Err(format!(
            "the sync left work undone: {} changes rejected, {} unsynced",
            report.rejected,
            counts.unsynced()
        )
        .into());
    }
    writeln!(
        out,
        "  sync: {} pushed, {} rejected, {} pulled; outbox now {} accepted, {} unsynced",
        report.pushed,
        report.rejected,
        report.pulled_new,
        counts.accepted,
        counts.unsynced()
    )?;

    let colleague_device = DeviceId::parse(&format!("{colleague}-phone"))?;
    let colleague_token = token_for(&key, &network, colleague, &colleague_device)?;
    let colleague_store = Arc::new(Mutex::new(open_device(&data, &colleague_device)?));
    let colleague_engine = SyncEngine::new(
        SyncConfig::new(
            base_url.clone(),
            network.network.id.clone(),
            colleague_device.clone(),
        ),
        Arc::clone(&colleague_store),
        Arc::new(colleague_token) as Arc<dyn TokenSource>,
    )?;
    let pulled = colleague_engine.sync().await?;
    let readable = lock(&colleague_store)?.record_ids::<VisitContent>()?;
    if let Some(missing) = recorded.iter().find(|id| !readable.contains(id)) {
        return Err(format!("record {} did not reach the colleague's device", missing.0).into());
    }
    let visible = readable.len();
    writeln!(
        out,
        "\n{colleague}'s device synced: {} record versions pulled, {visible} visit records now readable offline",
        pulled.pulled_new
    )?;

    let first = *recorded.first().ok_or("the round recorded no visit")?;
    fork_and_reconcile(
        &mut out,
        first,
        (&store, &engine, &clinician, &device),
        (
            &colleague_store,
            &colleague_engine,
            colleague,
            &colleague_device,
        ),
        (&base_url, &token),
    )
    .await?;

    let unsynced = lock(&store)?.unsynced_count()? + lock(&colleague_store)?.unsynced_count()?;
    stop_tx.send(()).ok();
    server.await??;
    writeln!(
        out,
        "\nendpoint stopped; nothing left unsynced: {}",
        unsynced == 0
    )?;
    Ok(())
}

fn lock(store: &Mutex<Store>) -> DemoResult<std::sync::MutexGuard<'_, Store>> {
    store
        .lock()
        .map_err(|_| "device store lock poisoned".into())
}

fn print_plan(out: &mut impl Write, plan: &Plan) -> io::Result<()> {
    writeln!(
        out,
        "\nplan: {} rounds, travel {} min, {} urgent unserved, {} routine deferred, lateness {} min, \
         immediate delay {} min",
        plan.rounds.iter().filter(|r| !r.stops.is_empty()).count(),
        plan.summary.travel_seconds / 60,
        plan.summary.unserved_urgent,
        plan.summary.unserved_routine,
        plan.summary.late_seconds / 60,
        plan.summary.immediate_delay_seconds / 60
    )?;
    for round in &plan.rounds {
        if round.stops.is_empty() {
            writeln!(
                out,
                "  {:<14} no round: nothing planned for them",
                round.clinician
            )?;
            continue;
        }
        let visits = round
            .stops
            .iter()
            .filter(|s| s.kind == StopKind::Visit)
            .count();
        let homes: usize = round
            .stops
            .iter()
            .filter(|s| s.kind == StopKind::CareHome)
            .map(|s| s.residents.len())
            .sum();
        writeln!(
            out,
            "  {:<14} {}-{}  {visits:>2} visits  {homes:>2} care-home reviews  travel {:>3} min",
            round.clinician,
            round.depart,
            round.back,
            round.travel_seconds / 60
        )?;
    }
    // Group what was left out by its reason: a coordinator reads "12 reviews
    // deferred, the home's visit is full" faster than twelve lines.
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for u in &plan.unplanned {
        let what = if u.care_home.is_some() {
            "care-home review"
        } else {
            "visit"
        };
        // The reason's kind as the plan's JSON names it (docs/plan-schema.md).
        let kind = serde_json::to_value(&u.reason)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_string))
            .unwrap_or_default();
        *reasons.entry(format!("{what}: {kind}")).or_default() += 1;
    }
    for (reason, count) in reasons {
        writeln!(out, "  not planned today: {count:>3} x {reason}")?;
    }
    Ok(())
}

/// The UK's time zone, from the database built into the binary (a device or
/// a slim server image may have none of its own).
fn uk() -> DemoResult<jiff::tz::TimeZone> {
    Ok(jiff::tz::TimeZone::get("Europe/London")?)
}

/// The instant a plan's clock time `secs` on `day` is. The plan's clock is the
/// UK's wall clock from the day's midnight (hours past 24 are the next day's),
/// so a stop at 09:00 in summer is 08:00 UTC, and the two days the clocks
/// change come out right too.
fn uk_instant(zone: &jiff::tz::TimeZone, day: Date, secs: u32) -> DemoResult<Timestamp> {
    let date = day.checked_add(jiff::Span::new().days(i64::from(secs / 86_400)))?;
    let wall = secs % 86_400;
    let [h, m, s] = [wall / 3600, wall % 3600 / 60, wall % 60].map(|n| n as i8);
    Ok(date.at(h, m, s, 0).to_zoned(zone.clone())?.timestamp())
}

fn token_for(
    key: &SigningKey,
    network: &DemoNetwork,
    clinician: &ClinicianId,
    device: &DeviceId,
) -> DemoResult<String> {
    Ok(issue(
        key,
        TokenRequest {
            network: network.network.id.clone(),
            role: TokenRole::Paramedic,
            subject: clinician.to_string(),
            device: Some(device.clone()),
            ttl: SignedDuration::from_hours(1),
        },
        doorstep_server::app::DEFAULT_ISSUER,
        doorstep_server::app::DEFAULT_AUDIENCE,
        Timestamp::now(),
    )?)
}

/// Refuses a `--data` directory that holds device stores from an earlier run. Their keys
/// lived in that run's memory (a command line has no platform keystore), so they cannot be
/// opened again; the demo says so before it plans, rather than failing half-way, and leaves
/// them as they are.
fn refuse_earlier_devices(data: &std::path::Path) -> DemoResult<()> {
    let devices = data.join("devices");
    let earlier = match std::fs::read_dir(&devices) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("cannot read {}: {e}", devices.display()).into()),
    };
    if earlier {
        return Err(format!(
            "{} holds device stores from an earlier demo, whose keys that run kept in memory \
             and are gone; give --data an empty directory, or remove that folder",
            devices.display()
        )
        .into());
    }
    Ok(())
}

fn open_device(data: &std::path::Path, device: &DeviceId) -> DemoResult<Store> {
    let path = data.join("devices").join(format!("{device}.sqlite3"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(Store::open(
        &StoreConfig::new(path),
        Arc::new(MemoryKeyProvider::new()),
    )?)
}

/// The clinician's part of the plan, as the device stores it: each planned
/// visit with its request and planned times.
fn device_round(
    network: &DemoNetwork,
    plan: &Plan,
    clinician: &ClinicianId,
    day: Date,
) -> DemoResult<Round> {
    let round = plan
        .rounds
        .iter()
        .find(|r| r.clinician == clinician.as_str())
        .ok_or("no round for the clinician")?;
    let zone = uk()?;
    let at = |secs: u32| uk_instant(&zone, day, secs);
    let mut stops = Vec::new();
    for stop in round.stops.iter().filter(|s| s.kind == StopKind::Visit) {
        let request = network
            .visit_requests
            .iter()
            .find(|r| r.id.0.to_string() == stop.id)
            .ok_or("a planned visit matches no request")?;
        stops.push(RoundStop {
            planned_start: at(stop.arrival.0)?,
            planned_end: at(stop.finish.0)?,
            work: StopWork::Visit {
                request: request.clone(),
            },
        });
    }
    Ok(Round {
        day,
        clinician: clinician.clone(),
        stops,
    })
}

/// A plausible visit: observations drawn around the normal ranges with the
/// odd unwell patient, scored, and an outcome that follows the advice.
fn record_visit(
    rng: &mut ChaCha8Rng,
    request: &VisitRequest,
    stop: &RoundStop,
    author: &ClinicianId,
    device: &DeviceId,
) -> DemoResult<VisitRecord> {
    let unwell = rng.random_bool(0.3);
    let values = Observations::new(&ObservationsInput {
        respiration_rate: if unwell {
            rng.random_range(20..28)
        } else {
            rng.random_range(12..20)
        },
        spo2: if unwell {
            rng.random_range(90..96)
        } else {
            rng.random_range(95..100)
        },
        spo2_scale: 1,
        supplemental_oxygen: false,
        systolic_bp: rng.random_range(100..160),
        pulse: if unwell {
            rng.random_range(95..125)
        } else {
            rng.random_range(60..95)
        },
        consciousness: if unwell && rng.random_bool(0.3) {
            Consciousness::NewConfusion
        } else {
            Consciousness::Alert
        },
        temperature: f64::from(rng.random_range(362..392)) / 10.0,
    })?;
    let arrived = stop.planned_start;
    let taken = arrived + SignedDuration::from_mins(5);
    let set = ObservationSet::record(taken, values, None)?;
    let outcome = match set.score().risk {
        RiskBand::High => Outcome::EmergencyHandover {
            reference: ShortText::parse("reference", "999 call made from the visit")?,
        },
        RiskBand::Medium | RiskBand::LowMedium => Outcome::ReferredToGp {
            urgency: ReferralUrgency::Urgent,
        },
        RiskBand::Low => Outcome::ManagedAtHome,
    };
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        author.clone(),
        device.clone(),
        stop.planned_end,
    );
    Ok(RecordVersion {
        meta,
        content: VisitContent {
            visit_request: Some(request.id),
            patient: request.patient.clone(),
            practice: request.practice.clone(),
            arrived_at: arrived,
            departed_at: Some(stop.planned_end),
            observations: vec![set],
            presenting_complaint: FreeText::parse("presenting_complaint", request.reason.as_str())?,
            assessment: FreeText::parse("assessment", "History and examination as recorded.")?,
            treatment: FreeText::default(),
            outcome,
            safety_netting: FreeText::parse(
                "safety_netting",
                "Call 999 for chest pain, breathlessness at rest or new confusion; otherwise the practice.",
            )?,
            follow_up: Vec::new(),
        },
    })
}

/// One device's part in the demo's fork: its store, its sync engine, its
/// clinician and its id.
type Side<'a> = (
    &'a Mutex<Store>,
    &'a SyncEngine,
    &'a ClinicianId,
    &'a DeviceId,
);

/// Both clinicians amend the `record` while apart, which forks it at the
/// endpoint and on both devices; the first then reconciles it with a version
/// that keeps their own amendment, adds the colleague's follow-up, and
/// merges the colleague's head. Checks that the endpoint listed the fork and
/// then did not, and that both devices end on the reconciling version.
async fn fork_and_reconcile(
    out: &mut impl Write,
    record: RecordId,
    (store, engine, clinician, device): Side<'_>,
    (colleague_store, colleague_engine, colleague, colleague_device): Side<'_>,
    (endpoint, token): (&str, &str),
) -> DemoResult<()> {
    let current = |store: &Mutex<Store>| -> DemoResult<CurrentRecord<VisitContent>> {
        lock(store)?
            .current::<VisitContent>(record)?
            .ok_or_else(|| "a device lost the record".into())
    };
    let theirs = amend(
        &current(colleague_store)?.version,
        colleague,
        colleague_device,
        "Safeguarding concern raised with the practice",
    )?;
    lock(colleague_store)?.save(&theirs)?;
    let ours = amend(
        &current(store)?.version,
        clinician,
        device,
        "District nurse to change the dressing",
    )?;
    lock(store)?.save(&ours)?;
    engine.sync().await?;
    let forked = colleague_engine.sync().await?.forked;
    let listed = list_forks(endpoint, token).await?;
    if forked != 1 || !listed.iter().any(|f| f.record_id == record) {
        return Err(format!(
            "the two amendments did not fork the record: {forked} forked, {} listed",
            listed.len()
        )
        .into());
    }
    writeln!(
        out,
        "
both amended the first record while apart: forked, {} record listed at /forks",
        listed.len()
    )?;

    engine.sync().await?;
    let Head::Forked(heads) = current(store)?.head else {
        return Err("the fork did not reach the first device".into());
    };
    let mut content = ours.content.clone();
    content.follow_up.extend(
        theirs
            .content
            .follow_up
            .iter()
            .filter(|t| !ours.content.follow_up.contains(t))
            .cloned(),
    );
    let others: Vec<VersionId> = heads
        .iter()
        .copied()
        .filter(|h| *h != ours.meta.version_id)
        .collect();
    let reconciled = RecordVersion {
        meta: ours.meta.reconcile(
            &others,
            VersionId(Uuid::now_v7()),
            clinician.clone(),
            device.clone(),
            ours.meta.written_at + SignedDuration::from_mins(5),
        ),
        content,
    };
    lock(store)?.save(&reconciled)?;
    engine.sync().await?;
    colleague_engine.sync().await?;
    let one_line = Head::Single(reconciled.meta.version_id);
    let listed = list_forks(endpoint, token).await?;
    if current(store)?.head != one_line
        || current(colleague_store)?.head != one_line
        || !listed.is_empty()
    {
        return Err("the reconciliation did not make the record one line everywhere".into());
    }
    writeln!(
        out,
        "  {clinician} reconciled it: one version keeping both follow-ups and merging {} head; \
         both devices read it as one line, {} records listed at /forks",
        others.len(),
        listed.len()
    )?;
    Ok(())
}

fn amend(
    original: &VisitRecord,
    author: &ClinicianId,
    device: &DeviceId,
    follow_up: &str,
) -> DemoResult<VisitRecord> {
    let mut content = original.content.clone();
    content.follow_up.push(FollowUpTask {
        description: ShortText::parse("description", follow_up)?,
        owner: TaskOwner::VisitingService,
        due: None,
    });
    Ok(RecordVersion {
        meta: original.meta.amend(
            VersionId(Uuid::now_v7()),
            author.clone(),
            device.clone(),
            original.meta.written_at + SignedDuration::from_mins(30),
        ),
        content,
    })
}

fn band(risk: RiskBand) -> &'static str {
    match risk {
        RiskBand::Low => "low",
        RiskBand::LowMedium => "low-medium",
        RiskBand::Medium => "medium",
        RiskBand::High => "high",
    }
}

fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::ManagedAtHome => "managed at home",
        Outcome::ReferredToGp { .. } => "urgent referral to the duty GP",
        Outcome::ReferredToService { .. } => "referred to another service",
        Outcome::ConveyedToHospital { .. } => "conveyed to hospital",
        Outcome::EmergencyHandover { .. } => "999 called, handed over to the crew",
        Outcome::PatientNotAtHome => "not at home",
        Outcome::Declined { .. } => "declined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_clock_is_read_as_uk_time_in_summer_and_in_winter() {
        let zone = uk().unwrap();
        let at = |day: &str, secs: u32| uk_instant(&zone, day.parse().unwrap(), secs).unwrap();
        let nine = 9 * 3600;
        assert_eq!(
            at("2026-07-14", nine),
            "2026-07-14T08:00:00Z".parse().unwrap()
        );
        assert_eq!(
            at("2026-11-24", nine),
            "2026-11-24T09:00:00Z".parse().unwrap()
        );
        // Past midnight is the next day's wall clock.
        assert_eq!(
            at("2026-07-14", 24 * 3600 + 1800),
            "2026-07-14T23:30:00Z".parse().unwrap()
        );
        // The day the clocks go forward: 09:00 is already summer time.
        assert_eq!(
            at("2026-03-29", nine),
            "2026-03-29T08:00:00Z".parse().unwrap()
        );
    }
}
