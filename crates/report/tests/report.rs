//! The reports a person reads: `report.html` (self-contained) and `summary.md`, from results
//! built here (pass, fail with failed assertions, known discrepancy, error, skip, flaky
//! repetitions, parallel steps, two shards of one matrix) and from results an older harness wrote
//! (`tests/fixtures/runs/`: no phases, no repetition).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use model::inventory::ServedTag;
use model::inventory::{Holdings, Snapshot};
use model::result::EnvironmentPhases;
use model::result::{
    AssertionOutcome, ImageRecord, KnownDiscrepancy, Phases, ScenarioResult, Status, StepRecord,
};
use report::compare_view::CompareView;
use report::runs::Run;
use report::{html, markdown, write_compare, write_reports, Redact};
use serde_json::json;

const BASE_MANIFEST: &str =
    "sha256:ad70f6c146de50d3fbc61ffd7169ccc7aab2783f0fd923039ab29b72a6a528e2";
const BASE_CONFIG: &str = "sha256:455bc24cb99bbe42fd8b7ef797026850c1bac3ff0861dc4765f76aee39f4001d";
const APP_MANIFEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const APP_CONFIG: &str = "sha256:2cd2f7a09972a205f275b85e4ab3114d7edf12cc808ca86174d1ee12ca85a0c6";
const OTHER_CONFIG: &str =
    "sha256:9999999999999999999999999999999999999999999999999999999999999999";

fn step(
    name: &str,
    started_ms: u64,
    duration_ms: u64,
    exit: i64,
    group: Option<&str>,
) -> StepRecord {
    StepRecord {
        name: name.to_owned(),
        role: "buildx".to_owned(),
        exit_code: Some(exit),
        timed_out: false,
        started_ms,
        duration_ms,
        group: group.map(str::to_owned),
        log: format!(
            "+ docker buildx build -t registry:5000/conformance/app:1.0 .\n#1 done {name}\n"
        ),
        limits: None,
        oom_killed: false,
        security: None,
    }
}

fn assertion(what: &str, status: Status, expected: &str, found: &str) -> AssertionOutcome {
    AssertionOutcome {
        assertion: what.to_owned(),
        status,
        expected: expected.to_owned(),
        found: found.to_owned(),
        differences: None,
    }
}

fn tag(manifest: &str, config: &str) -> ServedTag {
    ServedTag {
        manifest_digest: manifest.to_owned(),
        config_digest: Some(config.to_owned()),
        media_type: Some("application/vnd.docker.distribution.manifest.v2+json".to_owned()),
        layers: Some(2),
    }
}

/// The base image alone, then the app pushed under `1.0` and loaded into the daemon.
fn inventory(app_config: &str) -> Vec<Snapshot> {
    let base = BTreeMap::from([(
        "harness/busybox".to_owned(),
        BTreeMap::from([("1.37".to_owned(), tag(BASE_MANIFEST, BASE_CONFIG))]),
    )]);
    let mut after = base.clone();
    after.insert(
        "conformance/app".to_owned(),
        BTreeMap::from([("1.0".to_owned(), tag(APP_MANIFEST, app_config))]),
    );
    vec![
        Snapshot {
            after: "environment up".to_owned(),
            holdings: Some(Holdings {
                registries: BTreeMap::from([("registry".to_owned(), base)]),
                daemon: BTreeMap::new(),
                ..Default::default()
            }),
            error: None,
        },
        Snapshot {
            after: "step build".to_owned(),
            holdings: Some(Holdings {
                registries: BTreeMap::from([("registry".to_owned(), after)]),
                daemon: BTreeMap::from([(
                    "registry:5000/conformance/app:1.0".to_owned(),
                    app_config.to_owned(),
                )]),
                ..Default::default()
            }),
            error: None,
        },
    ]
}

fn phases(steps_ms: u64) -> Phases {
    Phases {
        environment_ms: 2700,
        environment: EnvironmentPhases {
            network_ms: 76,
            registry_ready_ms: 515,
            dind_ready_ms: 2499,
            base_image_ms: 118,
        },
        steps_ms,
        inventory_ms: 122,
        checks_ms: 11,
        teardown_ms: 417,
        ahead_ms: 0,
        teardown_background_ms: 0,
    }
}

