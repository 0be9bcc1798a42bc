//! The `doorstep` binary driven as a user would: stdin in, stdout and the exit
//! status out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn doorstep(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doorstep starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts input");
    child.wait_with_output().expect("doorstep finishes")
}

const EXAMPLE: &str = include_str!("../../../../examples/news2.jsonl");

#[test]
fn news2_answers_every_line_in_order_and_fails_if_any_was_refused() {
    let out = doorstep(&["news2"], EXAMPLE);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        (lines[0]["total"].as_u64(), lines[0]["risk"].as_str()),
        (Some(7), Some("high"))
    );
    assert_eq!(
        (lines[1]["total"].as_u64(), lines[1]["risk"].as_str()),
        (Some(0), Some("low"))
    );
    assert_eq!(lines[2]["risk"], "low-medium");
    // Scale 2 on oxygen at 90 %: on target (0) + oxygen (2) + RR 24 (2) +
    // pulse 96 (1).
    assert_eq!(lines[3]["total"], 5);
    assert_eq!(lines[3]["parameters"]["spo2"], 0);
    assert_eq!(lines[4]["error"]["field"], "pulse");
}

#[test]
fn news2_succeeds_when_every_line_scores() {
    let first_two: String = EXAMPLE.lines().take(2).map(|l| format!("{l}\n")).collect();
    let out = doorstep(&["news2"], &first_two);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
}

