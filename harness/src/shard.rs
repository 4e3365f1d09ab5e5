//! Splitting a matrix over CI runners (`--shard K/N`) and checking that shard runs merge back
//! into the whole.
//!
//! The split is deterministic: the same list of names, weights and N give the same shards on
//! every runner. Longest-processing-time first: items by weight, heaviest first (ties by name),
//! each to the shard with the least weight so far (ties: the fewest items, then the lowest K).
//! Weights are the plans' median durations in a baseline or an earlier run when one is given
//! (plans it does not know weigh its mean), 1 per plan otherwise (the split by name: round
//! robin over the sorted names); a plan the scenario skips weighs 0 and goes to the shard with
//! the fewest items.
//!
//! Each shard's run directory holds a [`Record`] (`shard.json`): K/N, the fingerprint of the
//! full list and of the split, and the shard's own items. [`check_merge`] refuses runs that do
//! not make one whole: two shards with the same K, a shard missing, shards of different lists
//! or splits, a plan in two shards.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::{ShardMergeError, ShardRecordError};
use report::runs::Run;

/// The record's file name in a shard's run directory.
pub const FILE: &str = "shard.json";

/// Shard K of N (1 ≤ K ≤ N), as `--shard K/N` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(value: &str) -> Result<Shard, String> {
        let parsed = value.split_once('/').and_then(|(k, n)| {
            Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?))
        });
        match parsed {
            Some((index, count)) if index >= 1 && index <= count => Ok(Shard { index, count }),
            _ => Err(format!(
                "`{value}` is not a shard K/N with 1 ≤ K ≤ N (e.g. `--shard 2/4`)"
            )),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a split was balanced by, and the weight of each item.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// `plan name`, or `durations of <run>`.
    pub balanced_by: String,
    /// Median duration per plan (ms); empty when split by name.
    pub durations: BTreeMap<String, u64>,
}

impl Weights {
    /// Split by name: every plan that runs weighs the same.
    pub fn by_name() -> Weights {
        Weights {
            balanced_by: "plan name".to_owned(),
            durations: BTreeMap::new(),
        }
    }

    /// The median duration of each plan over its repetitions in a finished run or baseline.
    pub fn of_run(run: &Run) -> Weights {
        let mut samples: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for r in &run.results {
            samples.entry(&r.test).or_default().push(r.duration_ms);
        }
        let durations = samples
            .into_iter()
            .map(|(test, mut ms)| {
                ms.sort_unstable();
                (test.to_owned(), ms[ms.len() / 2])
            })
            .collect();
        Weights {
            balanced_by: format!("durations of {}", run.source.display()),
            durations,
        }
    }

    /// The weight of one plan: 0 when skipped, its duration when known, else the mean known
    /// duration (1 when splitting by name).
    pub fn of(&self, name: &str, skipped: bool) -> u64 {
        if skipped {
            return 0;
        }
        if self.durations.is_empty() {
            return 1;
        }
        self.durations.get(name).copied().unwrap_or_else(|| {
            let known: u64 = self.durations.values().sum();
            (known / self.durations.len() as u64).max(1)
        })
    }
}

/// A list of named items cut into N shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Each shard's item names (shard K is `shards[K - 1]`), sorted.
    pub shards: Vec<Vec<String>>,
    /// Each shard's summed weight.
    pub loads: Vec<u64>,
    /// The fingerprint of the full list of names (sorted, deduplicated).
    pub list_fingerprint: String,
    /// The fingerprint of the assignment: equal for every shard of one split.
    pub split_fingerprint: String,
}

