//! The demo network is the size the issue asks for, deterministic for a seed,
//! valid by every domain rule, and contains only test-range NHS numbers.

use std::collections::HashSet;

use doorstep_domain::demo::generate;
use doorstep_domain::network::Role;
use doorstep_domain::visit::Urgency;
use jiff::civil::date;

#[test]
fn demo_network_has_the_shape_of_a_real_network() {
    let d = generate(7, date(2026, 11, 24));
    assert_eq!(d.network.practices.len(), 6);
    assert!((30_000..=32_000).contains(&d.patients.len()));
    let housebound = d.housebound().count();
    assert!((200..=800).contains(&housebound), "{housebound}");
    assert_eq!(d.care_homes.len(), 10);
    assert!(d.care_homes.iter().all(|h| h.residents.len() >= 15));
    let role = |r| d.clinicians.iter().filter(|c| c.role == r).count();
    assert_eq!(role(Role::Paramedic), 4);
    assert_eq!(role(Role::ClinicalPharmacist), 3);
    assert!(d.visit_requests.len() >= 20);
    assert!(
        d.visit_requests
            .iter()
            .any(|r| r.urgency == Urgency::Immediate)
    );
}

#[test]
fn demo_network_is_deterministic_for_a_seed() {
    let a = generate(42, date(2026, 11, 24));
    let b = generate(42, date(2026, 11, 24));
    assert_eq!(a, b);
    let c = generate(43, date(2026, 11, 24));
    assert_ne!(a.patients[0].nhs_number, c.patients[0].nhs_number);
}

#[test]
fn demo_network_uses_only_distinct_test_range_nhs_numbers() {
    let d = generate(1, date(2026, 11, 24));
    let mut seen = HashSet::new();
    for p in &d.patients {
        assert!(p.nhs_number.is_test_range());
        assert!(seen.insert(p.nhs_number.clone()), "duplicate NHS number");
    }
}

#[test]
fn demo_network_passes_every_validation_rule_and_round_trips() {
    let d = generate(3, date(2026, 11, 24));
    for p in &d.patients {
        p.validate(d.day).unwrap();
    }
    for r in &d.visit_requests {
        r.validate().unwrap();
        assert!(
            d.patients
                .iter()
                .any(|p| p.nhs_number == r.patient && p.housebound)
        );
    }
    let json = serde_json::to_string(&d).unwrap();
    let back: doorstep_domain::demo::DemoNetwork = serde_json::from_str(&json).unwrap();
    // Compared without Debug output: a failure must not print 31,000 patients.
    assert!(back == d, "demo network did not survive a JSON round trip");
}
