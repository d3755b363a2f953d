//! dpy's integration tests, one module per feature, in one test binary: one link
//! instead of sixteen, and one `--test-threads` bound over the whole suite. `common` is
//! the harness: the `Test` builder, the engine gate, docker helpers and the test bed's
//! image names.

mod common;

mod alpine;
mod build;
mod buildroot;
mod conformance;
mod doctor;
mod engine;
mod engines;
mod figures;
mod gather_py;
mod hostile;
mod matrix;
mod multiarch;
mod newest;
mod official_debian;
mod options;
mod profiles;
mod publish;
mod readme;
mod render;
mod sign;
mod startup;
mod strip;
mod target;
mod variants;
mod zip_reads;
