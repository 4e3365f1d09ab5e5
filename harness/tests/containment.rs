//! Containment: what a plugin wrote is read inside its workspace only. A path or symlink that
//! leads out is a Fail naming it and where it leads, never read; a symlink that stays inside
//! is followed; no message quotes a file's content.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::hostile::SECRET;
use common::{check_tarballs, layer, render_outcomes, tar_bytes, tarball_assertion, Image};
use harness::runner::json_capture;
use model::result::Status;
use oci::archive::Archives;
use oci::errors::{ArchiveReadError, WorkspaceReadError};
use oci::workspace;

/// A workspace, and next to it (outside) a directory holding a secret host file.
struct Setup {
    _root: tempfile::TempDir,
    workspace: std::path::PathBuf,
    secret_dir: std::path::PathBuf,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let workspace = root.path().join("workspace");
    let secret_dir = root.path().join("host");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&secret_dir).unwrap();
    // A valid JSON file and a tarball-looking file, both holding the secret.
    std::fs::write(
        secret_dir.join("secret.json"),
        format!(r#"{{"containerimage.config.digest": "{SECRET}"}}"#),
    )
    .unwrap();
    std::fs::write(secret_dir.join("secret.tar"), SECRET.repeat(40)).unwrap();
    Setup {
        workspace,
        secret_dir,
        _root: root,
    }
}

fn outside(err: &WorkspaceReadError) -> String {
    assert!(
        matches!(err, WorkspaceReadError::Outside { .. }),
        "not an escape: {err:?}"
    );
    assert!(!err.is_harness_error());
    let message = err.to_string();
    assert!(!message.contains("SECRET"), "{message}");
    message
}

#[test]
fn a_tarball_symlinked_to_a_host_file_is_refused_and_named() {
    let s = setup();
    symlink("/etc/shadow", s.workspace.join("image.tar")).unwrap();
    let err = workspace::open_file(&s.workspace, "image.tar").unwrap_err();
    assert_eq!(
        outside(&err),
        "image.tar is a symlink to /etc/shadow, outside the workspace"
    );
}

#[tokio::test]
async fn a_tarball_symlinked_out_is_a_fail_of_the_tarball_assertion_without_its_content() {
    let s = setup();
    let target = s.secret_dir.join("secret.tar");
    symlink(&target, s.workspace.join("image.tar")).unwrap();
    let outcomes = check_tarballs(&s.workspace, vec![tarball_assertion("image.tar")]).await;
    let text = render_outcomes(&outcomes);
    assert!(!text.contains("SECRET"), "{text}");
    assert_eq!(outcomes.len(), 1, "{text}");
    assert_eq!(outcomes[0].status, Status::Fail);
    assert_eq!(
        outcomes[0].found,
        format!(
            "image.tar is a symlink to {}, outside the workspace",
            target.display()
        )
    );
    // The capture of a config digest reads through the same door.
    let mut archives = Archives::new(&s.workspace);
    let err = archives.get("image.tar").as_ref().unwrap_err();
    assert!(matches!(err, ArchiveReadError::Workspace(_)) && !err.is_harness_error());
}

#[test]
fn a_json_capture_symlinked_to_a_host_file_is_refused_and_its_secret_never_read() {
    let s = setup();
    symlink(
        s.secret_dir.join("secret.json"),
        s.workspace.join("metadata.json"),
    )
    .unwrap();
    let err = workspace::read_file(&s.workspace, "metadata.json", 1 << 20).unwrap_err();
    assert_eq!(
        outside(&err),
        format!(
            "metadata.json is a symlink to {}, outside the workspace",
            s.secret_dir.join("secret.json").display()
        )
    );
}

#[test]
fn the_json_capture_fails_on_an_escape_and_reads_inside_files() {
    let s = setup();
    symlink(
        s.secret_dir.join("secret.json"),
        s.workspace.join("metadata.json"),
    )
    .unwrap();
    let missing = json_capture(
        &s.workspace,
        "metadata.json",
        "/containerimage.config.digest",
    )
    .unwrap_err();
    assert_eq!(missing.status, Status::Fail);
    assert!(!missing.reason.contains("SECRET"), "{}", missing.reason);
    assert!(missing
        .reason
        .starts_with("metadata.json is a symlink to /"));

    std::fs::write(
        s.workspace.join("inside.json"),
        r#"{"containerimage.config.digest": "sha256:abc"}"#,
    )
    .unwrap();
    symlink("inside.json", s.workspace.join("link.json")).unwrap();
    assert_eq!(
        json_capture(&s.workspace, "link.json", "/containerimage.config.digest").unwrap(),
        "sha256:abc"
    );
    // Not JSON: where, never what.
    std::fs::write(s.workspace.join("bad.json"), SECRET).unwrap();
    let missing = json_capture(&s.workspace, "bad.json", "/x").unwrap_err();
    assert_eq!(
        (missing.status, missing.reason.as_str()),
        (
            Status::Fail,
            "bad.json is not valid json: syntax error at line 1 column 1"
        )
    );
}

#[test]
fn a_relative_symlink_that_climbs_out_is_refused() {
    let s = setup();
    symlink("../host/secret.json", s.workspace.join("metadata.json")).unwrap();
    let err = workspace::read_file(&s.workspace, "metadata.json", 1 << 20).unwrap_err();
    assert_eq!(
        outside(&err),
        "metadata.json is a symlink to ../host/secret.json, outside the workspace"
    );
}