/// A passing result of `test` (`workflow::scenario::builder`) with one build step.
fn result(test: &str, status: Status) -> ScenarioResult {
    let builder = test.rsplit("::").next().unwrap().to_owned();
    let steps = vec![step("build", 0, 847, 0, None)];
    ScenarioResult {
        test: test.to_owned(),
        scenario: format!("scenario {}", test.rsplit_once("::").unwrap().0),
        file: "scenarios/some/where.yaml".to_owned(),
        claims: Vec::new(),
        builder: builder.clone(),
        profile: "offline".to_owned(),
        status,
        reason: None,
        images: BTreeMap::from([(
            builder,
            ImageRecord {
                image: "conformance-offline/plugin:offline".to_owned(),
                id: APP_CONFIG.to_owned(),
                note: None,
            },
        )]),
        steps,
        captures: BTreeMap::new(),
        assertions: vec![assertion(
            "step build succeeded",
            Status::Pass,
            "exit status 0",
            "exit status 0",
        )],
        inventory: inventory(APP_CONFIG),
        duration_ms: 4115,
        phases: phases(858),
        repetition: 1,
        retried_errors: Vec::new(),
        known_discrepancy: None,
        harness_steps: Vec::new(),
        isolation: None,
    }
}

fn failing(test: &str) -> ScenarioResult {
    let mut r = result(test, Status::Fail);
    r.reason = Some("tag conformance/app:1.0 in registry".to_owned());
    r.assertions.push(assertion(
        "tag conformance/app:1.0 in registry",
        Status::Fail,
        &format!("config digest {APP_CONFIG}"),
        &format!("config digest {OTHER_CONFIG} | pushed <twice>"),
    ));
    r.inventory = inventory(OTHER_CONFIG);
    r.steps[0].log = "<script>alert('escaped')</script>\nerror: push refused\n".to_owned();
    r.duration_ms = 9800;
    r.phases = phases(4400);
    r
}

/// One run of a small matrix: every kind of outcome.
fn first_run() -> Run {
    let pass = result("build_only::tar::buildx", Status::Pass);
    let fail = failing("build_only::tar::kaniko");

    let mut known = result("build_only::no_push_dry_run_false::buildx", Status::Fail);
    known.reason = Some("no tags in registry for conformance/app".to_owned());
    known.assertions.push(assertion(
        "no tags in registry for conformance/app",
        Status::Fail,
        "no tags",
        "tags [\"1.0\"]",
    ));
    known.known_discrepancy = Some(KnownDiscrepancy {
        because: "drone-buildx reads PLUGIN_DRY_RUN and PLUGIN_NO_PUSH as one flag".to_owned(),
        met: true,
        difference: None,
    });

    let mut error = result("build_only::tar::docker", Status::Error);
    error.reason = Some("registry did not become ready within 30 s: connection refused".to_owned());
    error.steps.clear();
    error.assertions.clear();
    error.inventory.clear();
    error.phases = Phases::default();
    error.duration_ms = 30_500;

    let mut skip = result("build_only::tar::buildah", Status::Skip);
    skip.reason = Some("the docs name BuildX and kaniko only".to_owned());
    skip.steps.clear();
    skip.assertions.clear();
    skip.inventory.clear();
    skip.phases = Phases::default();
    skip.duration_ms = 0;

    let mut flaky = Vec::new();
    for (repetition, status) in [(1, Status::Pass), (2, Status::Fail), (3, Status::Pass)] {
        let mut r = if status == Status::Pass {
            result("push_only::from_tarball::kaniko", status)
        } else {
            failing("push_only::from_tarball::kaniko")
        };
        r.repetition = repetition;
        r.duration_ms += u64::from(repetition) * 100;
        if repetition == 3 {
            r.retried_errors = vec!["dind did not become ready within 30 s".to_owned()];
        }
        flaky.push(r);
    }

    let mut parallel = result("build_once_push_many::two_registries::buildx", Status::Pass);
    parallel.steps = vec![
        step("build", 0, 2081, 0, None),
        step("push-registry", 2229, 1332, 0, Some("push")),
        step("push-mirror", 2230, 1199, 0, Some("push")),
    ];
    parallel.phases = phases(3561);
    parallel.duration_ms = 8995;

    // Expected to fail as documented, but the plugin now keeps the promise.
    let mut kept = result("around::skip_push_if_tag_exists::kaniko", Status::Pass);
    kept.known_discrepancy = Some(KnownDiscrepancy {
        because: "only plugins/ecr reads PLUGIN_SKIP_PUSH_IF_TAG_EXISTS".to_owned(),
        met: false,
        difference: Some("passed: the builder now keeps the promise".to_owned()),
    });

    let mut results = vec![pass, fail, known, error, skip, parallel, kept];
    results.extend(flaky);
    Run {
        id: "1796131083-99c472".to_owned(),
        source: PathBuf::new(),
        results,
    }
}

