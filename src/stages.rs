//! Where a build's time goes: the wall-clock seconds of each stage of one target.
//!
//! A user sees one total; a maintainer paying for CI minutes needs to know which stage
//! to blame, and every change to the build's speed is measured by these figures, not
//! guessed. They are printed with `--progress plain` (one line per target), kept in the
//! metadata record, and shown by `scripts/bench`.
//!
//! The platforms of a target run each stage side by side, so a stage's time is the
//! longest platform's: what the target waited for. The -buildroot's builder is built
//! and pinned beside the gather, so its seconds (in images and pin) overlap the
//! gather's rather than add to the total.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The stages of a build, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The source image asked for its digest, its layers and its date.
    Resolve,
    /// The gather stage in BuildKit, and its export checked and unpacked on the host;
    /// the -buildroot's builder is built and pinned at the same time.
    Gather,
    /// Compile once: the native bytecode shared with emulated platforms.
    Compile,
    /// The gathered tree distilled into the runtime root and its layers.
    Distill,
    /// The images made: each assembled by dpy and loaded (and the builder's BuildKit
    /// build, which runs beside the gather).
    Images,
    /// The builder image's times pinned to the epoch, beside the gather.
    Pin,
    /// Every image tagged, once all platforms built.
    Tag,
    /// Pushed, signed and attested (`--push`).
    Push,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Gather => "gather",
            Stage::Compile => "compile",
            Stage::Distill => "distill",
            Stage::Images => "images",
            Stage::Pin => "pin",
            Stage::Tag => "tag",
            Stage::Push => "push",
        }
    }
}

/// Seconds per stage; a stage that did not run is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StageTimes(BTreeMap<Stage, f64>);

impl StageTimes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `took` to the stage (a stage may run in parts, e.g. the -buildroot and the
    /// -debug images).
    pub fn add(&mut self, stage: Stage, took: Duration) {
        let seconds = self.0.entry(stage).or_insert(0.0);
        // Hundredths: finer is noise, and the record stays short.
        *seconds = ((*seconds + took.as_secs_f64()) * 100.0).round() / 100.0;
    }

    /// Runs `work`, adding its time to `stage`.
    pub async fn time<T>(&mut self, stage: Stage, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.add(stage, started.elapsed());
        out
    }

    /// Another platform's times, run beside these: each stage waited for the longer.
    pub fn beside(&mut self, other: &StageTimes) {
        for (&stage, &seconds) in &other.0 {
            let mine = self.0.entry(stage).or_insert(0.0);
            *mine = mine.max(seconds);
        }
    }

    pub fn get(&self, stage: Stage) -> Option<f64> {
        self.0.get(&stage).copied()
    }

    /// `resolve 0.02s, gather 6.10s, ...`, in the stages' order.
    pub fn line(&self) -> String {
        self.0
            .iter()
            .map(|(stage, seconds)| format!("{} {seconds:.2}s", stage.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_print_in_the_order_they_run_whatever_the_order_they_were_timed() {
        let mut times = StageTimes::new();
        times.add(Stage::Pin, Duration::from_millis(1500));
        times.add(Stage::Resolve, Duration::from_millis(20));
        times.add(Stage::Images, Duration::from_millis(250));
        times.add(Stage::Images, Duration::from_millis(250));
        assert_eq!(times.line(), "resolve 0.02s, images 0.50s, pin 1.50s");
        assert_eq!(
            serde_json::to_string(&times).unwrap(),
            r#"{"resolve":0.02,"images":0.5,"pin":1.5}"#
        );
    }

    #[test]
    fn platforms_side_by_side_cost_the_longer_of_each_stage() {
        let mut amd64 = StageTimes::new();
        amd64.add(Stage::Distill, Duration::from_secs(2));
        amd64.add(Stage::Images, Duration::from_secs(1));
        let mut arm64 = StageTimes::new();
        arm64.add(Stage::Distill, Duration::from_secs(1));
        arm64.add(Stage::Pin, Duration::from_secs(3));
        amd64.beside(&arm64);
        assert_eq!(amd64.line(), "distill 2.00s, images 1.00s, pin 3.00s");
        assert_eq!(amd64.get(Stage::Gather), None);
    }
}
