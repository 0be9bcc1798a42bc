//! NEWS2 tested from the RCP 2017 chart, not from the code: every band edge
//! on both sides for every parameter, both SpO2 scales with and without
//! oxygen, the red-single-parameter rule, and properties checked against a
//! second, independently written reading of the chart.

use doorstep_domain::news2::{Consciousness, Observations, ObservationsInput, RiskBand, SubScores};
use proptest::prelude::*;

/// Normal on every parameter: scores 0.
fn normal() -> ObservationsInput {
    ObservationsInput {
        respiration_rate: 16,
        spo2: 97,
        spo2_scale: 1,
        supplemental_oxygen: false,
        systolic_bp: 120,
        pulse: 70,
        consciousness: Consciousness::Alert,
        temperature: 37.0,
    }
}

fn score(input: &ObservationsInput) -> doorstep_domain::news2::News2Score {
    Observations::new(input)
        .expect("valid observations")
        .score()
}

#[test]
fn normal_observations_score_zero_and_low() {
    let s = score(&normal());
    assert_eq!(s.total, 0);
    assert_eq!(s.risk, RiskBand::Low);
}

/// Scores `normal()` with one parameter set to each value and checks that
/// parameter's sub-score against the chart's row.
fn assert_edges<V: Copy + std::fmt::Debug>(
    name: &str,
    rows: &[(V, u8)],
    set: impl Fn(&mut ObservationsInput, V),
    sub_score: impl Fn(&SubScores) -> u8,
) {
    for &(value, expected) in rows {
        let mut input = normal();
        set(&mut input, value);
        let s = score(&input);
        assert_eq!(sub_score(&s.parameters), expected, "{name} {value:?}");
    }
}

