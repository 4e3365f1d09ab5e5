//! What `fixtures/images/build-images.sh` prunes (the end of a cold build, of a mutants build,
//! and `--prune`): this checkout's keyed images of older recipes (the `conformance.checkout`
//! label), never another checkout's, never the current recipe's, never mutants built FROM a
//! recipe still kept (another checkout with the same recipes may be running them).
//!
//! Needs the Docker daemon and the offline images (the build is run first: hot, it does
//! nothing); nextest runs it in the `docker` test group.

use std::process::Command;

mod common;

use common::docker::root;

/// The docker CLI on the build daemon.
fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

fn script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("fixtures/images/build-images.sh"))
        .args(args)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "build-images.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown when the test fails.
    eprintln!(
        "build-images.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Whether a tag names an image on the build daemon.
fn present(tag: &str) -> bool {
    docker(&["image", "inspect", "-f", "{{.Id}}", tag])
        .status
        .success()
}

/// The build daemon's tags of one recipe key.
fn keyed_tags(key: &str) -> Vec<String> {
    let out = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|t| t.ends_with(&format!(":offline-{key}")))
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}

/// Builds a one-layer image FROM `base` under `tag` with these labels (and one that makes it
/// an image of its own).
fn labelled_image(base: &str, tag: &str, labels: &[(&str, &str)]) {
    let mut args = vec!["build".to_owned(), "-q".to_owned()];
    for (k, v) in labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    args.extend(["-t".to_owned(), tag.to_owned(), "-".to_owned()]);
    let mut child = Command::new("docker")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker build runs");
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "FROM {base}\nLABEL org.conformance.prune-test={tag}"
    )
    .unwrap();
    assert!(child.wait().unwrap().success(), "docker build {tag}");
}

#[test]
fn this_checkouts_older_images_are_pruned_another_checkouts_never() {
    let key = script(&[]);
    let mutants_key = script(&["--mutants-key"]);
    let base = format!("conformance-offline/busybox:offline-{key}");
    assert!(present(&base), "the offline images are built");
    let current = keyed_tags(&key);

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("fixtures/images")).unwrap();
    std::fs::write(other.join("fixtures/images/build-images.sh"), "").unwrap();
    let other = other.to_str().unwrap().to_owned();
    // This checkout, as the script names it (its physical path).
    let ours = std::fs::canonicalize(root())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // Older recipes' keys no cache file names (random: this test's own).
    let old = |n: u8| format!("{:x}{n:02x}", uuid::Uuid::new_v4().simple())[18..].to_owned();
    let old_recipe = old(0);
    let mutant = |k: &str| format!("conformance-offline/mutant-prune-test:offline-{k}");
    // (tag, checkout, its recipe label, its mutants label, whether it stays)
    let cases: Vec<(String, &String, String, Option<String>, bool)> = vec![
        // This checkout's reference image of an older recipe goes; another checkout's stays.
        (
            format!("conformance-offline/busybox:offline-{old_recipe}"),
            &ours,
            old_recipe.clone(),
            None,
            false,
        ),
        {
            let k = old(1);
            (
                format!("conformance-offline/busybox:offline-{k}"),
                &other,
                k,
                None,
                true,
            )
        },
        // Mutants of another mutants key built FROM an older recipe: this checkout's go,
        // another checkout's stay.
        (
            mutant(&old(2)),
            &ours,
            old_recipe.clone(),
            Some(old(2)),
            false,
        ),
        (
            mutant(&old(3)),
            &other,
            old_recipe.clone(),
            Some(old(3)),
            true,
        ),
        // Mutants built FROM the current recipe under another mutants key (another checkout
        // with the same recipes and other mutants may be running them) stay.
        (mutant(&old(4)), &ours, key.clone(), Some(old(4)), true),
    ];
    for (tag, checkout, recipe, mutants, _) in &cases {
        let mut labels = vec![
            ("conformance.checkout", checkout.as_str()),
            ("conformance.recipe", recipe.as_str()),
        ];
        if let Some(k) = mutants {
            labels.extend([
                ("conformance.mutants", k.as_str()),
                ("conformance.mutant", "prune-test"),
            ]);
        }
        labelled_image(&base, tag, &labels);
        assert!(present(tag), "{tag} built");
    }

    script(&["--prune"]);

    let found: Vec<bool> = cases.iter().map(|(tag, ..)| present(tag)).collect();
    // The survivors are this test's: removed before anything is asserted.
    for ((tag, ..), found) in cases.iter().zip(&found) {
        if *found {
            docker(&["rmi", "-f", tag]);
        }
    }
    for ((tag, _, _, _, expected), found) in cases.iter().zip(&found) {
        let why = if *expected {
            "an image that is not this script's to prune (another checkout's, or a mutant of a kept recipe) was pruned"
        } else {
            "this checkout's image of an older recipe stayed"
        };
        assert_eq!(found, expected, "{tag}: {why}");
    }
    assert_eq!(
        keyed_tags(&key),
        current,
        "the current recipe's images all stay"
    );
    assert!(
        keyed_tags(&mutants_key).len() >= 40,
        "the current mutants' images stay"
    );
}