/// A second shard: adds a plan, and holds `build_only::tar::buildx` repetition 1 again.
fn second_run() -> Run {
    let mut again = result("build_only::tar::buildx", Status::Pass);
    again.duration_ms = 5000;
    Run {
        id: "1796131358-9f496b".to_owned(),
        source: PathBuf::new(),
        results: vec![again, result("build_and_push::push::buildx", Status::Pass)],
    }
}

fn runs() -> Vec<Run> {
    vec![first_run(), second_run()]
}

/// The page's structure, one line per element that matters, indented by the folded sections
/// it is in: headings, matrix cells with their classes and links, plan sections, step bars and
/// phase segments with their geometry, the registry readings' and the assertions' rows.
fn outline(page: &str) -> String {
    /// An element whose text makes one line: the line's start and the element that ends it.
    struct Capture {
        head: String,
        text: String,
        until: &'static str,
    }
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        tag.find(&key)
            .map(|i| {
                let value = &tag[i + key.len()..];
                value[..value.find('"').unwrap()].to_owned()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut capture: Option<Capture> = None;
    let mut table = String::new();
    let mut in_head = false;
    let mut rest = page;
    while let Some(open) = rest.find('<') {
        if let Some(c) = &mut capture {
            c.text.push_str(&rest[..open]);
            c.text.push(' ');
        }
        let close = rest[open..].find('>').unwrap() + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        for raw in ["style", "script"] {
            if tag.starts_with(raw) {
                let end = format!("</{raw}>");
                rest = &rest[rest.find(&end).unwrap() + end.len()..];
            }
        }
        let indent = "  ".repeat(depth);
        if let Some(closing) = tag.strip_prefix('/') {
            if capture.as_ref().is_some_and(|c| c.until == closing) {
                let c = capture.take().unwrap();
                let text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
                let text = text
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&");
                out.push(format!("{}{text}", c.head));
            }
            match closing {
                "details" | "section" => depth = depth.saturating_sub(1),
                "table" => table.clear(),
                "thead" => in_head = false,
                _ => {}
            }
            continue;
        }
        let name = tag.split([' ', '/']).next().unwrap_or_default();
        let class = attr(tag, "class");
        let dotted = class.replace(' ', ".");
        let mut start = |head: String, until: &'static str| {
            if capture.is_none() {
                capture = Some(Capture {
                    head,
                    text: String::new(),
                    until,
                });
            }
        };
        match name {
            "h1" => start(format!("{indent}h1: "), "h1"),
            "h2" => start(format!("{indent}h2: "), "h2"),
            "h3" => start(format!("{indent}h3: "), "h3"),
            "h4" => start(format!("{indent}h4: "), "h4"),
            "summary" => start(format!("{indent}summary: "), "summary"),
            "caption" => start(format!("{indent}caption: "), "caption"),
            "p" if class == "reason" || class == "known-note" || class == "muted" => {
                start(format!("{indent}p.{dotted}: "), "p")
            }
            "details" | "section" => {
                let open = if tag.ends_with(" open") { " open" } else { "" };
                let id = attr(tag, "id");
                let id = if id.is_empty() {
                    String::new()
                } else {
                    format!(" #{id}")
                };
                out.push(format!("{indent}{name}.{dotted}{id}{open}"));
                depth += 1;
            }
            "table" => {
                table = class.clone();
                out.push(format!("{indent}table.{dotted}"));
            }
            "thead" => in_head = true,
            "th" if attr(tag, "scope") == "row" => start(format!("{indent}row "), "th"),
            "td" if class.starts_with("cell") => start(format!("{indent}  td.{dotted} "), "td"),
            "a" => {
                if let Some(c) = &mut capture {
                    c.head.push_str(&format!("{} ", attr(tag, "href")));
                }
            }
            "tr" if !in_head && ["inv", "assertions", "compare"].contains(&table.as_str()) => {
                let dotted = if dotted.is_empty() {
                    "-".to_owned()
                } else {
                    dotted
                };
                start(format!("{indent}  tr.{dotted}: "), "tr")
            }
            "td" => {
                if let Some(c) = &mut capture {
                    c.text.push_str(" | ");
                }
            }
            "div" if class.starts_with("bar ") => {
                out.push(format!("{indent}div.{dotted} {}", attr(tag, "style")));
            }
            "span" if class.starts_with("seg ") || class == "groupspan" => {
                out.push(format!("{indent}span.{dotted} {}", attr(tag, "style")));
            }
            _ => {}
        }
    }
    out.join("\n")
}

#[test]
fn the_markdown_summary_is_pinned() {
    insta::assert_snapshot!(markdown::render(&runs(), Redact::Volatile));
}

#[test]
fn the_html_report_structure_is_pinned() {
    insta::assert_snapshot!(outline(&html::render(&runs(), Redact::Volatile)));
}

#[test]
fn the_html_report_is_self_contained_and_escapes_what_it_shows() {
    let page = html::render(&runs(), Redact::Nothing);
    assert!(!page.contains("http://") && !page.contains("https://"));
    for external in ["<link", "<img", " src=", "@import", "url("] {
        assert!(!page.contains(external), "the page references {external}");
    }
    assert!(
        page.contains("default-src 'none'"),
        "a CSP forbids every request"
    );
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;alert(&#39;escaped&#39;)&lt;/script&gt;"));
    assert!(page.contains("pushed &lt;twice&gt;"));
    // Digests are shortened in the registry tables, kept whole in expected/found.
    assert!(page.contains("<code>sha256:2cd2f7a09972</code>"));
    assert!(page.contains(&format!("config digest {APP_CONFIG}")));
}

#[test]
fn redaction_hides_digests_durations_and_run_ids() {
    let page = html::render(&runs(), Redact::Volatile);
    for volatile in ["2cd2f7a09972", "1796131083", "847 ms", "4115"] {
        assert!(!page.contains(volatile), "{volatile} is not redacted");
    }
    assert!(page.contains("sha256:&lt;digest&gt;"));
    assert_eq!(
        Redact::Volatile.text(&format!(
            "took 847 ms, then 12ms; {APP_CONFIG}; sha256:abc; 3 tags"
        )),
        "took <ms>, then <ms>; sha256:<digest>; sha256:abc; 3 tags"
    );
    assert_eq!(Redact::Nothing.text("847 ms"), "847 ms");
    assert_eq!(Redact::Nothing.ms(847), "847 ms");
    assert_eq!(Redact::Nothing.ms(16_189), "16.2 s");
}

#[test]
fn shards_merge_and_a_repeated_plan_is_kept_once_per_run() {
    let page = html::render(&runs(), Redact::Nothing);
    // Both copies of build_only::tar::buildx repetition 1, each labelled with its run.
    assert!(page.contains("id=\"plan-build_only-tar-buildx-r1-s1\""));
    assert!(page.contains("id=\"plan-build_only-tar-buildx-r1-s2\""));
    assert!(page.contains("run <code>1796131358-9f496b</code>"));
    // The second shard's own plan is in the matrix.
    assert!(page.contains("href=\"#plan-build_and_push-push-buildx\""));
}

#[test]
fn parallel_steps_overlap_on_one_time_axis() {
    let page = html::render(&[first_run()], Redact::Nothing);
    let start = page
        .find("id=\"plan-build_once_push_many-two_registries-buildx\"")
        .unwrap();
    let section = &page[start..start + page[start..].find("</details>").unwrap()];
    let bars: Vec<(f64, f64)> = section
        .match_indices("<div class=\"bar ")
        .map(|(i, _)| {
            let style = &section[i..];
            let style = &style[style.find("style=\"").unwrap() + 7..];
            let style = &style[..style.find('"').unwrap()];
            let number = |key: &str| -> f64 {
                let v = &style[style.find(key).unwrap() + key.len()..];
                v[..v.find('%').unwrap()].parse().unwrap()
            };
            (number("left:"), number("width:"))
        })
        .collect();
    assert_eq!(bars.len(), 3);
    let (registry, mirror) = (bars[1], bars[2]);
    assert!(registry.0 < mirror.0 + mirror.1 && mirror.0 < registry.0 + registry.1);
    // One axis: the build ends where the pushes begin, and the last push ends at 100 %.
    assert!(bars[0].0 == 0.0 && bars[0].1 < registry.0);
    assert!((registry.0 + registry.1 - 100.0).abs() < 0.01);
    assert_eq!(section.matches("class=\"groupspan\"").count(), 2);
}

#[test]
fn flaky_repetitions_are_shown_as_flaky() {
    let page = html::render(&[first_run()], Redact::Nothing);
    assert!(
        page.contains("<td class=\"cell flaky\"><a href=\"#plan-push_only-from_tarball-kaniko\"")
    );
    assert!(page.contains("pass 2 · fail 1"));
    let summary = markdown::render(&[first_run()], Redact::Nothing);
    assert!(summary.contains("🔀 flaky (✅2 ❌1)"));
}

#[test]
fn results_an_older_harness_wrote_load_and_render() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs/1796131083-old-format");
    let run = Run::load(&dir).expect("results without phases or repetition load");
    assert!(run.results.iter().all(|r| r.repetition == 1));
    let page = html::render(std::slice::from_ref(&run), Redact::Nothing);
    assert!(page.contains("No phase timings recorded"));
    assert!(page.contains("<td class=\"cell known\">"));
    let summary = markdown::render(std::slice::from_ref(&run), Redact::Nothing);
    assert!(summary.contains("| `around::registry_auth` | – | – | ✅ pass | – |"));
}

#[test]
fn write_reports_writes_the_page_and_the_summary_next_to_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let run = first_run();
    for r in &run.results {
        report::write_result(dir.path(), r).unwrap();
    }
    let loaded = Run::load(dir.path()).unwrap();
    write_reports(dir.path(), std::slice::from_ref(&loaded), None).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(summary.starts_with("# Conformance report"));
    // The reports are not results: the run still loads.
    assert_eq!(
        Run::load(dir.path()).unwrap().results.len(),
        run.results.len()
    );
}