#[rustfmt::skip]
#[test]
fn respiration_rate_band_edges() {
    assert_edges(
        "respiration rate",
        &[(1, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (70, 3)],
        |i, v| i.respiration_rate = v,
        |p| p.respiration_rate,
    );
}

#[rustfmt::skip]
#[test]
fn spo2_scale_1_band_edges_on_air_and_on_oxygen() {
    for oxygen in [false, true] {
        assert_edges(
            "SpO2 scale 1",
            &[(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
            |i, v| { i.spo2 = v; i.supplemental_oxygen = oxygen; },
            |p| p.spo2,
        );
        let on = score(&ObservationsInput { supplemental_oxygen: oxygen, ..normal() });
        assert_eq!(on.parameters.air_or_oxygen, if oxygen { 2 } else { 0 });
        assert_eq!(on.total, if oxygen { 2 } else { 0 });
    }
}

#[rustfmt::skip]
#[test]
fn spo2_scale_2_band_edges_on_air() {
    assert_edges(
        "SpO2 scale 2 on air",
        &[(50, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (97, 0), (100, 0)],
        |i, v| { i.spo2 = v; i.spo2_scale = 2; },
        |p| p.spo2,
    );
}

#[rustfmt::skip]
#[test]
fn spo2_scale_2_band_edges_on_oxygen() {
    assert_edges(
        "SpO2 scale 2 on oxygen",
        &[(50, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1), (94, 1),
          (95, 2), (96, 2), (97, 3), (100, 3)],
        |i, v| { i.spo2 = v; i.spo2_scale = 2; i.supplemental_oxygen = true; },
        |p| p.spo2,
    );
}

#[rustfmt::skip]
#[test]
fn systolic_band_edges() {
    assert_edges(
        "systolic",
        &[(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3)],
        |i, v| i.systolic_bp = v,
        |p| p.systolic_bp,
    );
}

#[rustfmt::skip]
#[test]
fn pulse_band_edges() {
    assert_edges(
        "pulse",
        &[(20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
          (131, 3), (250, 3)],
        |i, v| i.pulse = v,
        |p| p.pulse,
    );
}

#[test]
fn consciousness_alert_scores_0_and_new_confusion_or_vpu_score_3() {
    use Consciousness::*;
    for (c, expected) in [
        (Alert, 0),
        (NewConfusion, 3),
        (Voice, 3),
        (Pain, 3),
        (Unresponsive, 3),
    ] {
        let s = score(&ObservationsInput {
            consciousness: c,
            ..normal()
        });
        assert_eq!(s.parameters.consciousness, expected, "{c:?}");
    }
}

#[rustfmt::skip]
#[test]
fn temperature_band_edges_on_one_decimal() {
    assert_edges(
        "temperature",
        &[(30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
          (39.1, 2), (44.0, 2)],
        |i, v| i.temperature = v,
        |p| p.temperature,
    );
}

#[test]
fn temperature_with_more_than_one_decimal_is_refused_not_rounded() {
    let e = Observations::new(&ObservationsInput {
        temperature: 38.05,
        ..normal()
    })
    .unwrap_err();
    assert_eq!(e.field, "temperature");
    assert!(e.reason.contains("one decimal"));
}

#[test]
fn risk_bands_follow_the_aggregate_and_the_red_single_parameter_rule() {
    // 1 + 1 + 2 = 4, no red: low.
    let four = ObservationsInput {
        respiration_rate: 10,
        pulse: 45,
        temperature: 39.5,
        ..normal()
    };
    assert_eq!(score(&four).total, 4);
    assert_eq!(score(&four).risk, RiskBand::Low);
    // A single red parameter, total 3: low-medium.
    let red = ObservationsInput {
        consciousness: Consciousness::NewConfusion,
        ..normal()
    };
    assert_eq!(score(&red).risk, RiskBand::LowMedium);
    // Red plus 1 = 4: still low-medium.
    let red4 = ObservationsInput {
        pulse: 45,
        ..red.clone()
    };
    assert_eq!(score(&red4).total, 4);
    assert_eq!(score(&red4).risk, RiskBand::LowMedium);
    // Red plus 2 = 5: medium, the aggregate rules.
    let red5 = ObservationsInput {
        pulse: 115,
        ..red.clone()
    };
    assert_eq!(score(&red5).total, 5);
    assert_eq!(score(&red5).risk, RiskBand::Medium);
    // 6: medium. 7: high.
    let six = ObservationsInput {
        pulse: 115,
        respiration_rate: 22,
        temperature: 39.5,
        ..normal()
    };
    assert_eq!(score(&six).total, 6);
    assert_eq!(score(&six).risk, RiskBand::Medium);
    let seven = ObservationsInput {
        pulse: 115,
        respiration_rate: 22,
        temperature: 39.5,
        systolic_bp: 105,
        ..normal()
    };
    assert_eq!(score(&seven).total, 7);
    assert_eq!(score(&seven).risk, RiskBand::High);
}

#[test]
fn advice_says_who_to_call_and_how_fast_for_each_band() {
    let high = ObservationsInput {
        respiration_rate: 26,
        pulse: 135,
        consciousness: Consciousness::Voice,
        ..normal()
    };
    assert!(score(&high).advice.contains("999"));
    let medium = ObservationsInput {
        pulse: 115,
        respiration_rate: 22,
        temperature: 39.5,
        ..normal()
    };
    assert!(score(&medium).advice.contains("30 minutes"));
    let low_medium = ObservationsInput {
        consciousness: Consciousness::NewConfusion,
        ..normal()
    };
    assert!(score(&low_medium).advice.contains("1 hour"));
    assert!(score(&normal()).advice.contains("NEWS2 0"));
}

#[test]
fn accepts_every_real_extreme() {
    for input in [
        ObservationsInput {
            respiration_rate: 1,
            ..normal()
        },
        ObservationsInput {
            respiration_rate: 70,
            ..normal()
        },
        ObservationsInput {
            spo2: 50,
            ..normal()
        },
        ObservationsInput {
            spo2: 100,
            ..normal()
        },
        ObservationsInput {
            systolic_bp: 40,
            ..normal()
        },
        ObservationsInput {
            systolic_bp: 300,
            ..normal()
        },
        ObservationsInput {
            pulse: 20,
            ..normal()
        },
        ObservationsInput {
            pulse: 250,
            ..normal()
        },
        ObservationsInput {
            temperature: 30.0,
            ..normal()
        },
        ObservationsInput {
            temperature: 44.0,
            ..normal()
        },
    ] {
        assert!(Observations::new(&input).is_ok(), "{input:?}");
    }
}

#[test]
fn refuses_what_no_living_patient_can_have_naming_the_field() {
    for (input, field) in [
        (
            ObservationsInput {
                respiration_rate: 0,
                ..normal()
            },
            "respiration_rate",
        ),
        (
            ObservationsInput {
                respiration_rate: 91,
                ..normal()
            },
            "respiration_rate",
        ),
        (
            ObservationsInput {
                spo2: 19,
                ..normal()
            },
            "spo2",
        ),
        (
            ObservationsInput {
                spo2: 101,
                ..normal()
            },
            "spo2",
        ),
        (
            ObservationsInput {
                systolic_bp: 19,
                ..normal()
            },
            "systolic_bp",
        ),
        (
            ObservationsInput {
                systolic_bp: 321,
                ..normal()
            },
            "systolic_bp",
        ),
        (
            ObservationsInput {
                pulse: 9,
                ..normal()
            },
            "pulse",
        ),
        (
            ObservationsInput {
                pulse: 321,
                ..normal()
            },
            "pulse",
        ),
        (
            ObservationsInput {
                temperature: 14.9,
                ..normal()
            },
            "temperature",
        ),
        (
            ObservationsInput {
                temperature: 47.1,
                ..normal()
            },
            "temperature",
        ),
        (
            ObservationsInput {
                temperature: f64::NAN,
                ..normal()
            },
            "temperature",
        ),
        (
            ObservationsInput {
                spo2_scale: 3,
                ..normal()
            },
            "spo2_scale",
        ),
    ] {
        let e = Observations::new(&input).unwrap_err();
        assert_eq!(e.field, field, "{input:?}");
    }
}

/// A second reading of the chart, written as the printed rows (inclusive
/// ranges), used as the oracle for the property tests.
fn chart_row(value: i32, rows: &[(i32, i32, u8)]) -> u8 {
    rows.iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&value))
        .map(|(_, _, s)| *s)
        .expect("the chart covers every accepted value")
}

fn oracle(i: &ObservationsInput) -> u8 {
    let rr = chart_row(
        i.respiration_rate.into(),
        &[
            (0, 8, 3),
            (9, 11, 1),
            (12, 20, 0),
            (21, 24, 2),
            (25, 999, 3),
        ],
    );
    let spo2 = if i.spo2_scale == 1 {
        chart_row(
            i.spo2.into(),
            &[(0, 91, 3), (92, 93, 2), (94, 95, 1), (96, 100, 0)],
        )
    } else if i.supplemental_oxygen {
        chart_row(
            i.spo2.into(),
            &[
                (0, 83, 3),
                (84, 85, 2),
                (86, 87, 1),
                (88, 92, 0),
                (93, 94, 1),
                (95, 96, 2),
                (97, 100, 3),
            ],
        )
    } else {
        chart_row(
            i.spo2.into(),
            &[(0, 83, 3), (84, 85, 2), (86, 87, 1), (88, 100, 0)],
        )
    };
    let air = if i.supplemental_oxygen { 2 } else { 0 };
    let bp = chart_row(
        i.systolic_bp.into(),
        &[
            (0, 90, 3),
            (91, 100, 2),
            (101, 110, 1),
            (111, 219, 0),
            (220, 999, 3),
        ],
    );
    let pulse = chart_row(
        i.pulse.into(),
        &[
            (0, 40, 3),
            (41, 50, 1),
            (51, 90, 0),
            (91, 110, 1),
            (111, 130, 2),
            (131, 999, 3),
        ],
    );
    let acvpu = if i.consciousness == Consciousness::Alert {
        0
    } else {
        3
    };
    let tenths = (i.temperature * 10.0).round() as i32;
    let temp = chart_row(
        tenths,
        &[
            (0, 350, 3),
            (351, 360, 1),
            (361, 380, 0),
            (381, 390, 1),
            (391, 999, 2),
        ],
    );
    rr + spo2 + air + bp + pulse + acvpu + temp
}

fn any_observations() -> impl Strategy<Value = ObservationsInput> {
    (
        (1u16..=90, 20u16..=100, 1u8..=2, any::<bool>()),
        (20u16..=320, 10u16..=320, 0usize..5, 150i16..=470),
    )
        .prop_map(
            |((rr, spo2, scale, oxygen), (bp, pulse, c, t))| ObservationsInput {
                respiration_rate: rr,
                spo2,
                spo2_scale: scale,
                supplemental_oxygen: oxygen,
                systolic_bp: bp,
                pulse,
                consciousness: [
                    Consciousness::Alert,
                    Consciousness::NewConfusion,
                    Consciousness::Voice,
                    Consciousness::Pain,
                    Consciousness::Unresponsive,
                ][c],
                temperature: f64::from(t) / 10.0,
            },
        )
}

proptest! {
    #[test]
    fn total_is_the_sum_of_sub_scores_and_matches_the_chart(input in any_observations()) {
        let s = score(&input);
        let p = s.parameters;
        let sum = p.respiration_rate + p.spo2 + p.air_or_oxygen + p.systolic_bp + p.pulse
            + p.consciousness + p.temperature;
        prop_assert_eq!(s.total, sum);
        prop_assert_eq!(s.total, oracle(&input));
        let expected = match s.total {
            7.. => RiskBand::High,
            5..=6 => RiskBand::Medium,
            _ if [p.respiration_rate, p.spo2, p.systolic_bp, p.pulse, p.consciousness, p.temperature].contains(&3) => RiskBand::LowMedium,
            _ => RiskBand::Low,
        };
        prop_assert_eq!(s.risk, expected);
    }

    #[test]
    fn moving_an_abnormal_value_further_from_normal_never_lowers_its_sub_score(
        input in any_observations(), step in 1u16..40
    ) {
        let base = score(&input).parameters;
        // High-side parameters: raising them beyond normal.
        if input.respiration_rate > 20 && input.respiration_rate + step <= 90 {
            let s = score(&ObservationsInput { respiration_rate: input.respiration_rate + step, ..input.clone() });
            prop_assert!(s.parameters.respiration_rate >= base.respiration_rate);
        }
        if input.pulse > 90 && input.pulse + step <= 320 {
            let s = score(&ObservationsInput { pulse: input.pulse + step, ..input.clone() });
            prop_assert!(s.parameters.pulse >= base.pulse);
        }
        if input.systolic_bp > 219 && input.systolic_bp + step <= 320 {
            let s = score(&ObservationsInput { systolic_bp: input.systolic_bp + step, ..input.clone() });
            prop_assert!(s.parameters.systolic_bp >= base.systolic_bp);
        }
        if input.temperature > 38.0 && input.temperature + f64::from(step) / 10.0 <= 47.0 {
            let t = (input.temperature * 10.0 + f64::from(step)).round() / 10.0;
            let s = score(&ObservationsInput { temperature: t, ..input.clone() });
            prop_assert!(s.parameters.temperature >= base.temperature);
        }
        if input.spo2_scale == 2 && input.supplemental_oxygen && input.spo2 > 92 && input.spo2 + step <= 100 {
            let s = score(&ObservationsInput { spo2: input.spo2 + step, ..input.clone() });
            prop_assert!(s.parameters.spo2 >= base.spo2);
        }
        // Low-side parameters: lowering them below normal.
        if input.respiration_rate < 12 && input.respiration_rate > step {
            let s = score(&ObservationsInput { respiration_rate: input.respiration_rate - step, ..input.clone() });
            prop_assert!(s.parameters.respiration_rate >= base.respiration_rate);
        }
        if input.pulse < 51 && input.pulse >= 10 + step {
            let s = score(&ObservationsInput { pulse: input.pulse - step, ..input.clone() });
            prop_assert!(s.parameters.pulse >= base.pulse);
        }
        if input.systolic_bp < 111 && input.systolic_bp >= 20 + step {
            let s = score(&ObservationsInput { systolic_bp: input.systolic_bp - step, ..input.clone() });
            prop_assert!(s.parameters.systolic_bp >= base.systolic_bp);
        }
        let spo2_low_side = if input.spo2_scale == 1 { input.spo2 < 96 } else { input.spo2 < 88 };
        if spo2_low_side && input.spo2 >= 20 + step {
            let s = score(&ObservationsInput { spo2: input.spo2 - step, ..input.clone() });
            prop_assert!(s.parameters.spo2 >= base.spo2);
        }
        if input.temperature < 36.1 && input.temperature - f64::from(step) / 10.0 >= 15.0 {
            let t = (input.temperature * 10.0 - f64::from(step)).round() / 10.0;
            let s = score(&ObservationsInput { temperature: t, ..input.clone() });
            prop_assert!(s.parameters.temperature >= base.temperature);
        }
    }
}
