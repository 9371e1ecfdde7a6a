//! Polling with a deadline. Every wait says what it waits for, shows the last
//! observed state, and fails with that state when the deadline passes.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ui::Ui;

/// One observation: done with a value, or not yet (with what was seen).
pub enum Poll<T> {
    Ready(T),
    Pending(String),
}

const FIRST_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(10);

/// Polls `observe` (at once, then with growing pauses) until it is ready or
/// `deadline` has passed.
pub async fn until<T, F, Fut>(ui: &Ui, what: &str, deadline: Duration, mut observe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    let started = crate::clock::Stopwatch::start();
    let mut waiting: Option<crate::ui::Waiting> = None;
    let mut interval = FIRST_INTERVAL;
    loop {
        match observe().await? {
            Poll::Ready(value) => {
                if let Some(waiting) = waiting {
                    waiting.done();
                }
                return Ok(value);
            }
            Poll::Pending(seen) => {
                if crate::checkpoint::interrupted() {
                    return Err(crate::checkpoint::stopped(&format!(
                        "waiting for {what} (last seen: {seen})"
                    )));
                }
                if started.elapsed() >= deadline {
                    return Err(Error::Timeout {
                        what: what.to_string(),
                        last_seen: seen,
                        elapsed: started.elapsed(),
                    });
                }
                waiting
                    .get_or_insert_with(|| ui.waiting(what))
                    .observed(&seen);
            }
        }
        crate::clock::sleep(interval).await;
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Verbosity;

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_once_ready() {
        let ui = Ui::new(Verbosity::Quiet);
        let mut polls = 0;
        let value = until(&ui, "three polls", Duration::from_secs(60), || {
            polls += 1;
            let n = polls;
            async move {
                Ok(if n < 3 {
                    Poll::Pending(format!("poll {n}"))
                } else {
                    Poll::Ready(n)
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fails_at_the_deadline_with_the_last_state() {
        let ui = Ui::new(Verbosity::Quiet);
        let err = until(&ui, "never", Duration::from_secs(30), || async {
            Ok(Poll::<()>::Pending("still pending".into()))
        })
        .await
        .unwrap_err();
        match err {
            Error::Timeout {
                what,
                last_seen,
                elapsed,
            } => {
                assert_eq!(what, "never");
                assert_eq!(last_seen, "still pending");
                assert!(elapsed >= Duration::from_secs(30));
            }
            other => panic!("unexpected {other}"),
        }
    }
}