/// A comparison as `harness compare --json` writes it (schema version 1), trimmed.
fn comparison() -> serde_json::Value {
    let spread = |median: u64, min: u64, max: u64| json!({"median_ms": median, "min_ms": min, "max_ms": max, "samples_ms": [min, median, max]});
    let side = |status: &str| {
        json!({"status": status, "repetitions": [status], "flaky": false, "as_expected": status != "fail",
               "known_discrepancy_met": null, "reason": null})
    };
    json!({
        "schema_version": 1,
        "base": [{"id": "1796130936-ec5c80", "source": "reports/1796130936-ec5c80", "results": 3}],
        "new": [{"id": "1796131083-99c472", "source": "reports/1796131083-99c472", "results": 3}],
        "settings": {"threshold_ratio": 1.25, "min_delta_ms": 200, "fail_on_status": true, "fail_on_timing": true},
        "verdict": {"fails": true, "summary": "fails: 1 status regression, 1 timing regression", "plans": 4},
        "plans": [
            {"test": "build_only::tar::buildx", "base_status": "pass", "new_status": "pass",
             "change": "unchanged", "status_regression": false, "note": "both pass",
             "base": side("pass"), "new": side("pass"), "observations_compared": true,
             "observation_changes": [], "timing_regression": true,
             "timings": [
                {"subject": "step build", "step": "build", "base": spread(847, 800, 900),
                 "new": spread(4847, 4800, 4900), "ratio": 5.72, "delta_ms": 4000,
                 "verdict": "regression", "note": null},
                {"subject": "all steps", "step": null, "base": spread(858, 858, 858),
                 "new": spread(4858, 4858, 4858), "ratio": 5.66, "delta_ms": 4000,
                 "verdict": "regression", "note": "no spread (1 run)"}]},
            {"test": "build_only::tar::kaniko", "base_status": "pass", "new_status": "fail",
             "change": "regression", "status_regression": true,
             "note": "was as expected, is not (pass → fail)",
             "base": side("pass"), "new": side("fail"), "observations_compared": true,
             "observation_changes": [
                {"kind": "pushed_tag", "item": "registry/conformance/app:1.0", "change": "added", "seen_in": 1, "of": 1},
                {"kind": "failed_assertion", "item": "no tags in registry for conformance/app", "change": "added", "seen_in": 1, "of": 1}],
             "timing_regression": false,
             "timings": [{"subject": "step build", "step": "build", "base": spread(3975, 3975, 3975),
                          "new": spread(4010, 4010, 4010), "ratio": 1.01, "delta_ms": 35,
                          "verdict": "below_floor", "note": "no spread (1 run)"}]},
            {"test": "build_only::dry_run::docker", "base_status": "fail", "new_status": "pass",
             "change": "improvement", "status_regression": false, "note": "is as expected now",
             "base": side("fail"), "new": side("pass"), "observations_compared": true,
             "observation_changes": [], "timing_regression": false, "timings": []},
            {"test": "around::registry_auth::docker", "base_status": "pass", "new_status": "pass",
             "change": "unchanged", "status_regression": false, "note": "",
             "base": side("pass"), "new": side("pass"), "observations_compared": true,
             "observation_changes": [], "timing_regression": false,
             "timings": [{"subject": "all steps", "step": null, "base": spread(2212, 2100, 2300),
                          "new": spread(2250, 2250, 2250), "ratio": 1.02, "delta_ms": 38,
                          "verdict": "within_noise", "note": null}]}
        ]
    })
}