/// Cuts the items (name, weight) into `count` shards, longest processing time first.
pub fn split(items: &[(String, u64)], count: u32) -> Split {
    let count = count.max(1) as usize;
    let mut unique: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, weight) in items {
        unique.insert(name, *weight);
    }
    let mut order: Vec<(&str, u64)> = unique.iter().map(|(n, w)| (*n, *w)).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut shards: Vec<Vec<String>> = vec![Vec::new(); count];
    let mut loads = vec![0u64; count];
    for (name, weight) in order {
        // Items weighing nothing (skipped plans) cost no time: spread them by count.
        let k = (0..count)
            .min_by_key(|&k| match weight {
                0 => (0, shards[k].len(), k),
                _ => (loads[k], shards[k].len(), k),
            })
            .expect("at least one shard");
        loads[k] += weight;
        shards[k].push(name.to_owned());
    }
    for shard in &mut shards {
        shard.sort();
    }
    let list_fingerprint = fingerprint(unique.keys().copied());
    let split_fingerprint = fingerprint(
        shards
            .iter()
            .enumerate()
            .flat_map(|(k, names)| names.iter().map(move |n| format!("{}\t{n}", k + 1)))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    );
    Split {
        shards,
        loads,
        list_fingerprint,
        split_fingerprint,
    }
}

fn fingerprint<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for line in lines {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// What a shard's run directory records about it (`shard.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `K/N`.
    pub shard: String,
    pub index: u32,
    pub count: u32,
    /// What was split: `plans` or `mutants`.
    pub items: String,
    /// How many items the full list holds, and its fingerprint.
    pub total: usize,
    pub list_fingerprint: String,
    /// The fingerprint of the whole assignment (the same in every shard of one split).
    pub split_fingerprint: String,
    /// `plan name` or `durations of <run>`.
    pub balanced_by: String,
    /// The shard's summed weight (ms when balanced by durations).
    pub expected_load: u64,
    /// This shard's items, sorted.
    pub names: Vec<String>,
}

impl Record {
    pub fn of(split: &Split, shard: Shard, items: &str, balanced_by: &str) -> Record {
        let k = shard.index as usize - 1;
        Record {
            shard: shard.to_string(),
            index: shard.index,
            count: shard.count,
            items: items.to_owned(),
            total: split.shards.iter().map(Vec::len).sum(),
            list_fingerprint: split.list_fingerprint.clone(),
            split_fingerprint: split.split_fingerprint.clone(),
            balanced_by: balanced_by.to_owned(),
            expected_load: split.loads[k],
            names: split.shards[k].clone(),
        }
    }

    /// Writes `shard.json` into a run directory (made if missing).
    pub fn write(&self, dir: &Path) -> Result<(), ShardRecordError> {
        let path = dir.join(FILE);
        let write_err = |source| ShardRecordError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let json = serde_json::to_vec_pretty(self).expect("a shard record serializes");
        std::fs::write(&path, json).map_err(write_err)
    }

    /// The record of a run directory, `None` for a run that is no shard (or a baseline file).
    pub fn read(run: &Path) -> Result<Option<Record>, ShardRecordError> {
        let path = run.join(FILE);
        if !run.is_dir() || !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ShardRecordError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ShardRecordError::Parse {
                path,
                message: e.to_string(),
            })
    }
}

/// The plans of shard `shard` of `plans`, in their order, and its record.
pub fn select_plans(
    plans: Vec<crate::plan::Plan>,
    shard: Shard,
    weights: &Weights,
) -> (Vec<crate::plan::Plan>, Record) {
    let items: Vec<(String, u64)> = plans
        .iter()
        .map(|p| {
            (
                p.test_name.clone(),
                weights.of(&p.test_name, p.skip.is_some()),
            )
        })
        .collect();
    let split = split(&items, shard.count);
    let record = Record::of(&split, shard, "plans", &weights.balanced_by);
    let mine: BTreeSet<&str> = record.names.iter().map(String::as_str).collect();
    let chosen = plans
        .into_iter()
        .filter(|p| mine.contains(p.test_name.as_str()))
        .collect();
    (chosen, record)
}

/// Checks that runs merged into one report make one whole: none is a shard, or they are all
/// the shards of one split, each once, no plan in two of them.
pub fn check_merge(runs: &[Run]) -> Result<(), ShardMergeError> {
    let records = runs
        .iter()
        .map(|run| Ok((run, Record::read(&run.source)?)))
        .collect::<Result<Vec<_>, ShardRecordError>>()?;
    check_records(&records)
}