#[test]
fn demo_data_summary_describes_the_network() {
    let out = doorstep(&["demo-data", "--seed", "1"], "");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("patients     31000"));
    assert_eq!(text.matches("  practice ").count(), 6);
    assert_eq!(text.matches("  clinician ").count(), 7);
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // As `doorstep demo | head` would: the pipe closes while the command still
    // has output to write. It stops quietly and successfully.
    for args in [
        &["demo-data", "--json"][..],
        &["demo", "--time-limit", "0.1"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("doorstep starts");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("doorstep finishes");
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn news2_stops_quietly_when_its_reader_stops_reading() {
    // As `doorstep news2 < observations | head -1` would: thousands of answers are still to
    // be written when the pipe closes.
    let line = EXAMPLE.lines().next().expect("an example line");
    let input = format!("{line}\n").repeat(20_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .arg("news2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doorstep starts");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // The command stops before it has read everything, so writing the rest may fail.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().expect("doorstep finishes");
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn demo_data_json_is_the_whole_network_and_deterministic() {
    let a = doorstep(&["demo-data", "--seed", "5", "--json"], "");
    let b = doorstep(&["demo-data", "--seed", "5", "--json"], "");
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["patients"].as_array().unwrap().len(), 31_000);
}

#[test]
fn demo_data_problem_is_the_demo_day_and_plans_from_the_command_line() {
    let out = doorstep(&["demo-data", "--problem"], "");
    assert!(out.status.success());
    let problem: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem["clinicians"].as_array().unwrap().len(), 7);
    assert_eq!(problem["care_homes"].as_array().unwrap().len(), 10);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let path = file.to_str().unwrap();
    let out = doorstep(&["plan", path, "--time-limit", "0.1", "--seed", "3"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["unserved_urgent"], 0);
    assert_eq!(plan["rounds"].as_array().unwrap().len(), 7);
    // Every resident due is either planned in a care-home stop or explained.
    let due: usize = problem["care_homes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["residents"].as_array().unwrap().len())
        .sum();
    let planned: usize = plan["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["stops"].as_array().unwrap())
        .filter_map(|s| s["residents"].as_array())
        .map(Vec::len)
        .sum();
    let explained = plan["unplanned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("care_home").is_some())
        .count();
    assert!(
        planned > 0 && explained > 0,
        "{planned} planned, {explained} explained"
    );
    assert_eq!(planned + explained, due);

    let both = doorstep(&["demo-data", "--problem", "--json"], "");
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn plan_refuses_a_bad_problem_naming_the_field_and_leaving_the_file_alone() {
    let out = doorstep(&["demo-data", "--problem"], "");
    let mut problem: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.json");
    let path = file.to_str().unwrap();
    let refusal = |problem: &serde_json::Value| {
        let text = serde_json::to_string_pretty(problem).unwrap();
        std::fs::write(&file, &text).unwrap();
        let out = doorstep(&["plan", path], "");
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        String::from_utf8(out.stderr).unwrap()
    };
    // A value of the wrong type is caught while reading, at its JSON path, without the value.
    problem["visits"][2]["minutes"] = "forty".into();
    assert_eq!(
        refusal(&problem),
        "doorstep plan: invalid visits[2].minutes: wrong type, expected u32\n"
    );
    // An impossible value is caught before planning, at its path, naming the visit.
    problem["visits"][2]["minutes"] = 0.into();
    let id = problem["visits"][2]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        refusal(&problem),
        format!(
            "doorstep plan: invalid visits[2].minutes: must be between 1 and 1440 (visit {id})\n"
        )
    );
    // A file that is not JSON at all has no field to name: the file is named instead.
    std::fs::write(&file, "clinicians: ana, ben").unwrap();
    let out = doorstep(&["plan", path], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("doorstep plan: invalid problem file: not valid JSON"),
        "{err}"
    );
}

/// `doorstep demo` with its data in `data` and `extra` arguments.
fn demo_in(data: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec!["demo", "--data", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    doorstep(&args, "")
}

#[test]
fn demo_plans_records_and_syncs_end_to_end_with_nothing_left_unsynced() {
    let data = tempfile::tempdir().unwrap();
    let out = demo_in(data.path(), &["--time-limit", "0.2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 urgent unserved"), "{text}");
    assert!(text.contains("holds today's round offline"), "{text}");
    assert!(text.contains("0 rejected"), "{text}");
    assert!(text.contains("nothing left unsynced: true"), "{text}");
    // The two clinicians' amendments forked the first record, and the first
    // clinician's reconciliation made it one line on both devices and at
    // the endpoint (the demo checks each and fails otherwise).
    assert!(text.contains("forked, 1 record listed at /forks"), "{text}");
    assert!(
        text.contains("both devices read it as one line, 0 records listed at /forks"),
        "{text}"
    );
    // The colleague's device pulled every version the first device pushed.
    let pushed = number_before(&text, " pushed");
    let pulled = number_before(&text, " record versions pulled");
    assert!(pushed > 0);
    assert_eq!(pushed, pulled);
    // The endpoint's database and both encrypted device stores are on disk.
    assert!(data.path().join("endpoint").is_dir());
    assert!(
        std::fs::read_dir(data.path().join("devices"))
            .unwrap()
            .count()
            >= 2
    );
}

#[test]
fn demo_refuses_a_day_after_today_before_it_does_anything() {
    let data = tempfile::tempdir().unwrap();
    let out = demo_in(data.path(), &["--day", "2097-12-31"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--day 2097-12-31 is after today"), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
}

#[test]
fn demo_refuses_a_data_directory_with_an_earlier_runs_devices_and_leaves_them_alone() {
    let data = tempfile::tempdir().unwrap();
    let devices = data.path().join("devices");
    std::fs::create_dir_all(&devices).unwrap();
    let earlier = devices.join("p1-phone.sqlite3");
    std::fs::write(&earlier, b"an earlier run's encrypted store").unwrap();
    let out = demo_in(data.path(), &["--time-limit", "0.1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("holds device stores from an earlier demo"),
        "{err}"
    );
    // It said so before planning, and the earlier store is untouched.
    assert!(String::from_utf8(out.stdout).unwrap().is_empty());
    assert_eq!(
        std::fs::read(&earlier).unwrap(),
        b"an earlier run's encrypted store"
    );
    assert!(!data.path().join("endpoint").exists());
}

fn number_before(text: &str, marker: &str) -> usize {
    let end = text.find(marker).expect("marker present");
    let start = text[..end].rfind(' ').map_or(0, |i| i + 1);
    text[start..end]
        .parse()
        .expect("a number before the marker")
}

/// `doorstep serve` on a loopback port, stopped when dropped.
struct Endpoint {
    child: std::process::Child,
    addr: String,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the endpoint with its key and SQLite file in `data`, and reads the
/// address it listens on from its log.
fn serve(data: &std::path::Path) -> Endpoint {
    serve_with(data, &[])
}

/// [`serve`] with `extra` arguments.
fn serve_with(data: &std::path::Path, extra: &[&str]) -> Endpoint {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doorstep serve starts");
    let mut log = std::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let addr = loop {
        let line = log
            .next()
            .expect("the endpoint logs where it listens")
            .unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    // Keep reading the log, so the endpoint never blocks on a full pipe.
    std::thread::spawn(move || log.for_each(drop));
    Endpoint { child, addr }
}

/// A token from `doorstep token issue` with the key in `data`.
fn token(data: &std::path::Path, role: &str, subject: &str, device: &str) -> String {
    let out = issue(data, role, subject, &["--device", device]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `doorstep token issue` for east-dorset with the key in `data`, and `extra`
/// arguments.
fn issue(data: &std::path::Path, role: &str, subject: &str, extra: &[&str]) -> Output {
    let data = data.to_str().unwrap();
    let mut args = vec![
        "token",
        "issue",
        "--data",
        data,
        "--network",
        "east-dorset",
        "--role",
        role,
        "--subject",
        subject,
    ];
    args.extend_from_slice(extra);
    doorstep(&args, "")
}

#[test]
fn token_issue_refuses_what_the_endpoint_could_never_accept_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let refused = |out: Output, why: &str| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{stderr}");
    };
    refused(
        issue(data.path(), "paramedic", "para-1", &[]),
        "writes records: give --device",
    );
    // A record's author is a clinician's id, and a push must come from its
    // author: a paramedic's token for "Para 1" could never push anything.
    refused(
        issue(data.path(), "paramedic", "Para 1", &["--device", "phone-1"]),
        "must be a clinician's id",
    );
    refused(
        issue(
            data.path(),
            "paramedic",
            "para-1",
            &["--device", "phone-1", "--ttl", "13h"],
        ),
        "at most 12 hours",
    );
    // A token's times are whole seconds: one of half a second would expire
    // as it is issued.
    refused(
        issue(
            data.path(),
            "paramedic",
            "para-1",
            &["--device", "phone-1", "--ttl", "500ms"],
        ),
        "at least 1 second",
    );
    // A coordinator writes no records: any name will do.
    let desk = issue(data.path(), "coordinator", "IT Desk", &[]);
    assert!(desk.status.success(), "{desk:?}");
}

#[test]
fn serve_reads_the_database_url_from_the_environment_and_never_prints_its_password() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env(
            "DOORSTEP_DATABASE_URL",
            "postgres://doorstep:hunter2secret@127.0.0.1:1/x",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("doorstep serve: "), "{stderr}");
    assert!(
        !data.path().join("endpoint.sqlite3").exists(),
        "no SQLite fallback"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(["serve", "--help"])
        .env(
            "DOORSTEP_DATABASE_URL",
            "postgres://doorstep:hunter2secret@127.0.0.1:1/x",
        )
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("DOORSTEP_DATABASE_URL"), "{help}");
    assert!(!help.contains("hunter2secret"), "{help}");

    // On the command line a password is refused, before anything starts:
    // every user of the machine could read it from the process list.
    for url in [
        "postgres://doorstep:hunter2secret@127.0.0.1:1/x",
        "host=127.0.0.1 port=1 user=doorstep password=hunter2secret dbname=x",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_doorstep"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(["--database", url])
            .env_remove("DOORSTEP_DATABASE_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DOORSTEP_DATABASE_URL instead"), "{stderr}");
        assert!(!stderr.contains("hunter2secret"), "{stderr}");
    }
}

#[test]
fn token_issue_says_so_when_it_makes_a_new_key() {
    let data = tempfile::tempdir().unwrap();
    let first = issue(data.path(), "coordinator", "IT Desk", &[]);
    assert!(first.status.success(), "{first:?}");
    let note = String::from_utf8_lossy(&first.stderr);
    assert!(note.contains("so a new one was made"), "{note}");
    let second = issue(data.path(), "coordinator", "IT Desk", &[]);
    assert!(second.status.success(), "{second:?}");
    assert!(second.stderr.is_empty(), "{second:?}");
}

#[test]
fn token_issue_never_makes_a_new_key_where_an_endpoint_serves() {
    let data = tempfile::tempdir().unwrap();
    let endpoint = serve(data.path());
    let before = token(data.path(), "paramedic", "para-1", "phone-1");
    let key = data.path().join("signing-key.ed25519.pk8");
    std::fs::remove_file(&key).unwrap();
    let out = issue(data.path(), "paramedic", "para-2", &["--device", "phone-2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("while an endpoint serves from it"),
        "{stderr}"
    );
    assert!(!key.exists());
    // The endpoint keeps the keys it holds: tokens issued before still work.
    assert_eq!(pull_status(&endpoint.addr, &before), 200);
    // Stopped, the directory is an operator's again: a new key may be made.
    drop(endpoint);
    let out = issue(data.path(), "paramedic", "para-2", &["--device", "phone-2"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_endpoint_serving_another_audience_takes_tokens_issued_for_it() {
    let data = tempfile::tempdir().unwrap();
    let endpoint = serve_with(data.path(), &["--audience", "pcn-east-sync"]);
    let plain = token(data.path(), "paramedic", "para-1", "phone-1");
    assert_eq!(pull_status(&endpoint.addr, &plain), 401);
    let out = issue(
        data.path(),
        "paramedic",
        "para-1",
        &["--device", "phone-1", "--audience", "pcn-east-sync"],
    );
    assert!(out.status.success(), "{out:?}");
    let meant = String::from_utf8(out.stdout).unwrap();
    assert_eq!(pull_status(&endpoint.addr, meant.trim()), 200);
}

/// The status of a pull with `token`, sent as a device would.
fn pull_status(addr: &str, token: &str) -> u16 {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /sync/v1/pull HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// `doorstep device revoke DEVICE --endpoint URL` with `token` (if any) in
/// `DOORSTEP_TOKEN`, on a machine whose environment names a proxy (a closed
/// port): plain http to this machine must not go through it, where the
/// coordinator's token would cross the network in clear.
fn revoke(device: &str, endpoint: &str, token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_doorstep"));
    command.args(["device", "revoke", device, "--endpoint", endpoint]);
    for proxy in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        command.env(proxy, "http://127.0.0.1:1");
    }
    command.env_remove("NO_PROXY").env_remove("no_proxy");
    command.env_remove("DOORSTEP_TOKEN");
    if let Some(token) = token {
        command.env("DOORSTEP_TOKEN", token);
    }
    command.output().expect("doorstep finishes")
}

#[test]
fn a_token_that_is_not_text_is_called_that_not_missing() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args([
            "device",
            "revoke",
            "phone-7",
            "--endpoint",
            "http://127.0.0.1:1",
        ])
        .env("DOORSTEP_TOKEN", std::ffi::OsStr::from_bytes(b"eyJ\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DOORSTEP_TOKEN is not text"), "{stderr}");
}

#[test]
fn device_revoke_cuts_a_lost_phone_off_and_says_plainly_when_it_cannot() {
    let data = tempfile::tempdir().unwrap();
    let endpoint = serve(data.path());
    let url = format!("http://{}", endpoint.addr);
    let phone = token(data.path(), "paramedic", "para-1", "phone-7");
    assert_eq!(pull_status(&endpoint.addr, &phone), 200);

    let refused = |out: &Output, why: &str| {
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("doorstep device revoke: "), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
    };
    refused(
        &revoke("phone-7", &url, None),
        "no token: set DOORSTEP_TOKEN",
    );
    refused(
        &revoke("phone-7", &url, Some(&phone)),
        "not allowed: only a coordinator can revoke devices",
    );
    refused(
        &revoke("phone-7", &url, Some("not.a.token")),
        "the endpoint refused the token",
    );
    let coordinator = token(data.path(), "coordinator", "it-desk", "desk-1");
    refused(
        &revoke(
            "phone-7",
            "http://sync.example-pcn.nhs.uk",
            Some(&coordinator),
        ),
        "http://sync.example-pcn.nhs.uk: must use https",
    );
    refused(
        &revoke("phone-7", "http://127.0.0.1:1", Some(&coordinator)),
        "could not reach http://127.0.0.1:1: ",
    );
    let bad = revoke("Phone 7!", &url, Some(&coordinator));
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    // None of those touched the phone.
    assert_eq!(pull_status(&endpoint.addr, &phone), 200);

    let out = revoke("phone-7", &format!("{url}/"), Some(&coordinator));
    assert!(out.status.success(), "{out:?}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"device": "phone-7", "network": "east-dorset", "changes_held": 0})
    );
    // The phone only ever pulled, so the endpoint holds nothing from it: the
    // revocation stands, with a note that a mistyped id would look the same.
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("holds no change from phone-7 on east-dorset"),
        "{note}"
    );
    assert_eq!(pull_status(&endpoint.addr, &phone), 403);
    // Revoking again is not an error.
    assert!(revoke("phone-7", &url, Some(&coordinator)).status.success());
}

#[test]
fn forks_lists_the_networks_forked_records_and_says_plainly_when_it_cannot() {
    let data = tempfile::tempdir().unwrap();
    let endpoint = serve(data.path());
    let url = format!("http://{}", endpoint.addr);
    let forks = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorstep"));
        command.args(["forks", "--endpoint", &url]);
        command.env_remove("DOORSTEP_TOKEN");
        if let Some(token) = token {
            command.env("DOORSTEP_TOKEN", token);
        }
        command.output().expect("doorstep finishes")
    };
    let out = forks(None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no token: set DOORSTEP_TOKEN"),
        "{out:?}"
    );
    let out = forks(Some("not.a.token"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the endpoint refused the token"),
        "{out:?}"
    );
    // Any role in the network may ask; nothing has forked here.
    let lead = token(data.path(), "coordinator", "lead-1", "desk-1");
    let out = forks(Some(&lead));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 forked records"),
        "{out:?}"
    );
}

#[test]
fn token_rotate_key_takes_effect_at_a_running_endpoint_without_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let endpoint = serve(data.path());
    let rotate = |extra: &[&str]| {
        let mut args = vec!["token", "rotate-key", "--data", dir];
        args.extend_from_slice(extra);
        doorstep(&args, "")
    };
    let before = token(data.path(), "paramedic", "para-1", "phone-1");
    assert_eq!(pull_status(&endpoint.addr, &before), 200);

    let out = rotate(&[]);
    assert!(out.status.success(), "{out:?}");
    let rotation: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rotation["retired_trusted_until"].is_string(), "{rotation}");
    let after = token(data.path(), "paramedic", "para-1", "phone-1");
    assert_eq!(pull_status(&endpoint.addr, &after), 200);
    assert_eq!(pull_status(&endpoint.addr, &before), 200);

    let out = rotate(&["--compromised"]);
    assert!(out.status.success(), "{out:?}");
    let rotation: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rotation["retired_trusted_until"].is_null(), "{rotation}");
    assert_eq!(pull_status(&endpoint.addr, &after), 401);
    assert_eq!(pull_status(&endpoint.addr, &before), 401);

    // A damaged list of retired keys stops a rotation and changes nothing;
    // the running endpoint keeps the keys it holds, the retired one too.
    let retiring = token(data.path(), "paramedic", "para-1", "phone-1");
    assert!(rotate(&[]).status.success());
    let newest = token(data.path(), "paramedic", "para-1", "phone-1");
    assert_eq!(pull_status(&endpoint.addr, &retiring), 200);
    std::fs::write(data.path().join("signing-keys-retired.json"), "{damaged").unwrap();
    let out = rotate(&[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("doorstep token rotate-key: retired keys at "),
        "{stderr}"
    );
    assert_eq!(pull_status(&endpoint.addr, &newest), 200);
    assert_eq!(pull_status(&endpoint.addr, &retiring), 200);
}

#[test]
fn backup_copies_a_serving_endpoints_database_and_never_replaces_a_file() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let endpoint = serve(data.path());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("nightly.sqlite3");
    let file_text = file.to_str().unwrap();

    let made = doorstep(&["backup", "--data", dir, "--out", file_text], "");
    assert!(made.status.success(), "{made:?}");
    let summary: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(summary["changes"], 0);
    assert_eq!(
        summary["bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    // The endpoint went on serving.
    let phone = token(data.path(), "paramedic", "para-1", "phone-7");
    assert_eq!(pull_status(&endpoint.addr, &phone), 200);

    let again = doorstep(&["backup", "--data", dir, "--out", file_text], "");
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("exists; a backup never replaces a file"),
        "{stderr}"
    );

    // No restore while the endpoint serves; once stopped, the backup goes in
    // place and the database it replaces is kept.
    let restore = || doorstep(&["restore", "--data", dir, "--from", file_text], "");
    let busy = restore();
    assert_eq!(busy.status.code(), Some(1), "{busy:?}");
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("an endpoint is serving from"),
        "{busy:?}"
    );
    drop(endpoint);
    let done = restore();
    assert!(done.status.success(), "{done:?}");
    let restored: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    let aside = restored["replaced"]
        .as_str()
        .expect("the old database kept");
    assert!(std::path::Path::new(aside).exists(), "{restored}");
    assert_eq!(restored["revocations_carried"], 0);

    // A database too damaged to say which devices it revoked is replaced
    // only when the operator says so.
    let live = data.path().join("doorstep-server.sqlite3");
    std::fs::write(&live, "a disk that failed").unwrap();
    let refused = restore();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--forget-revocations"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&live).unwrap(),
        "a disk that failed"
    );
    let forced = doorstep(
        &[
            "restore",
            "--data",
            dir,
            "--from",
            file_text,
            "--forget-revocations",
        ],
        "",
    );
    assert!(forced.status.success(), "{forced:?}");
    let forced: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert!(forced["revocations_unread"].is_string(), "{forced}");

    let empty = tempfile::tempdir().unwrap();
    let none = doorstep(
        &[
            "backup",
            "--data",
            empty.path().to_str().unwrap(),
            "--out",
            file_text,
        ],
        "",
    );
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no endpoint database at"),
        "{none:?}"
    );
}

#[test]
fn solve_vrptw_prints_an_infeasible_best_but_exits_3() {
    // Customers 2 and 3 lie 100 away on either side and must each be served by time
    // 100: one vehicle reaches either on time, never both.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late.vrp");
    std::fs::write(
        &file,
        "NAME : late\nTYPE : CVRPTW\nDIMENSION : 3\nVEHICLES : 1\nCAPACITY : 10\n\
         EDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 100 0\n3 -100 0\n\
         DEMAND_SECTION\n1 0\n2 1\n3 1\nTIME_WINDOW_SECTION\n1 0 1000\n2 0 100\n3 0 100\n\
         SERVICE_TIME_SECTION\n1 0\n2 0\n3 0\nDEPOT_SECTION\n1\n-1\nEOF\n",
    )
    .unwrap();
    let out = doorstep(
        &[
            "solve-vrptw",
            file.to_str().unwrap(),
            "--time-limit",
            "0.05",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("Route #1:") && stdout.contains("Cost "),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no feasible solution"));
}

#[test]
fn token_rotate_key_refuses_a_directory_without_a_signing_key_and_makes_nothing_there() {
    // A mistyped --data: a rotation there would retire a key made on the spot and
    // leave the endpoint's own (perhaps leaked) key trusted.
    let parent = tempfile::tempdir().unwrap();
    let typo = parent.path().join("typo");
    let empty = tempfile::tempdir().unwrap();
    for (dir, compromised) in [(typo.as_path(), true), (empty.path(), false)] {
        let mut args = vec!["token", "rotate-key", "--data", dir.to_str().unwrap()];
        if compromised {
            args.push("--compromised");
        }
        let out = doorstep(&args, "");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "doorstep token rotate-key: no signing key in {}",
                dir.display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains("nothing to rotate"), "{stderr}");
        assert!(stderr.contains("--data"), "{stderr}");
    }
    assert!(!typo.exists(), "a mistyped directory is not made");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn token_issue_refused_on_a_new_directory_makes_no_key_so_the_next_issue_still_says_it_made_one() {
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("fresh");
    let refused = issue(&fresh, "paramedic", "para-1", &[]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(!fresh.exists(), "{refused:?}");
    let issued = issue(&fresh, "paramedic", "para-1", &["--device", "phone-1"]);
    assert!(issued.status.success(), "{issued:?}");
    let note = String::from_utf8_lossy(&issued.stderr);
    assert!(note.contains("so a new one was made"), "{note}");
}

#[test]
fn token_issue_reports_a_stdout_it_cannot_write_to_and_stops_quietly_when_the_reader_goes() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let args = [
        "token",
        "issue",
        "--data",
        dir,
        "--network",
        "east-dorset",
        "--role",
        "coordinator",
        "--subject",
        "it-desk",
    ];
    // The key made first, so the only thing on stderr is what went wrong.
    assert!(
        issue(data.path(), "coordinator", "it-desk", &[])
            .status
            .success()
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(args)
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("doorstep token issue: "), "{stderr}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_doorstep"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn token_issue_refuses_an_empty_audience_that_every_endpoint_would_refuse() {
    let data = tempfile::tempdir().unwrap();
    for audience in ["", "  "] {
        let out = issue(
            data.path(),
            "coordinator",
            "it-desk",
            &["--audience", audience],
        );
        assert_eq!(out.status.code(), Some(1), "{audience:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("audience"), "{stderr}");
    }
}

#[test]
fn restore_from_a_missing_backup_says_it_was_not_found_and_makes_no_data_directory() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("new-endpoint");
    let missing = parent.path().join("nightly.sqlite3");
    let out = doorstep(
        &[
            "restore",
            "--data",
            data.to_str().unwrap(),
            "--from",
            missing.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("backup file not found: {}", missing.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("pg_dump"), "{stderr}");
    assert!(!data.exists(), "{stderr}");
}