#[test]
fn the_comparison_adapter_reads_what_harness_compare_writes() {
    let view = CompareView::from_value(&comparison());
    assert_eq!(view.base, ["1796130936-ec5c80"]);
    assert_eq!(view.new, ["1796131083-99c472"]);
    assert_eq!(
        view.summary.as_deref(),
        Some("fails: 1 status regression, 1 timing regression")
    );
    assert_eq!(view.plans.len(), 4);
    assert_eq!(view.regressions(), 2, "one status, one timing regression");
    assert_eq!(view.changed(), 3);
    let buildx = &view.plans[0];
    assert!(buildx.timing_regression && !buildx.regression);
    assert_eq!(
        buildx.timings[0].before.as_deref(),
        Some("847 ms (800–900 ms)")
    );
    assert_eq!(buildx.timings[1].after.as_deref(), Some("4858 ms"));
    let kaniko = &view.plans[1];
    assert_eq!(
        (kaniko.before.as_deref(), kaniko.after.as_deref()),
        (Some("pass"), Some("fail"))
    );
    assert!(kaniko.regression);
    assert_eq!(
        kaniko.observations[0].what,
        "pushed tag registry/conformance/app:1.0"
    );
    assert_eq!(
        kaniko.observations[0].after.as_deref(),
        Some("seen in 1 of 1")
    );
    assert!(!kaniko.timings[0].significant, "below the floor");
    assert!(!view.plans[2].regression, "fail → pass is an improvement");
    assert!(!view.plans[3].changed());
}

