//! Reading the ledger (`claims/ledger.yaml`) and checking it holds together by itself: known
//! pages, unique ids, every quote found word for word in its page, contradictions between
//! claims that exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::claims::ClaimKind;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::errors::{LocatedProblem, ReadLedgerError};

/// The ledger language version this crate reads.
pub const LEDGER_VERSION: u32 = 1;

/// The largest ledger read (the ledger of five pages is some 60 KiB).
const MAX_LEDGER_BYTES: u64 = 4 * 1024 * 1024;

/// What a claim is about; `harness claims` groups by it.
pub const TOPICS: &[&str] = &[
    "build-only",
    "push-only",
    "push-many",
    "scan",
    "build-and-push",
    "builder-choice",
    "tags",
    "labels",
    "build-args",
    "target",
    "dockerfile-context",
    "secrets",
    "ssh",
    "cache",
    "base-image",
    "registry-auth",
    "insecure",
    "skip-existing-tag",
    "run-as-user",
    "resources",
    "timeout",
    "outputs",
    "buildx-options",
    "ecr",
    "infrastructure",
    "other",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    version: Spanned<u32>,
    pages: Vec<PageEntry>,
    claims: Vec<ClaimEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageEntry {
    id: Spanned<String>,
    file: Spanned<String>,
    title: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimEntry {
    id: Spanned<String>,
    #[serde(default)]
    page: Option<Spanned<String>>,
    #[serde(default)]
    section: Option<String>,
    #[serde(default)]
    quote: Option<Spanned<String>>,
    #[serde(default)]
    contradiction: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    summary: Option<String>,
    topic: Spanned<String>,
    #[serde(default)]
    builders: Vec<Spanned<String>>,
    #[serde(default)]
    not_checkable: Option<Spanned<String>>,
    #[serde(default)]
    pending: Option<Spanned<String>>,
}

/// A page of the documentation, kept word for word under the ledger's folder.
#[derive(Debug, Clone)]
pub struct Page {
    pub id: String,
    pub file: PathBuf,
    pub title: String,
    pub note: Option<String>,
}

impl Page {
    /// Title and version note, e.g. "Build-only and Push-only Options (newer version)".
    pub fn shown(&self) -> String {
        match &self.note {
            Some(note) => format!("{} ({note})", self.title),
            None => self.title.clone(),
        }
    }
}

/// Why no scenario checks a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    /// Checkable here; what a scenario would have to do.
    Pending(String),
    /// Not checkable on this kind of machine, and why.
    NotCheckable(String),
}

/// Where an entry's field is in the ledger file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl<T> From<&Spanned<T>> for Position {
    fn from(s: &Spanned<T>) -> Self {
        Position {
            line: s.referenced.line(),
            column: s.referenced.column(),
        }
    }
}

/// One entry of the ledger.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub kind: ClaimKind,
    /// The page's id (claims only).
    pub page: Option<String>,
    pub section: String,
    /// The quoted sentence, or a contradiction's summary.
    pub text: String,
    /// A contradiction's claims.
    pub between: Vec<String>,
    pub topic: String,
    pub builders: Vec<String>,
    pub explanation: Option<Explanation>,
    /// Where the id is written.
    pub at: Position,
    /// Where the explanation is written, if any.
    pub explanation_at: Option<Position>,
}

/// The ledger, read and checked.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub path: PathBuf,
    /// The ledger's text (for errors pointing into it).
    pub text: String,
    pub pages: Vec<Page>,
    pub claims: Vec<Claim>,
}

impl Ledger {
    pub fn claim(&self, id: &str) -> Option<&Claim> {
        self.claims.iter().find(|c| c.id == id)
    }

    pub fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|p| p.id == id)
    }

    /// Reads the ledger at `path`; its pages are read relative to its folder.
    pub fn load(path: &Path) -> Result<Ledger, ReadLedgerError> {
        use std::io::Read;
        let read = |source| ReadLedgerError::Read {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_LEDGER_BYTES)
            .read_to_string(&mut text)
            .map_err(read)?;
        Ledger::parse(path, text)
    }

    /// Parses and checks ledger text; pages are read relative to `path`'s folder.
    pub fn parse(path: &Path, text: String) -> Result<Ledger, ReadLedgerError> {
        let shown = path.display().to_string();
        let invalid = |problems| ReadLedgerError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let file: LedgerFile = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let message = without_position(e.to_string().lines().next().unwrap_or(""));
            invalid(vec![LocatedProblem::at(
                &shown, &text, line, column, 1, message,
            )])
        })?;
        let mut check = Checker {
            path: &shown,
            text: &text,
            problems: Vec::new(),
        };
        let ledger = check.ledger(path, file);
        if check.problems.is_empty() {
            Ok(Ledger { text, ..ledger })
        } else {
            Err(invalid(check.problems))
        }
    }
}