#[test]
fn a_symlinked_directory_on_the_way_out_is_named() {
    let s = setup();
    symlink(&s.secret_dir, s.workspace.join("out")).unwrap();
    let err = workspace::read_file(&s.workspace, "out/secret.json", 1 << 20).unwrap_err();
    assert_eq!(
        outside(&err),
        format!(
            "out/secret.json goes through out, a symlink to {}, outside the workspace",
            s.secret_dir.display()
        )
    );
}

#[test]
fn dot_dot_and_absolute_paths_are_refused() {
    let s = setup();
    std::fs::create_dir_all(s.workspace.join("sub")).unwrap();
    let err =
        workspace::read_file(&s.workspace, "sub/../../host/secret.json", 1 << 20).unwrap_err();
    assert_eq!(
        outside(&err),
        "sub/../../host/secret.json leads through `..`, outside the workspace"
    );
    let absolute = s.secret_dir.join("secret.json");
    let err = workspace::read_file(&s.workspace, &absolute.to_string_lossy(), 1 << 20).unwrap_err();
    assert_eq!(
        outside(&err),
        format!(
            "{} is an absolute path, outside the workspace",
            absolute.display()
        )
    );
}

#[tokio::test]
async fn a_symlink_that_stays_inside_the_workspace_is_followed() {
    let s = setup();
    let image = Image::new(vec![layer(&[("hello", b"hi\n")])]);
    std::fs::create_dir_all(s.workspace.join("build")).unwrap();
    std::fs::write(
        s.workspace.join("build/out.tar"),
        tar_bytes(&image.docker_save()),
    )
    .unwrap();
    symlink("build/out.tar", s.workspace.join("image.tar")).unwrap();
    // `..` that stays inside is fine too.
    symlink("../build/out.tar", s.workspace.join("build/again.tar")).unwrap();
    let outcomes = check_tarballs(
        &s.workspace,
        vec![
            tarball_assertion("image.tar"),
            tarball_assertion("build/again.tar"),
            tarball_assertion("build/../image.tar"),
        ],
    )
    .await;
    assert!(
        outcomes.iter().all(|o| o.status == Status::Pass),
        "{}",
        render_outcomes(&outcomes)
    );
}

#[test]
fn a_fifo_a_directory_a_loop_and_a_dangling_link_are_not_read() {
    let s = setup();
    let fifo = s.workspace.join("image.tar");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Opening a FIFO for reading would block until a writer comes: refused at once.
    let err = workspace::open_file(&s.workspace, "image.tar").unwrap_err();
    assert_eq!(err.to_string(), "image.tar is a FIFO, not a regular file");
    assert!(!err.is_harness_error());
    std::fs::create_dir_all(s.workspace.join("dir.tar")).unwrap();
    let err = workspace::open_file(&s.workspace, "dir.tar").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir.tar is a directory, not a regular file"
    );
    symlink("loop-b.tar", s.workspace.join("loop-a.tar")).unwrap();
    symlink("loop-a.tar", s.workspace.join("loop-b.tar")).unwrap();
    let err = workspace::open_file(&s.workspace, "loop-a.tar").unwrap_err();
    assert_eq!(
        err.to_string(),
        "loop-a.tar is a symlink loop, not a regular file"
    );
    assert!(!err.is_harness_error());
    symlink("nowhere.tar", s.workspace.join("dangling.tar")).unwrap();
    let err = workspace::open_file(&s.workspace, "dangling.tar").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dangling.tar: no such file in the workspace"
    );
    assert!(!err.is_harness_error());
}

#[test]
fn a_json_capture_file_over_its_limit_is_refused() {
    let s = setup();
    std::fs::write(s.workspace.join("metadata.json"), vec![b' '; 2048]).unwrap();
    let err = workspace::read_file(&s.workspace, "metadata.json", 1024).unwrap_err();
    assert_eq!(err.to_string(), "metadata.json is larger than 1 KiB");
    assert!(!err.is_harness_error());
    assert_eq!(
        workspace::read_file(&s.workspace, "metadata.json", 4096)
            .unwrap()
            .len(),
        2048
    );
}

#[test]
fn the_workspace_copy_keeps_inside_symlinks_and_refuses_others() {
    let root = tempfile::tempdir().unwrap();
    let from = root.path().join("context");
    std::fs::create_dir_all(from.join("sub")).unwrap();
    std::fs::write(from.join("Dockerfile"), "FROM scratch\n").unwrap();
    symlink("../Dockerfile", from.join("sub/link")).unwrap();
    let to = root.path().join("copy");
    std::fs::create_dir_all(&to).unwrap();
    workspace::copy_tree(&from, &to).unwrap();
    assert_eq!(
        std::fs::read_link(to.join("sub/link")).unwrap(),
        Path::new("../Dockerfile")
    );
    assert_eq!(
        std::fs::read_to_string(to.join("sub/link")).unwrap(),
        "FROM scratch\n"
    );

    for (name, target) in [("abs", "/etc/passwd"), ("up", "../../../etc/passwd")] {
        let from = root.path().join(format!("context-{name}"));
        std::fs::create_dir_all(&from).unwrap();
        symlink(target, from.join("leak")).unwrap();
        let to = root.path().join(format!("copy-{name}"));
        std::fs::create_dir_all(&to).unwrap();
        let err = workspace::copy_tree(&from, &to).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("leak is a symlink to {target}, outside the directory")
        );
        assert!(std::fs::symlink_metadata(to.join("leak")).is_err());
    }
}