#[test]
fn the_comparison_adapter_reads_other_shapes_and_ignores_the_rest() {
    let view = CompareView::from_value(&json!({
        "baseline": {"id": "a"},
        "current": "b",
        "plans": {
            "x::y::buildx": {"status": {"before": "pass", "after": "error"},
                             "timings": {"duration_ms": {"before": 4115, "after": 9800}}},
            "x::y::kaniko": {"status": "fail -> pass",
                             "observations": [{"what": "config", "before": "a", "after": "b"}]}
        }
    }));
    assert_eq!(
        (view.base.as_slice(), view.new.as_slice()),
        (&["a".to_owned()][..], &["b".to_owned()][..])
    );
    assert!(view.plans[0].regression, "pass → error is a regression");
    assert_eq!(view.plans[0].timings[0].after.as_deref(), Some("9800"));
    assert!(!view.plans[1].regression);
    assert_eq!(view.plans[1].observations[0].before.as_deref(), Some("a"));
    // Anything else renders as an empty comparison, not an error.
    let empty = CompareView::from_value(&json!({"unexpected": [1, 2]}));
    assert!(empty.plans.is_empty());
    assert!(html::render_compare(&empty, Redact::Nothing).contains("lists no plans"));
}

#[test]
fn the_comparison_page_structure_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    write_compare(dir.path(), &comparison()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
    assert!(page.contains("×5.72"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    let view = CompareView::from_value(&comparison());
    insta::assert_snapshot!(outline(&html::render_compare(&view, Redact::Volatile)));
}

/// Opens the page in headless Chromium: the matrix and the step timeline are in the rendered
/// DOM, a link to a plan opens its folded section, and the page asked for nothing over the
/// network. Skips when Chromium is absent, unless `CI` is set (then it fails).
#[test]
fn the_report_renders_in_headless_chromium() -> Result<(), String> {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        if std::env::var_os("CI").is_some() {
            return Err("CI is set but /usr/bin/chromium is absent: install it \
                        (apt-get install -y --no-install-recommends chromium)"
                .to_owned());
        }
        println!("skipped: /usr/bin/chromium is absent (and CI is not set)");
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    write_reports(dir.path(), &runs(), None).map_err(|e| e.to_string())?;
    let page = dir.path().join("report.html");
    let profile = dir.path().join("profile");
    let chrome = |url: &str, extra: &[&str]| -> Result<std::process::Output, String> {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Any name lookup fails: a request the page made could not leave the machine.
                "--host-resolver-rules=MAP * ~NOTFOUND",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .output()
            .map_err(|e| format!("cannot run chromium: {e}"))
    };
    let url = format!("file://{}", page.display());
    let dumped = chrome(
        &format!("{url}#plan-build_once_push_many-two_registries-buildx"),
        &["--dump-dom"],
    )?;
    let dom = String::from_utf8_lossy(&dumped.stdout);
    assert!(
        dumped.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    assert!(
        dom.contains("<table class=\"matrix\">"),
        "no matrix in the DOM:\n{dom}"
    );
    assert_eq!(
        dom.matches("<td class=\"cell ").count(),
        6 * 4,
        "6 rows × 4 builders"
    );
    assert!(dom.contains("class=\"timeline\""));
    assert!(
        dom.matches("class=\"bar ok grouped\"").count() >= 2,
        "the parallel steps' bars"
    );
    // The link target, folded (it passed), was opened by the page's script.
    assert!(
        dom.contains("id=\"plan-build_once_push_many-two_registries-buildx\" open=\"\""),
        "the linked plan is not open"
    );
    assert!(!dom.contains("http://") && !dom.contains("https://"));

    let shot = dir.path().join("shot.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let shooting = chrome(&url, &[&shot_arg, "--window-size=1400,1000"])?;
    assert!(shooting.status.success());
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot"
    );
    if let Some(keep) = std::env::var_os("REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One plan whose `images_equivalent` failed: two differences the allow-list does not name
/// (one carrying markup and a table separator), one it does.
fn equivalence_run() -> Vec<Run> {
    use model::result::{Difference, DifferenceKind};
    let mut r = result("equivalence::kaniko_buildx::kaniko", Status::Fail);
    let mut outcome = assertion(
        "equivalence/kaniko:1.0 is equivalent to equivalence/buildx:1.0",
        Status::Fail,
        "the same files, config, layer count and history, except history",
        "2 difference(s) not allowed: workdir, labels.a (and 1 allowed)",
    );
    let difference =
        |kind, key: &str, left: Option<&str>, right: Option<&str>, allowed| Difference {
            kind,
            key: key.to_owned(),
            left: left.map(str::to_owned),
            right: right.map(str::to_owned),
            allowed_by: allowed,
        };
    outcome.differences = Some(vec![
        difference(
            DifferenceKind::Config,
            "workdir",
            Some("/srv/app"),
            Some("/"),
            None,
        ),
        difference(
            DifferenceKind::Config,
            "labels.a",
            Some("<b>x|y</b>"),
            None,
            None,
        ),
        difference(
            DifferenceKind::History,
            "history.1",
            Some("WORKDIR /srv/app"),
            Some("RUN mkdir"),
            Some("history".to_owned()),
        ),
    ]);
    r.assertions = vec![outcome];
    vec![Run {
        id: "1796131083-99c473".to_owned(),
        source: PathBuf::new(),
        results: vec![r],
    }]
}

#[test]
fn image_differences_reach_both_reports_escaped() {
    let runs = equivalence_run();
    let summary = markdown::render(&runs, Redact::Nothing);
    assert!(
        summary.contains("| what | where | left | right |"),
        "{summary}"
    );
    assert!(
        summary.contains("| config | workdir | /srv/app | / |"),
        "{summary}"
    );
    assert!(
        summary.contains("| config | labels.a | &lt;b&gt;x\\|y&lt;/b&gt; | *absent* |"),
        "{summary}"
    );
    assert!(summary.contains("(1 allowed, not listed)"), "{summary}");
    assert!(!summary.contains("history.1"), "{summary}");
    let page = html::render(&runs, Redact::Nothing);
    assert!(page.contains("<table class=\"differences\">"));
    assert!(page.contains("<td>labels.a</td><td>&lt;b&gt;x|y&lt;/b&gt;</td><td><i>absent</i></td>"));
    assert!(!page.contains("<b>x"));
    assert!(page.contains("<tr class=\"allowed\"><td>history</td><td>history.1</td>"));
}
