//! `secret_absent`: the secrets a build used leave no trace in what it produced or printed. Each
//! secret is looked for in every form a plugin may write it ([`report::redact::labelled_forms`]:
//! as is, JSON-escaped, percent-encoded, base64 at any alignment), all at once, with bounded
//! memory ([`oci::archive::Needles`]): in a pushed image (manifest, config, every byte of every
//! layer), an image archive (every member, layers decompressed) and steps' output. Step output
//! is the whole raw log as the daemon keeps it (not only the end a step record holds), searched
//! before anything is redacted; an output too large to search through is a Fail saying so.
//! No message shows a secret: findings name the secret's variable, the form and the place.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use model::result::{AssertionOutcome, Status};
use oci::archive::{Archives, Finding, Needle, Needles, Searched};
use oci::human::human;
use oci::registry;
use runtime::SearchStopped;
use scenario::{substitute, Scenario, SecretAbsentAssertion};

use super::{outcome, Evidence};

/// The most findings a message lists; the rest are counted.
const SHOWN_FINDINGS: usize = 10;

/// Every value each step variable has (its `settings` and `env`), placeholders substituted as
/// the steps got them, by name.
pub fn step_values(
    scenario: &Scenario,
    vars: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for step in &scenario.steps {
        for (name, value) in step.environment() {
            values
                .entry(name)
                .or_default()
                .insert(substitute(&value, vars));
        }
    }
    values
}

/// The secrets, each with its name for messages, as the steps got them.
fn secrets(evidence: &Evidence<'_>, absent: &SecretAbsentAssertion) -> Vec<(String, String)> {
    let mut secrets = Vec::new();
    for name in &absent.value_of {
        let values = evidence.step_values.get(name).cloned().unwrap_or_default();
        let count = values.len();
        for (i, value) in values.into_iter().enumerate() {
            secrets.push((SecretAbsentAssertion::value_label(name, i, count), value));
        }
    }
    for (i, text) in absent.text.iter().enumerate() {
        secrets.push((
            SecretAbsentAssertion::text_label(i),
            substitute(text, evidence.vars),
        ));
    }
    secrets
}

/// What the assertion's outcomes call the secrets: the variables, and how many texts.
fn named(absent: &SecretAbsentAssertion) -> String {
    let mut named = absent.value_of.clone();
    match absent.text.len() {
        0 => {}
        1 => named.push("1 secret text".to_owned()),
        n => named.push(format!("{n} secret texts")),
    }
    named.join(", ")
}