struct Checker<'a> {
    path: &'a str,
    text: &'a str,
    problems: Vec<LocatedProblem>,
}

impl Checker<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, len: usize, message: String) {
        let p = Position::from(at);
        self.problems.push(LocatedProblem::at(
            self.path, self.text, p.line, p.column, len, message,
        ));
    }

    fn ledger(&mut self, path: &Path, file: LedgerFile) -> Ledger {
        if file.version.value != LEDGER_VERSION {
            let message = format!(
                "unsupported ledger version {} (this harness reads version {LEDGER_VERSION})",
                file.version.value
            );
            self.problem(&file.version, 1, message);
        }
        let root = path.parent().unwrap_or(Path::new("."));
        let mut pages = Vec::new();
        let mut page_texts = BTreeMap::new();
        for entry in file.pages {
            if let Some(text) = self.page(root, &entry, &pages) {
                page_texts.insert(entry.id.value.clone(), normalised(&text));
            }
            pages.push(Page {
                id: entry.id.value,
                file: root.join(&entry.file.value),
                title: entry.title,
                note: entry.note,
            });
        }
        let ids: Vec<&Spanned<String>> = file.claims.iter().map(|c| &c.id).collect();
        let mut seen: BTreeMap<&str, Position> = BTreeMap::new();
        for id in &ids {
            if !scenario::is_claim_id(&id.value) {
                let message = format!(
                    "`{}` is not a claim id: lowercase letters, digits and `-`, at most {} characters",
                    id.value,
                    scenario::MAX_CLAIM_ID
                );
                self.problem(id, id.value.len(), message);
            } else if let Some(first) = seen.get(id.value.as_str()) {
                let message = format!(
                    "claim id `{}` is defined twice (first at line {}, column {})",
                    id.value, first.line, first.column
                );
                self.problem(id, id.value.len(), message);
            } else {
                seen.insert(&id.value, Position::from(*id));
            }
        }
        let kinds: BTreeMap<&str, bool> = file
            .claims
            .iter()
            .map(|c| (c.id.value.as_str(), c.contradiction.is_some()))
            .collect();
        let mut claims = Vec::new();
        for entry in &file.claims {
            if let Some(claim) = self.claim(entry, &pages, &page_texts, &kinds) {
                claims.push(claim);
            }
        }
        Ledger {
            path: path.to_owned(),
            text: String::new(),
            pages,
            claims,
        }
    }

    /// Checks a page entry and reads its text.
    fn page(&mut self, root: &Path, entry: &PageEntry, earlier: &[Page]) -> Option<String> {
        if !scenario::is_claim_id(&entry.id.value) {
            let message = format!(
                "`{}` is not a page id: lowercase letters, digits and `-`",
                entry.id.value
            );
            self.problem(&entry.id, entry.id.value.len(), message);
        }
        if earlier.iter().any(|p| p.id == entry.id.value) {
            let message = format!("page id `{}` is defined twice", entry.id.value);
            self.problem(&entry.id, entry.id.value.len(), message);
        }
        if let Err(why) = scenario::check_relative_path(&entry.file.value) {
            let message = format!("page file: {why}");
            self.problem(&entry.file, entry.file.value.len(), message);
            return None;
        }
        match std::fs::read_to_string(root.join(&entry.file.value)) {
            Ok(text) => Some(text),
            Err(e) => {
                let message = format!(
                    "cannot read page file {}: {e}",
                    root.join(&entry.file.value).display()
                );
                self.problem(&entry.file, entry.file.value.len(), message);
                None
            }
        }
    }

    fn claim(
        &mut self,
        entry: &ClaimEntry,
        pages: &[Page],
        page_texts: &BTreeMap<String, String>,
        kinds: &BTreeMap<&str, bool>,
    ) -> Option<Claim> {
        let id = &entry.id.value;
        let before = self.problems.len();
        if !TOPICS.contains(&entry.topic.value.as_str()) {
            let message = format!(
                "unknown topic `{}` (known: {})",
                entry.topic.value,
                TOPICS.join(", ")
            );
            self.problem(&entry.topic, entry.topic.value.len(), message);
        }
        for builder in &entry.builders {
            if !scenario::KNOWN_BUILDERS.contains(&builder.value.as_str()) {
                let message = format!(
                    "unknown builder `{}` (known: {})",
                    builder.value,
                    scenario::KNOWN_BUILDERS.join(", ")
                );
                self.problem(builder, builder.value.len(), message);
            }
        }
        let explanation = match (&entry.pending, &entry.not_checkable) {
            (Some(p), Some(_)) => {
                let message =
                    format!("claim `{id}` is both `pending` and `not_checkable`: say one");
                self.problem(p, 7, message);
                None
            }
            (Some(p), None) => Some((Explanation::Pending(p.value.clone()), Position::from(p))),
            (None, Some(n)) => Some((
                Explanation::NotCheckable(n.value.clone()),
                Position::from(n),
            )),
            (None, None) => None,
        };
        if let Some((Explanation::Pending(reason) | Explanation::NotCheckable(reason), _)) =
            &explanation
        {
            if reason.trim().is_empty() {
                let spanned = entry
                    .pending
                    .as_ref()
                    .or(entry.not_checkable.as_ref())
                    .unwrap();
                self.problem(spanned, 1, format!("claim `{id}`: the reason is empty"));
            }
        }
        let (kind, text, between, page) = match (&entry.quote, &entry.contradiction) {
            (Some(quote), None) => {
                let page = match &entry.page {
                    None => {
                        let message =
                            format!("claim `{id}` quotes a page but names none (`page:`)");
                        self.problem(&entry.id, id.len(), message);
                        None
                    }
                    Some(page) if !pages.iter().any(|p| p.id == page.value) => {
                        let known: Vec<&str> = pages.iter().map(|p| p.id.as_str()).collect();
                        let message = format!(
                            "unknown page `{}` (pages: {})",
                            page.value,
                            known.join(", ")
                        );
                        self.problem(page, page.value.len(), message);
                        None
                    }
                    Some(page) => Some(page.value.clone()),
                };
                if let Some(text) = page.as_ref().and_then(|p| page_texts.get(p)) {
                    let wanted = normalised(&quote.value);
                    if wanted.is_empty() || !text.contains(&wanted) {
                        let message = format!(
                            "the quote of claim `{id}` is not in page `{}` word for word (spaces and line breaks aside)",
                            page.as_deref().unwrap_or_default()
                        );
                        self.problem(quote, 1, message);
                    }
                }
                if entry.section.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    let message = format!("claim `{id}` names no `section` of its page");
                    self.problem(&entry.id, id.len(), message);
                }
                (ClaimKind::Claim, quote.value.clone(), Vec::new(), page)
            }
            (None, Some(others)) => {
                if others.len() < 2 {
                    let message = format!(
                        "contradiction `{id}` names {} claim(s): a contradiction is between two or more",
                        others.len()
                    );
                    self.problem(&entry.id, id.len(), message);
                }
                for other in others {
                    match kinds.get(other.value.as_str()) {
                        None => {
                            let message = format!(
                                "contradiction `{id}` names claim `{}`, which the ledger does not define",
                                other.value
                            );
                            self.problem(other, other.value.len(), message);
                        }
                        Some(true) => {
                            let message = format!(
                                "contradiction `{id}` names `{}`, another contradiction: name the claims",
                                other.value
                            );
                            self.problem(other, other.value.len(), message);
                        }
                        Some(false) => {}
                    }
                }
                let summary = entry.summary.clone().unwrap_or_default();
                if summary.trim().is_empty() {
                    let message =
                        format!("contradiction `{id}` needs a `summary` of what disagrees");
                    self.problem(&entry.id, id.len(), message);
                }
                if let Some(page) = &entry.page {
                    let message =
                        format!("contradiction `{id}` names a page: its claims name theirs");
                    self.problem(page, 4, message);
                }
                let between = others.iter().map(|o| o.value.clone()).collect();
                (ClaimKind::Contradiction, summary, between, None)
            }
            (Some(_), Some(_)) => {
                let message = format!(
                    "claim `{id}` has both `quote` and `contradiction`: a claim quotes one page, a contradiction names claims"
                );
                self.problem(&entry.id, id.len(), message);
                return None;
            }
            (None, None) => {
                let message = format!(
                    "claim `{id}` has neither `quote` (a sentence of a page) nor `contradiction` (claims that disagree)"
                );
                self.problem(&entry.id, id.len(), message);
                return None;
            }
        };
        if self.problems.len() > before {
            return None;
        }
        let (explanation, explanation_at) = match explanation {
            Some((e, at)) => (Some(e), Some(at)),
            None => (None, None),
        };
        Some(Claim {
            id: id.clone(),
            kind,
            page,
            section: entry.section.clone().unwrap_or_default(),
            text,
            between,
            topic: entry.topic.value.clone(),
            builders: entry.builders.iter().map(|b| b.value.clone()).collect(),
            explanation,
            at: Position::from(&entry.id),
            explanation_at,
        })
    }
}

/// The parser's message without the `error: line L column C: ` it starts with (the problem
/// says where itself).
fn without_position(message: &str) -> String {
    let rest = message.strip_prefix("error: ").unwrap_or(message);
    match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((position, rest)) if position.contains(" column ") => rest.to_owned(),
        _ => rest.to_owned(),
    }
}

/// Text with every run of white space made one space, trimmed: a quote is looked for in its
/// page this way, so line breaks and indentation in either do not matter.
pub fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
