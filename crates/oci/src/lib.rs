//! Reading what a plugin produced, with bounded memory and never outside its workspace: image
//! archives (docker-archive, OCI layout, legacy; [`archive`]), registries ([`registry`]) and the
//! plugin's workspace ([`workspace`], through cap-std). No Docker: the fuzz targets depend on
//! this crate alone.

pub mod archive;
pub mod errors;
pub mod human;
pub mod image_view;
pub mod registry;
pub mod workspace;