/// One outcome per place the assertion names: the image, the tarball, each step's output.
pub(super) async fn secret_absent(
    evidence: &Evidence<'_>,
    absent: &SecretAbsentAssertion,
    archives: &Archives,
) -> Vec<AssertionOutcome> {
    let named = named(absent);
    let expected =
        format!("no trace of {named}: not as is, JSON-escaped, percent-encoded or base64-encoded");
    let secrets = secrets(evidence, absent);
    let searchable = !secrets.is_empty();
    let needles: Vec<Needle> = secrets
        .into_iter()
        .flat_map(|(what, value)| {
            report::redact::labelled_forms(&value)
                .into_iter()
                .map(move |(form, text)| Needle {
                    what: format!("{what} ({form})"),
                    bytes: text.into_bytes(),
                })
        })
        .collect();
    let needles = match Needles::new(needles) {
        Ok(needles) if searchable => Arc::new(needles),
        Ok(_) | Err(_) => {
            return vec![outcome(
                format!("no trace of {named}"),
                Status::Error,
                expected,
                "the secrets could not be searched for (harness bug: validation admitted them)",
            )]
        }
    };
    let mut outcomes = Vec::new();
    if let Some(image) = &absent.image {
        let (name, registry) = registry::named(evidence.registries, image.registry.as_deref());
        let what = format!(
            "no trace of {named} in {}:{} in {name}",
            image.repository, image.tag
        );
        outcomes.push(match registry.image(&image.repository, &image.tag).await {
            Ok(Some(served)) => match registry.search(&served, &needles).await {
                Ok(Ok(searched)) => {
                    let through = format!(
                        "the manifest, the config and {} layer{}",
                        served.layer_count,
                        if served.layer_count == 1 { "" } else { "s" }
                    );
                    judged(what, &expected, &searched, &through)
                }
                Ok(Err(e)) => outcome(what, Status::Fail, &expected, e),
                Err(e) => outcome(what, Status::Error, &expected, e.to_string()),
            },
            Ok(None) => outcome(
                what,
                Status::Fail,
                &expected,
                "no such tag: nothing to search",
            ),
            Err(e) => outcome(what, Status::Error, &expected, e.to_string()),
        });
    }
    if let Some(path) = &absent.tarball {
        let what = format!("no trace of {named} in tarball {path}");
        outcomes.push(match archives.search(path, &needles) {
            Ok(searched) => judged(what, &expected, &searched, "every member"),
            Err(e) if e.is_missing() => outcome(
                what,
                Status::Fail,
                &expected,
                "no such file: nothing to search",
            ),
            Err(e) if e.is_harness_error() => {
                outcome(what, Status::Error, &expected, e.to_string())
            }
            Err(e) => outcome(what, Status::Fail, &expected, e.to_string()),
        });
    }
    for step in &absent.step_logs {
        let what = format!("no trace of {named} in the output of step {step}");
        let record = match evidence.ran(step, &what, &expected) {
            Ok(record) => record,
            Err(not_run) => {
                outcomes.push(not_run);
                continue;
            }
        };
        // The whole output as the daemon keeps it, not only the end the record holds: a secret
        // printed early in a long log is found too.
        let (found, bytes, through) = match evidence.environment {
            Some(env) => {
                let search = env.search_step_log(step, &needles).await;
                match search.stopped {
                    None => (search.found, search.bytes, "its whole output"),
                    Some(SearchStopped::TooLarge(why)) if search.found.is_empty() => {
                        outcomes.push(outcome(
                            what,
                            Status::Fail,
                            &expected,
                            format!(
                                "not shown: {why} ({} searched, nothing found): a secret could                                  be in the rest",
                                human(search.bytes)
                            ),
                        ));
                        continue;
                    }
                    Some(SearchStopped::Unreadable(why)) if search.found.is_empty() => {
                        outcomes.push(outcome(what, Status::Error, &expected, why));
                        continue;
                    }
                    Some(_) => (search.found, search.bytes, "its output"),
                }
            }
            None => (
                needles.found_in(record.log.as_bytes()),
                record.log.len() as u64,
                "its output",
            ),
        };
        let searched = Searched {
            findings: found
                .into_iter()
                .map(|what| Finding {
                    what,
                    place: "its output".to_owned(),
                })
                .collect(),
            members: 0,
            bytes,
        };
        outcomes.push(judged(what, &expected, &searched, through));
    }
    outcomes
}

/// Pass when nothing was found, saying what was searched; else Fail listing the findings.
fn judged(what: String, expected: &str, searched: &Searched, through: &str) -> AssertionOutcome {
    if searched.findings.is_empty() {
        let files = match searched.members {
            0 => String::new(),
            n => format!(", {n} tar members"),
        };
        return outcome(
            what,
            Status::Pass,
            expected,
            format!(
                "none: searched {through} ({}{files})",
                human(searched.bytes)
            ),
        );
    }
    let mut listed: Vec<String> = searched
        .findings
        .iter()
        .take(SHOWN_FINDINGS)
        .map(|f| format!("{} in {}", f.what, f.place))
        .collect();
    if searched.findings.len() > SHOWN_FINDINGS {
        listed.push(format!(
            "and {} more",
            searched.findings.len() - SHOWN_FINDINGS
        ));
    }
    outcome(what, Status::Fail, expected, listed.join("; "))
}
