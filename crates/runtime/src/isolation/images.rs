//! Images onto the plans' daemon: a rootless daemon has images of its own.

use bollard::query_parameters::ImportImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

/// Copies `image` from the daemon it was built on to the plans' daemon (`docker save` into
/// `docker load`, streamed): a rootless daemon has images of its own.
pub async fn copy_image(from: &Docker, to: &Docker, image: &str) -> Result<(), String> {
    let export = from.clone().export_image(image);
    let mut load = to.import_image_stream(
        ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        export,
        None,
    );
    while let Some(progress) = load.next().await {
        let progress =
            progress.map_err(|e| format!("copying {image} to the plans' daemon: {e}"))?;
        if let Some(error) = progress.error_detail.and_then(|d| d.message) {
            return Err(format!("copying {image} to the plans' daemon: {error}"));
        }
    }
    Ok(())
}
