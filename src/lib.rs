//! dpy: tiny, hardened distroless Python images from the official Python images.
//!
//! [`pipeline`] sequences `dpy build`, one module per stage:
//! [`target`] → [`catalog`] / [`recipe`] (the flavor) → [`render`] → [`gather`]
//! (BuildKit through [`engine`]) → [`bytecode`] (compile once) → [`distill`] →
//! [`images`] → tag → [`metadata`] / [`publish`]; then [`readme`].
//! Around it: [`doctor`] checks the engine, [`conformance`] checks images, [`cli`]
//! turns arguments into each module's options. ARCHITECTURE.md has the rules.

pub mod archive;
pub mod assemble;
pub mod builder;
pub mod bytecode;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod compression;
pub mod conformance;
pub mod context;
pub mod cyclonedx;
pub mod definitions;
pub mod distill;
pub mod doctor;
pub mod engine;
pub mod epoch;
pub mod error;
pub mod finish;
pub mod gather;
pub mod if_changed;
pub mod image_config;
pub mod images;
pub mod inputs;
pub mod labels;
pub mod layout;
pub mod lifecycle;
pub mod listing;
pub mod metadata;
pub mod offload;
pub mod pin;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod provenance;
pub mod publish;
pub mod readme;
pub mod recipe;
pub mod records;
pub mod render;
pub mod repository;
pub mod runtime;
pub mod selection;
pub mod shape;
pub mod sign;
pub mod stages;
pub mod stdlib_json;
pub mod summary;
pub mod tar_stream;
pub mod target;
pub mod terminal_text;
pub mod tree;
pub mod unpack;
