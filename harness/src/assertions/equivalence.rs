//! `images_equivalent`: two pushed images are the same image to a user (builder equivalence:
//! the same context built by two builders). Each image is read once into an
//! [`oci::image_view::ImageDescription`], the two are compared ([`oci::image_view::diff`]) and
//! every difference the allow-list does not name fails the assertion. The outcome keeps every
//! difference, allowed ones marked, as a table for the reports.

use model::result::{AssertionOutcome, Difference, Status};
use oci::image_view::{diff, Allow, ImageDescription};
use oci::registry;
use scenario::{ImageInRegistry, ImagesEquivalentAssertion};

use super::{outcome, Evidence};

/// The most differences an outcome keeps (the first ones: config, layers, history, then files
/// in path order); the rest are counted in its text.
pub const MAX_DIFFERENCES: usize = 200;

/// How one image could not be described: the plugin's doing (`Fail`: not pushed, broken
/// layers) or the harness's (`Error`: the registry could not be asked).
struct Unread {
    status: Status,
    reason: String,
}

async fn describe(
    evidence: &Evidence<'_>,
    image: &ImageInRegistry,
) -> Result<ImageDescription, Unread> {
    let (name, registry) = registry::named(evidence.registries, image.registry.as_deref());
    let shown = format!("{}:{} in {name}", image.repository, image.tag);
    let error = |e: oci::errors::RegistryQueryError| Unread {
        status: Status::Error,
        reason: format!("{shown}: {e}"),
    };
    let served = registry
        .image(&image.repository, &image.tag)
        .await
        .map_err(error)?
        .ok_or_else(|| Unread {
            status: Status::Fail,
            reason: format!("{shown} is not in the registry"),
        })?;
    registry
        .describe(&served)
        .await
        .map_err(error)?
        .map_err(|why| Unread {
            status: Status::Fail,
            reason: format!("{shown} cannot be read: {why}"),
        })
}

fn named(image: &ImageInRegistry) -> String {
    match &image.registry {
        Some(r) => format!("{}:{} in {r}", image.repository, image.tag),
        None => format!("{}:{}", image.repository, image.tag),
    }
}

pub(super) async fn images_equivalent(
    evidence: &Evidence<'_>,
    eq: &ImagesEquivalentAssertion,
) -> AssertionOutcome {
    let what = format!("{} is equivalent to {}", named(&eq.a), named(&eq.b));
    let keys: Vec<String> = eq.allow.iter().map(|a| a.key.clone()).collect();
    let expected = match keys.is_empty() {
        true => "the same files, config, layer count and history".to_owned(),
        false => format!(
            "the same files, config, layer count and history, except {}",
            keys.join(", ")
        ),
    };
    let allow = match Allow::new(&keys) {
        Ok(allow) => allow,
        // Validation compiled every pattern: the harness's fault if one does not now.
        Err(e) => return outcome(what, Status::Error, expected, e.to_string()),
    };
    let (left, right) = match (
        describe(evidence, &eq.a).await,
        describe(evidence, &eq.b).await,
    ) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => {
            let unread: Vec<Unread> = [l.err(), r.err()].into_iter().flatten().collect();
            let status = unread
                .iter()
                .map(|u| u.status)
                .max()
                .unwrap_or(Status::Error);
            let reasons: Vec<String> = unread.into_iter().map(|u| u.reason).collect();
            return outcome(what, status, expected, reasons.join("; "));
        }
    };
    let mut differences = diff(&left, &right);
    allow.mark(&mut differences);
    let (found, status) = judged(&differences);
    let mut result = outcome(what, status, expected, found);
    if !differences.is_empty() {
        differences.truncate(MAX_DIFFERENCES);
        result.differences = Some(differences);
    }
    result
}

/// The outcome's text and status: Pass when every difference is allowed.
fn judged(differences: &[Difference]) -> (String, Status) {
    let (allowed, counted): (Vec<&Difference>, Vec<&Difference>) =
        differences.iter().partition(|d| d.allowed_by.is_some());
    let shown = |ds: &[&Difference]| {
        let keys: Vec<&str> = ds.iter().map(|d| d.key.as_str()).take(10).collect();
        let more = ds.len().saturating_sub(10);
        match more {
            0 => keys.join(", "),
            n => format!("{} and {n} more", keys.join(", ")),
        }
    };
    let kept = match differences.len() > MAX_DIFFERENCES {
        true => format!(" (the table lists the first {MAX_DIFFERENCES})"),
        false => String::new(),
    };
    match (counted.len(), allowed.len()) {
        (0, 0) => ("no difference".to_owned(), Status::Pass),
        (0, n) => (
            format!("{n} difference(s), all allowed: {}{kept}", shown(&allowed)),
            Status::Pass,
        ),
        (n, a) => (
            format!(
                "{n} difference(s) not allowed: {}{}{kept}",
                shown(&counted),
                match a {
                    0 => String::new(),
                    a => format!(" (and {a} allowed)"),
                }
            ),
            Status::Fail,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::result::DifferenceKind;

    fn difference(key: &str, allowed_by: Option<&str>) -> Difference {
        Difference {
            kind: DifferenceKind::Config,
            key: key.to_owned(),
            left: Some("l".to_owned()),
            right: None,
            allowed_by: allowed_by.map(str::to_owned),
        }
    }

    #[test]
    fn only_differences_the_allow_list_does_not_name_fail() {
        assert_eq!(judged(&[]), ("no difference".to_owned(), Status::Pass));
        let allowed = [difference("created", Some("created"))];
        assert_eq!(judged(&allowed).1, Status::Pass);
        let (found, status) = judged(&[
            difference("created", Some("created")),
            difference("workdir", None),
        ]);
        assert_eq!(status, Status::Fail);
        assert_eq!(
            found,
            "1 difference(s) not allowed: workdir (and 1 allowed)"
        );
    }
}
