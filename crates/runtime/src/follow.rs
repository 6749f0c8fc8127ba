//! `logs --follow`'s loop: the window's start, then what the core's `Follower` finds every
//! 200 ms, until the reader goes away.

use chrono::{DateTime, Utc};

use crate::logs::{follow_open, Entry, LogsRequest};

/// `--follow`: prints the window's start and then every new line as it is written, across
/// rotations, until `emit` returns false (the reader went away).
pub async fn follow(
    req: &LogsRequest,
    now: DateTime<Utc>,
    mut emit: impl FnMut(&Entry) -> bool,
) -> crate::error::Result<()> {
    let (first, mut follower) = follow_open(req, now)?;
    for e in &first {
        if !emit(e) {
            return Ok(());
        }
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for e in &follower.poll() {
            if !emit(e) {
                return Ok(());
            }
        }
    }
}
