//! The shipped policy and catalog files load, validate and agree with the
//! notices; broken files are refused at the right line and field.

mod common;

use std::collections::BTreeSet;

use common::{catalog_texts, load_all, policy_files};
use fundledger_policy::catalog::{Catalog, CatalogKind, CatalogTexts};
use fundledger_policy::select::overlaps;
use fundledger_policy::{Policy, Program, Rules};

#[test]
fn every_policy_file_loads_validates_and_survives_json() {
    let files = policy_files();
    let policies = load_all();
    assert_eq!(policies.len(), files.len());
    for ((stem, _), policy) in files.iter().zip(&policies) {
        assert_eq!(policy.id.as_str(), stem, "a policy file is named after its id");
        assert_eq!(policy.validate(), Ok(()), "{stem}");
        // A PolicyPublished event carries the policy whole, catalogs included.
        let json = serde_json::to_string(policy).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, policy, "{stem} survives JSON");
    }
    let ids: BTreeSet<_> = policies.iter().map(|p| p.id.as_str()).collect();
    for required in [
        "shandong-2024-skill-upgrade",
        "jining-2025-skill-upgrade",
        "liaocheng-2024-training",
        "shandong-2024-job-stabilization",
        "jinan-2021-job-stabilization",
        "jinan-2021-on-the-job-training",
        "shandong-2024-expansion-quota",
    ] {
        assert!(ids.contains(required), "{required} is shipped");
    }
    assert_eq!(overlaps(&policies), Vec::<(String, String)>::new());
}

#[test]
fn the_catalogs_have_the_annexes_item_counts() {
    let texts = catalog_texts();
    let liaocheng = Catalog::from_toml(&texts["catalogs/liaocheng-2024-training.toml"]).unwrap();
    let counts: Vec<_> = [
        CatalogKind::Green,
        CatalogKind::Urgent,
        CatalogKind::Manufacturing,
        CatalogKind::SpecialAbility,
        CatalogKind::Featured,
        CatalogKind::Entrepreneurship,
    ]
    .into_iter()
    .map(|k| liaocheng.count(Some(k)))
    .collect();
    assert_eq!(counts, [134, 39, 16, 65, 3, 3]);
    assert_eq!(liaocheng.document, "聊人社字〔2024〕12号");

    let jining = Catalog::from_toml(&texts["catalogs/jining-2025-urgent.toml"]).unwrap();
    assert_eq!(jining.count(None), 70);
    assert_eq!(jining.document, "济人社字〔2025〕51号");
}

#[test]
fn policies_carry_the_catalogs_they_reference() {
    let policies = load_all();
    let find = |id: &str| policies.iter().find(|p| p.id.as_str() == id).unwrap();
    match &find("jining-2025-skill-upgrade").rules {
        Rules::SkillUpgrade(r) => {
            let extra = r.extra.as_ref().unwrap();
            assert_eq!(extra.urgent_catalog.path, "catalogs/jining-2025-urgent.toml");
            assert_eq!(extra.urgent_catalog.catalog.items.len(), 70);
        }
        other => panic!("{other:?}"),
    }
    match &find("liaocheng-2024-training").rules {
        Rules::VocationalTraining(r) => assert_eq!(r.catalog.catalog.items.len(), 260),
        other => panic!("{other:?}"),
    }
    assert_eq!(find("shandong-2024-expansion-quota").program(), Program::ExpansionQuota);
}

