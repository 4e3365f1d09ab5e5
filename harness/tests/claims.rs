//! The repository's claims ledger, scenarios and README agree: every claim checked or
//! explained, every citation a claim, the README's tables what the files say.

use std::collections::BTreeSet;

use harness::session::repo_root;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

#[test]
fn every_claim_is_checked_or_explained_and_every_citation_is_a_claim() {
    let (ledger, citations) = match harness::ledger::read(&repo_root()) {
        Ok(read) => read,
        Err(e) => panic!("{e}"),
    };
    assert!(ledger.claims.len() > 60, "{} claims", ledger.claims.len());
    // Every page kept is a page of the ledger.
    let kept: BTreeSet<String> = std::fs::read_dir(repo_root().join("claims/pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let named: BTreeSet<String> = ledger
        .pages
        .iter()
        .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept, named, "claims/pages/ and the ledger's pages differ");
    // Every contradiction is settled by a scenario or explained.
    for claim in &ledger.claims {
        if claim.kind == model::claims::ClaimKind::Contradiction {
            assert!(
                citations.by_claim.contains_key(&claim.id) || claim.explanation.is_some(),
                "{}",
                claim.id
            );
        }
    }
}

#[test]
fn every_build_and_push_example_of_the_pages_runs_as_written_or_is_explained() {
    let (ledger, _) = harness::ledger::read(&repo_root()).unwrap();
    let examples = match claims::examples::check(
        &repo_root().join("claims/examples.yaml"),
        &ledger,
        &repo_root(),
    ) {
        Ok(examples) => examples,
        Err(e) => panic!("{e}"),
    };
    // Every page's examples: 2 + 15 + 2 + 15 + 8 today; the check finds any new one.
    assert!(examples.len() >= 42, "{} examples", examples.len());
    let unexplained: Vec<_> = examples
        .iter()
        .filter(|e| e.run_by.is_none() && e.not_runnable.is_none())
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:?}");
}

#[test]
fn the_readme_features_table_is_the_ledgers() {
    let (ledger, citations) = harness::ledger::read(&repo_root()).unwrap();
    let readme = readme();
    let start = readme
        .find("<!-- claims-topics:begin -->\n")
        .expect("begin marker")
        + 29;
    let end = readme
        .find("<!-- claims-topics:end -->")
        .expect("end marker");
    assert_eq!(
        &readme[start..end],
        claims::topics_markdown(&ledger, &citations),
        "README's features table is stale: paste `harness claims --topics` between the markers"
    );
}

/// The builder names in a README cell, e.g. "kaniko; buildx **expected to fail**".
fn builders_in(cell: &str) -> BTreeSet<String> {
    cell.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| scenario::KNOWN_BUILDERS.contains(w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_scenario_table_lists_every_scenario_with_its_builders() {
    let readme = readme();
    let start = readme
        .find("| scenario | runs on | skipped (docs' reason) | claim checked |")
        .expect("the scenario table");
    let mut listed = BTreeSet::new();
    for row in readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<&str> = row.split(" | ").collect();
        let name = cells[0].trim_start_matches("| ").trim_matches('`');
        let path = repo_root().join(format!("scenarios/{name}.yaml"));
        let scenario =
            scenario::Scenario::load(&path).unwrap_or_else(|e| panic!("README row `{name}`: {e}"));
        let run: BTreeSet<String> = scenario.builders.iter().cloned().collect();
        let skipped: BTreeSet<String> = scenario.skip.keys().cloned().collect();
        // drone-docker is skipped wherever the docs name BuildX and kaniko only: the README
        // says so once instead of in every row.
        let skipped_shown: BTreeSet<String> = builders_in(cells[2]);
        assert_eq!(builders_in(cells[1]), run, "README row `{name}`: runs on");
        assert_eq!(
            skipped_shown,
            skipped
                .iter()
                .filter(|b| *b != "docker" || skipped_shown.contains("docker"))
                .cloned()
                .collect(),
            "README row `{name}`: skipped"
        );
        assert!(
            listed.insert(name.to_owned()),
            "README lists `{name}` twice"
        );
    }
    let files: BTreeSet<String> = scenario::discover(&repo_root().join("scenarios"))
        .unwrap()
        .into_iter()
        .map(|f| format!("{}/{}", f.workflow, f.stem))
        .collect();
    assert_eq!(
        listed, files,
        "README's scenario table and scenarios/ differ"
    );
}
