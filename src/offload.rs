//! Disk and CPU work of one platform, off the task that drives every platform.
//!
//! A target's platforms are futures of one task (crate::pipeline): while one of them
//! unpacks or distills in place, none of the others is polled. An emulated platform's
//! export then stops flowing (BuildKit waits for dpy to read it) and its progress stops
//! arriving, so the pair costs the sum of both chains instead of the longer one. Work
//! that runs for more than a few milliseconds without awaiting goes through [`run`].

use crate::error::Result;

/// Runs `work` on tokio's blocking threads and waits for it without holding up the
/// futures beside the caller. A panic in `work` is the caller's panic.
pub async fn run<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels a blocking task; the build is over then.
        Err(e) => Err(crate::error::Error::Engine(format!(
            "dpy's work was cancelled: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Two pieces of blocking work in one task's futures run side by side: each waits
    /// for word from the other, which run in place (one after the other) never comes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn blocking_work_does_not_hold_up_the_futures_beside_it() {
        let (to_b, from_a) = mpsc::channel();
        let (to_a, from_b) = mpsc::channel();
        let side = |tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>| {
            run(move || {
                tell.send(()).unwrap();
                hear.recv_timeout(Duration::from_secs(20))
                    .map_err(|_| Error::Engine("the other side never ran".into()))
            })
        };
        let (a, b) = futures_util::future::join(side(to_b, from_b), side(to_a, from_a)).await;
        a.unwrap();
        b.unwrap();
    }

    #[tokio::test]
    async fn an_error_is_the_callers() {
        let e = run::<(), _>(|| Err(Error::SourceUnfit("no".into())))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), Error::SourceUnfit("no".into()).to_string());
    }
}