/// Refuses a run that is one shard of several where a whole matrix is judged (`compare`, a
/// nightly's baseline): the other shards' plans would read as removed.
pub fn check_whole(run: &Run) -> Result<(), ShardMergeError> {
    match Record::read(&run.source)? {
        Some(record) if record.count > 1 => Err(ShardMergeError::Partial {
            run: run.source.display().to_string(),
            shard: record.shard,
        }),
        _ => Ok(()),
    }
}

fn check_records(records: &[(&Run, Option<Record>)]) -> Result<(), ShardMergeError> {
    let name = |run: &Run| run.source.display().to_string();
    let sharded: Vec<(&Run, &Record)> = records
        .iter()
        .filter_map(|(run, record)| record.as_ref().map(|r| (*run, r)))
        .collect();
    let Some(&(first_run, first)) = sharded.first() else {
        return Ok(());
    };
    if let Some((plain, _)) = records.iter().find(|(_, record)| record.is_none()) {
        return Err(ShardMergeError::NotAShard {
            run: name(plain),
            shard_run: name(first_run),
            shard: first.shard.clone(),
        });
    }
    let mut by_index: BTreeMap<u32, &Run> = BTreeMap::new();
    for &(run, record) in &sharded {
        if record.list_fingerprint != first.list_fingerprint || record.count != first.count {
            return Err(ShardMergeError::DifferentLists {
                a: name(first_run),
                a_shard: first.shard.clone(),
                a_total: first.total,
                b: name(run),
                b_shard: record.shard.clone(),
                b_total: record.total,
            });
        }
        if record.split_fingerprint != first.split_fingerprint {
            return Err(ShardMergeError::DifferentSplits {
                a: name(first_run),
                a_by: first.balanced_by.clone(),
                b: name(run),
                b_by: record.balanced_by.clone(),
            });
        }
        if let Some(other) = by_index.insert(record.index, run) {
            return Err(ShardMergeError::SameShard {
                shard: record.shard.clone(),
                a: name(other),
                b: name(run),
            });
        }
    }
    if let Some(missing) = (1..=first.count).find(|k| !by_index.contains_key(k)) {
        return Err(ShardMergeError::Missing {
            shard: format!("{missing}/{}", first.count),
            given: sharded
                .iter()
                .map(|(run, r)| format!("{} ({})", name(run), r.shard))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    // Every plan in one shard: by what the shards ran, not only by what they were given.
    let mut seen: BTreeMap<&str, &Run> = BTreeMap::new();
    for &(run, record) in &sharded {
        let mine: BTreeSet<&str> = record.names.iter().map(String::as_str).collect();
        let ran: BTreeSet<&str> = run.results.iter().map(|r| r.test.as_str()).collect();
        for plan in ran {
            if record.items == "plans" && !mine.contains(plan) {
                return Err(ShardMergeError::Foreign {
                    plan: plan.to_owned(),
                    run: name(run),
                    shard: record.shard.clone(),
                });
            }
            if let Some(other) = seen.insert(plan, run) {
                return Err(ShardMergeError::Overlap {
                    plan: plan.to_owned(),
                    a: name(other),
                    b: name(run),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(weights: &[(&str, u64)]) -> Vec<(String, u64)> {
        weights.iter().map(|(n, w)| (n.to_string(), *w)).collect()
    }

    fn plan_names(n: usize) -> Vec<(String, u64)> {
        (0..n).map(|i| (format!("w{:02}::s::b", i), 1)).collect()
    }

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["0/2", "3/2", "2", "a/b", "1/0", ""] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn every_item_in_exactly_one_shard() {
        let all = plan_names(37);
        for n in 1..=8 {
            let split = split(&all, n);
            assert_eq!(split.shards.len(), n as usize);
            let mut seen: Vec<&String> = split.shards.iter().flatten().collect();
            seen.sort();
            let mut want: Vec<&String> = all.iter().map(|(n, _)| n).collect();
            want.sort();
            assert_eq!(seen, want, "N = {n}");
        }
    }

    #[test]
    fn by_name_is_round_robin_over_sorted_names() {
        let split = split(
            &items(&[("c", 1), ("a", 1), ("d", 1), ("b", 1), ("e", 1)]),
            2,
        );
        assert_eq!(split.shards, vec![vec!["a", "c", "e"], vec!["b", "d"]]);
    }

    #[test]
    fn deterministic_whatever_the_input_order() {
        let mut all = items(&[("a", 5), ("b", 5), ("c", 3), ("d", 9), ("e", 1), ("f", 3)]);
        let one = split(&all, 3);
        all.reverse();
        let two = split(&all, 3);
        assert_eq!(one, two);
        // Ties by name: a before b at weight 5, c before f at 3.
        assert_eq!(
            one.shards,
            vec![vec!["d"], vec!["a", "c", "e"], vec!["b", "f"]]
        );
        assert_eq!(one.loads, vec![9, 9, 8]);
    }

    #[test]
    fn balanced_by_durations_within_the_longest_item() {
        // 30 plans of 1–30 s: LPT keeps every shard within the longest plan of the mean.
        let all: Vec<(String, u64)> = (1..=30).map(|i| (format!("p{i:02}"), i * 1000)).collect();
        let total: u64 = all.iter().map(|(_, w)| w).sum();
        for n in [2u32, 3, 4] {
            let split = split(&all, n);
            let (min, max) = (
                split.loads.iter().min().unwrap(),
                split.loads.iter().max().unwrap(),
            );
            assert!(max - min <= 1000, "N = {n}: {:?}", split.loads);
            assert_eq!(split.loads.iter().sum::<u64>(), total);
        }
        // By name the same plans would leave 2 shards 15 s apart.
        let by_name: Vec<(String, u64)> = all.iter().map(|(n, _)| (n.clone(), 1)).collect();
        let naive = split(&by_name, 2);
        let naive_loads: Vec<u64> = naive
            .shards
            .iter()
            .map(|s| {
                s.iter()
                    .map(|n| all.iter().find(|(m, _)| m == n).unwrap().1)
                    .sum()
            })
            .collect();
        assert_eq!(naive_loads, vec![225_000, 240_000]);
    }

    #[test]
    fn skipped_plans_weigh_nothing_and_spread_by_count() {
        let weights = Weights {
            balanced_by: "durations of x".into(),
            durations: [("a".to_owned(), 4000), ("b".to_owned(), 2000)].into(),
        };
        assert_eq!(weights.of("a", true), 0);
        assert_eq!(weights.of("a", false), 4000);
        assert_eq!(
            weights.of("new", false),
            3000,
            "unknown plans weigh the mean"
        );
        assert_eq!(Weights::by_name().of("x", false), 1);
        let split = split(&items(&[("a", 4000), ("b", 2000), ("s1", 0), ("s2", 0)]), 2);
        assert_eq!(split.shards, vec![vec!["a", "s1"], vec!["b", "s2"]]);
    }

    #[test]
    fn fingerprints_name_the_list_and_the_split() {
        let all = plan_names(10);
        let a = split(&all, 2);
        let b = split(&all, 3);
        assert_eq!(a.list_fingerprint, b.list_fingerprint);
        assert_ne!(a.split_fingerprint, b.split_fingerprint);
        let fewer = split(&all[1..], 2);
        assert_ne!(a.list_fingerprint, fewer.list_fingerprint);
        assert!(a.list_fingerprint.starts_with("sha256:"));
    }

    // ---- merging -------------------------------------------------------------------------

    fn run(name: &str, tests: &[&str]) -> Run {
        let results = tests
            .iter()
            .map(|t| {
                let mut r: model::result::ScenarioResult = serde_json::from_value(
                    serde_json::json!({"test": t, "scenario": "s", "file": "f", "builder": "b",
                        "profile": "offline", "status": "pass", "reason": null, "images": {},
                        "steps": [], "captures": {}, "assertions": [], "duration_ms": 0}),
                )
                .expect("a minimal result");
                r.test = t.to_string();
                r
            })
            .collect();
        Run {
            id: name.to_owned(),
            source: name.into(),
            results,
        }
    }

    fn shards(all: &[(String, u64)], n: u32) -> Vec<(Run, Option<Record>)> {
        let split = split(all, n);
        (1..=n)
            .map(|k| {
                let record = Record::of(&split, Shard { index: k, count: n }, "plans", "plan name");
                let names: Vec<&str> = record.names.iter().map(String::as_str).collect();
                (run(&format!("shard-{k}"), &names), Some(record))
            })
            .collect()
    }

    fn check(runs: &[(Run, Option<Record>)]) -> Result<(), ShardMergeError> {
        let refs: Vec<(&Run, Option<Record>)> = runs.iter().map(|(r, s)| (r, s.clone())).collect();
        check_records(&refs)
    }

    #[test]
    fn merges_all_shards_and_plain_runs() {
        let all = plan_names(7);
        check(&shards(&all, 3)).expect("three shards of one split");
        check(&[(run("a", &["x"]), None), (run("b", &["y"]), None)]).expect("no shards");
    }

    #[test]
    fn refuses_two_shards_with_the_same_k() {
        let all = plan_names(6);
        let mut runs = shards(&all, 2);
        let mut again = runs[0].clone();
        again.0.source = "shard-1-again".into();
        again.0.results.clear();
        runs.push(again);
        let err = check(&runs).unwrap_err().to_string();
        assert!(
            err.contains("shard 1/2") && err.contains("shard-1-again"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_missing_shard() {
        let all = plan_names(6);
        let mut runs = shards(&all, 3);
        runs.remove(1);
        let err = check(&runs).unwrap_err().to_string();
        assert!(err.contains("shard 2/3 is missing"), "{err}");
    }

    #[test]
    fn refuses_overlapping_plans() {
        let all = plan_names(6);
        let mut runs = shards(&all, 2);
        let stray = runs[0].0.results[0].clone();
        let plan = stray.test.clone();
        runs[1].0.results.push(stray);
        runs[1].1.as_mut().unwrap().names.push(plan.clone());
        let err = check(&runs).unwrap_err().to_string();
        assert!(err.contains(&format!("plan {plan} is in both")), "{err}");
        // A result the shard was not given is refused too.
        runs[1].1.as_mut().unwrap().names.pop();
        let err = check(&runs).unwrap_err().to_string();
        assert!(
            err.contains(&plan) && err.contains("not one of shard 2/2's"),
            "{err}"
        );
    }

    #[test]
    fn refuses_shards_of_different_plan_lists_or_splits() {
        let mut runs = shards(&plan_names(6), 2);
        runs[1] = shards(&plan_names(7), 2).remove(1);
        let err = check(&runs).unwrap_err().to_string();
        assert!(
            err.contains("different plan lists") && err.contains("6 plans"),
            "{err}"
        );
        let mut runs = shards(&plan_names(6), 2);
        runs[1] = shards(&plan_names(6), 3).remove(1);
        assert!(check(&runs).is_err());
        let weighted: Vec<(String, u64)> = plan_names(6)
            .into_iter()
            .enumerate()
            .map(|(i, (n, _))| (n, i as u64))
            .collect();
        let mut runs = shards(&plan_names(6), 2);
        runs[1] = shards(&weighted, 2).remove(1);
        let err = check(&runs).unwrap_err().to_string();
        assert!(err.contains("split differently"), "{err}");
    }

    #[test]
    fn refuses_a_plain_run_among_shards() {
        let mut runs = shards(&plan_names(4), 2);
        runs.push((run("plain", &["z"]), None));
        let err = check(&runs).unwrap_err().to_string();
        assert!(err.contains("plain") && err.contains("no shard"), "{err}");
    }

    #[test]
    fn a_record_round_trips_through_its_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        let split = split(&plan_names(5), 2);
        let record = Record::of(&split, Shard { index: 2, count: 2 }, "plans", "plan name");
        record.write(dir.path()).unwrap();
        assert_eq!(Record::read(dir.path()).unwrap(), Some(record));
        let mut only = run("x", &[]);
        only.source = dir.path().to_owned();
        let err = check_whole(&only).unwrap_err().to_string();
        assert!(err.contains("only shard 2/2"), "{err}");
    }
}