/// The real Jining file with one line replaced must be refused at that line.
#[test]
fn broken_policy_files_are_refused_with_line_and_field() {
    let files = policy_files();
    let text = |stem: &str| files.iter().find(|(s, _)| s == stem).unwrap().1.clone();
    let line_of =
        |text: &str, needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let catalogs = catalog_texts();
    let cases = [
        // (file, line starting with, replacement, field, message part)
        (
            "jining-2025-skill-upgrade",
            "level_4 = \"500.00\"",
            "level_4 = \"0.00\"",
            "extra.amounts.level_4",
            "more than 0.00",
        ),
        (
            "jining-2025-skill-upgrade",
            "level_4 = \"1500.00\"",
            "level_4 = \"1500.005\"",
            "amounts.level_4",
            "more than 2 decimal places",
        ),
        (
            "jining-2025-skill-upgrade",
            "level_4 = \"1500.00\"",
            "level_4 = 1500",
            "amounts.level_4",
            "never a bare number",
        ),
        (
            "jining-2025-skill-upgrade",
            "urgent_catalog",
            "urgent_catalog = \"catalogs/jining-2026-urgent.toml\"",
            "extra.urgent_catalog",
            "unknown catalog reference",
        ),
        (
            "jining-2025-skill-upgrade",
            "program",
            "program = \"skill_upgrades\"",
            "program",
            "unknown variant",
        ),
        (
            "jining-2025-skill-upgrade",
            "effective_from",
            "effective_from = 2025-04-16\neffective_until = 2025-04-15",
            "effective_until",
            "before effective_from",
        ),
        (
            "jining-2025-skill-upgrade",
            "window_months",
            "window_month = 12",
            "certificate.window_month",
            "did you mean `window_months`",
        ),
        (
            "jining-2025-skill-upgrade",
            "base_slots",
            "base_slots = 0",
            "annual.base_slots",
            "at least 1",
        ),
        (
            "liaocheng-2024-training",
            "\"featured-03\"",
            "\"featured-04\" = { name = \"x\", amount = \"1.00\", hours = 1 }",
            "featured",
            "featured-03 (数字技术工程师) has no standard",
        ),
        (
            "liaocheng-2024-training",
            "catalog = ",
            "catalog = \"catalogs/jining-2025-urgent.toml\"",
            "catalog",
            "not of this policy's document",
        ),
        ("shandong-2024-job-stabilization", "sme = ", "sme = \"1.6\"", "rates.sme", "at most 1"),
        (
            "shandong-2024-job-stabilization",
            "rate_max",
            "rate_max = \"0\"",
            "layoffs.rate_max",
            "more than 0",
        ),
        (
            "shandong-2024-expansion-quota",
            "ratio",
            "ratio = \"0.15\"\nratios = \"0.2\"",
            "ratios",
            "unknown field",
        ),
        (
            "jinan-2021-on-the-job-training",
            "monthly_amount",
            "monthly_amount = \"-500.00\"",
            "monthly_amount",
            "digits",
        ),
    ];
    for (stem, starts_with, replacement, field, part) in cases {
        let original = text(stem);
        let line = line_of(&original, starts_with);
        let broken: Vec<String> = original
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == line { replacement.to_string() } else { l.to_string() })
            .collect();
        let broken = broken.join("\n");
        let e = Policy::from_toml_with_catalogs(&broken, &catalogs).unwrap_err();
        // A replacement of two lines puts the error on the second; a table-level
        // error is on the table's header line.
        let expected_line = match field {
            "effective_until" | "ratios" => line + 1,
            "featured" => line_of(&original, "[featured]"),
            _ => line,
        };
        assert_eq!((e.line, e.field.as_str()), (expected_line, field), "{stem}: {e}");
        assert!(e.message.contains(part), "{stem}: {e}");
    }
}

#[test]
fn a_policy_with_a_catalog_needs_the_catalog() {
    let files = policy_files();
    let (_, text) = files.iter().find(|(s, _)| s == "liaocheng-2024-training").unwrap();
    let e = Policy::from_toml(text).unwrap_err();
    assert_eq!(e.field, "catalog");
    assert!(e.message.contains("unknown catalog reference"), "{e}");
    let e = Policy::from_toml_with_catalogs(text, &CatalogTexts::new()).unwrap_err();
    assert_eq!(e.line, text.lines().position(|l| l.starts_with("catalog = ")).unwrap() + 1);
}
