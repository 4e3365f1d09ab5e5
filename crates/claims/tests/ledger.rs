//! The ledger's own rules and its agreement with the scenarios' citations: every bad input is
//! a located error naming the file, line and column.

use std::path::{Path, PathBuf};

use claims::{Citing, Ledger};
use scenario::Scenario;

const PAGE: &str = "Build images\nPLUGIN_NO_PUSH: true skips   pushing\nthe image.\n";

/// A folder holding `ledger.yaml` (with `text`) and `pages/p.txt`.
fn folder(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pages")).unwrap();
    std::fs::write(dir.path().join("pages/p.txt"), PAGE).unwrap();
    let path = dir.path().join("ledger.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn ledger(claims: &str) -> String {
    format!(
        "version: 1\npages:\n  - id: page\n    file: pages/p.txt\n    title: Build images\nclaims:\n{claims}"
    )
}

const NO_PUSH: &str = "  - id: no-push\n    page: page\n    section: table\n    quote: \"PLUGIN_NO_PUSH: true skips pushing the image.\"\n    topic: build-only\n    builders: [kaniko]\n";

fn shown(e: &dyn std::error::Error, dir: &Path) -> String {
    e.to_string().replace(&format!("{}/", dir.display()), "")
}

fn load_error(claims: &str) -> String {
    let (dir, path) = folder(&ledger(claims));
    let error = Ledger::load(&path).unwrap_err();
    shown(&error, dir.path())
}

#[test]
fn a_quote_is_found_in_its_page_whatever_the_line_breaks() {
    let (_dir, path) = folder(&ledger(&format!("{NO_PUSH}    pending: a scenario\n")));
    let ledger = Ledger::load(&path).unwrap();
    assert_eq!(ledger.claims.len(), 1);
    assert_eq!(ledger.page("page").unwrap().shown(), "Build images");
}

#[test]
fn bad_ledgers_are_refused_with_located_messages() {
    let cases = [
        (
            "unknown page",
            NO_PUSH.replace("page: page", "page: nowhere") + "    pending: x\n",
        ),
        (
            "id defined twice",
            format!("{NO_PUSH}    pending: x\n{NO_PUSH}    pending: y\n"),
        ),
        (
            "quote not in the page",
            NO_PUSH.replace("skips pushing", "never pushes") + "    pending: x\n",
        ),
        (
            "contradiction naming a missing claim",
            format!(
                "{NO_PUSH}    pending: x\n  - id: disagree\n    contradiction: [no-push, missing]\n    summary: s\n    topic: build-only\n    pending: x\n"
            ),
        ),
        (
            "unknown topic and builder",
            NO_PUSH
                .replace("topic: build-only", "topic: laundry")
                .replace("[kaniko]", "[kaniko, podman]")
                + "    pending: x\n",
        ),
        (
            "pending and not checkable",
            format!("{NO_PUSH}    pending: x\n    not_checkable: y\n"),
        ),
        ("unknown field", format!("{NO_PUSH}    pendng: x\n")),
    ];
    let mut all = String::new();
    for (what, claims) in cases {
        all.push_str(&format!("## {what}\n{}\n\n", load_error(&claims)));
    }
    insta::assert_snapshot!(all);
}

fn scenario_text(claims: &str) -> String {
    format!(
        "version: 1\nname: n\ndescription: d\nclaim: [{claims}]\nbuilders: [kaniko]\nsteps:\n  - name: build\nassertions:\n  - step_succeeded: build\n"
    )
}

fn check(ledger_claims: &str, scenarios: &[(&str, String)]) -> Result<claims::Citations, String> {
    let (dir, path) = folder(&ledger(ledger_claims));
    let ledger = Ledger::load(&path).unwrap();
    let parsed: Vec<(String, Scenario)> = scenarios
        .iter()
        .map(|(file, text)| {
            let scenario = Scenario::parse(Path::new(file), text).unwrap();
            (file.to_string(), scenario)
        })
        .collect();
    let citing: Vec<Citing<'_>> = parsed
        .iter()
        .zip(scenarios)
        .map(|((file, scenario), (_, text))| Citing {
            file: file.clone(),
            text,
            scenario,
        })
        .collect();
    claims::check(&ledger, &citing).map_err(|e| shown(&e, dir.path()))
}

#[test]
fn citations_and_the_ledger_must_agree() {
    // Checked, and no longer pending.
    let citations = check(NO_PUSH, &[("s.yaml", scenario_text("no-push"))]).unwrap();
    assert_eq!(citations.by_claim["no-push"], vec!["s.yaml".to_owned()]);

    let mut all = String::new();
    for (what, claims, scenarios) in [
        (
            "a citation of a missing id",
            format!("{NO_PUSH}    pending: x\n"),
            vec![("s.yaml", scenario_text("no-pus"))],
        ),
        ("neither checked nor explained", NO_PUSH.to_owned(), vec![]),
        (
            "checked but still pending",
            format!("{NO_PUSH}    pending: x\n"),
            vec![("s.yaml", scenario_text("no-push"))],
        ),
        (
            "a builder the claim names, neither run nor skipped",
            NO_PUSH.replace("[kaniko]", "[kaniko, buildx]"),
            vec![("s.yaml", scenario_text("no-push"))],
        ),
    ] {
        all.push_str(&format!(
            "## {what}\n{}\n\n",
            check(&claims, &scenarios).unwrap_err()
        ));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn a_scenario_citing_a_claim_twice_is_refused_where_it_does() {
    let error =
        Scenario::parse(Path::new("s.yaml"), &scenario_text("no-push, no-push")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("s.yaml:4:18: claim `no-push` is cited twice"),
        "{error}"
    );
}
