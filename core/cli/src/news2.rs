//! `doorstep news2`: scores one set of observations per input line.
//!
//! Each line of stdin is one JSON object; each line, blank ones included, gets
//! exactly one line on stdout, in order: the score, or
//! `{"error": {"field": ..., "reason": ...}}`. A refused
//! line never stops the lines after it, and the exit status says whether any
//! line was refused, so a script can both read every answer and notice errors.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use doorstep_domain::news2::Observations;
use doorstep_domain::text::from_json;
use serde_json::json;

/// Reads stdin to the end, writing one answer per line.
pub fn run() -> ExitCode {
    let stdin = io::stdin();
    let stdout = io::stdout();
    match score_lines(stdin.lock(), BufWriter::new(stdout.lock())) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        // The reader closed the pipe (`doorstep news2 < obs | head`): it wanted no more
        // answers, as with every other command's output (see `crate::written`).
        Err(e) if crate::reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doorstep news2: {e}");
            ExitCode::from(2)
        }
    }
}

/// Most bytes of one input line. A set of observations is a few hundred
/// bytes; a longer line is refused without being read into memory whole
/// (`doorstep news2 < /dev/zero` would otherwise grow until it is killed).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Scores every line of `input` into `output`; returns how many lines were
/// refused. Every line gets exactly one answer, a blank one an error (so a
/// script pairing answers with lines by position never gives one patient's
/// score to the next), and so does one that is not UTF-8 or runs past
/// [`MAX_LINE_BYTES`]. Each answer is flushed as it is written, so a caller
/// that writes a line and waits for its answer gets it.
fn score_lines(mut input: impl BufRead, mut output: impl Write) -> io::Result<usize> {
    let mut refused = 0;
    let refusal =
        |reason: &str| json!({ "error": { "field": null, "reason": reason } }).to_string();
    loop {
        let mut line = Vec::new();
        // Room for the longest line its `\r\n` included, and a byte more to tell a
        // longer one: a read that stopped on the `\r` would leave the `\n` to be
        // answered as a line of its own, and every later answer a line out.
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(refused);
        }
        let ended = line.last() == Some(&b'\n');
        if ended {
            line.pop();
        }
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        let answer = if line.len() > MAX_LINE_BYTES {
            if !ended {
                skip_line(&mut input)?;
            }
            refused += 1;
            refusal(&format!(
                "a line longer than {MAX_LINE_BYTES} bytes: not a set of observations"
            ))
        } else {
            match std::str::from_utf8(line) {
                Ok(text) if text.trim().is_empty() => {
                    refused += 1;
                    refusal("an empty line: no observations to score")
                }
                Ok(text) => match from_json::<Observations>(text) {
                    Ok(obs) => serde_json::to_string(&obs.score()).map_err(io::Error::other)?,
                    Err(e) => {
                        refused += 1;
                        let field = if e.field.is_empty() {
                            serde_json::Value::Null
                        } else {
                            json!(e.field)
                        };
                        json!({ "error": { "field": field, "reason": e.reason } }).to_string()
                    }
                },
                Err(_) => {
                    refused += 1;
                    refusal("not valid JSON: not UTF-8 text")
                }
            }
        };
        writeln!(output, "{answer}")?;
        output.flush()?;
    }
}

/// Reads and drops the rest of a line of `input`, its newline included, a
/// buffer at a time: none of it is kept.
fn skip_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(input: &str) -> (Vec<serde_json::Value>, usize) {
        let mut out = Vec::new();
        let refused = score_lines(input.as_bytes(), &mut out).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, refused)
    }

    const EXAMPLE: &str = r#"{"respiration_rate": 22, "spo2": 94, "spo2_scale": 1, "supplemental_oxygen": false, "systolic_bp": 105, "pulse": 112, "consciousness": "A", "temperature": 38.4}"#;

    #[test]
    fn scores_the_example_from_the_issue() {
        let (lines, refused) = run_on(EXAMPLE);
        assert_eq!(refused, 0);
        assert_eq!(lines[0]["total"], 7);
        assert_eq!(lines[0]["risk"], "high");
        assert_eq!(lines[0]["chart"], "rcp-news2-2017");
        assert_eq!(lines[0]["parameters"]["pulse"], 2);
        assert!(lines[0]["advice"].as_str().unwrap().contains("999"));
    }

    #[test]
    fn a_bad_line_gets_its_own_error_and_later_lines_are_still_scored() {
        let input = format!(
            "not json\n{}\n{}\n{EXAMPLE}\n",
            EXAMPLE.replace("\"pulse\": 112", "\"pulse\": 900"),
            EXAMPLE.replace("\"consciousness\": \"A\"", "\"consciousness\": \"Q\""),
        );
        let (lines, refused) = run_on(&input);
        assert_eq!(refused, 3);
        assert_eq!(lines.len(), 4);
        assert!(lines[0]["error"]["field"].is_null());
        assert!(
            lines[0]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("JSON")
        );
        assert_eq!(lines[1]["error"]["field"], "pulse");
        assert!(
            !lines[1]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("900")
        );
        assert_eq!(lines[2]["error"]["field"], "consciousness");
        assert_eq!(lines[3]["total"], 7);
    }

    #[test]
    fn every_line_gets_its_answer_in_its_place_a_blank_or_overlong_one_an_error() {
        // A script pairs answers with lines by position: a blank line must not
        // move the next patient's score up a line.
        let long = format!("{{\"pulse\": \"{}\"}}", "9".repeat(MAX_LINE_BYTES));
        let input = format!("{EXAMPLE}\n\n{long}\n   \n{EXAMPLE}");
        let (lines, refused) = run_on(&input);
        assert_eq!(lines.len(), 5);
        assert_eq!(refused, 3);
        assert_eq!(lines[0]["total"], 7);
        assert!(
            lines[1]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("empty")
        );
        assert!(
            lines[2]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("longer than")
        );
        assert!(
            lines[3]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("empty")
        );
        assert_eq!(lines[4]["total"], 7);
    }

    #[test]
    fn a_line_of_the_longest_length_ending_in_crlf_gets_one_answer() {
        // Cut at its `\r`, it was answered twice, and the next patient's score
        // came a line late.
        let longest = " ".repeat(MAX_LINE_BYTES);
        let input = format!("{longest}\r\n{EXAMPLE}\n{longest} \n{EXAMPLE}\r\n");
        let (lines, refused) = run_on(&input);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(refused, 2);
        assert!(
            lines[0]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("empty")
        );
        assert_eq!(lines[1]["total"], 7);
        assert!(
            lines[2]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("longer than")
        );
        assert_eq!(lines[3]["total"], 7);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_refused_and_the_next_is_scored() {
        let mut input = b"\xff\xfe\r\n".to_vec();
        input.extend_from_slice(EXAMPLE.as_bytes());
        input.extend_from_slice(b"\r\n");
        let mut out = Vec::new();
        let refused = score_lines(&input[..], &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(refused, 1);
        assert!(
            lines[0]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("UTF-8")
        );
        assert_eq!(lines[1]["total"], 7);
    }

    #[test]
    fn missing_and_unknown_fields_are_refused_by_name() {
        let missing = EXAMPLE.replace("\"spo2\": 94, ", "");
        let (lines, _) = run_on(&missing);
        assert!(
            lines[0]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("spo2")
        );
        let unknown = EXAMPLE.replace("{", "{\"heart_rate\": 80, ");
        let (lines, _) = run_on(&unknown);
        assert!(
            lines[0]["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("heart_rate")
        );
    }
}
