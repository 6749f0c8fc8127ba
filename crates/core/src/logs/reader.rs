//! The programmatic API's stream of entries, read in batches.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::follow::*;
use super::line::*;
use super::read::*;
use super::request::*;
use super::scan::Merger;

/// The programmatic API's stream of entries, read in batches: the window (merged from the
/// files line by line, never all at once), then — when following — the lines written since.
pub struct Reader {
    merged: Option<Merger>,
    listed: std::vec::IntoIter<Entry>,
    follower: Option<Follower>,
    root: PathBuf,
}

impl Reader {
    pub fn open(
        req: &LogsRequest,
        now: DateTime<Utc>,
        follow: bool,
    ) -> crate::error::Result<Reader> {
        let root = crate::layout::logs_root(&req.workspace_root);
        if follow {
            let (first, follower) = follow_open(req, now)?;
            return Ok(Reader {
                merged: None,
                listed: first.into_iter(),
                follower: Some(follower),
                root,
            });
        }
        let (services, q) = prepare(req, now)?;
        Ok(if q.tail.is_some() {
            Reader {
                merged: None,
                listed: read_all(req, &services, &q)?.into_iter(),
                follower: None,
                root,
            }
        } else {
            Reader {
                merged: Some(merger(&services, &q).map_err(|e| read_error(req, e))?),
                listed: Vec::new().into_iter(),
                follower: None,
                root,
            }
        })
    }

    /// Up to `max` entries: the window's next ones, then (following) what was written since
    /// the last call. Empty: the end (see [`Reader::done`]), or nothing new yet.
    pub fn read(&mut self, max: usize) -> crate::error::Result<Vec<Entry>> {
        let mut out: Vec<Entry> = self.listed.by_ref().take(max).collect();
        if let Some(m) = self.merged.as_mut() {
            while out.len() < max {
                match next_entry(m) {
                    Ok(Some(e)) => out.push(e),
                    Ok(None) => {
                        self.merged = None;
                        break;
                    }
                    Err(source) => {
                        return Err(crate::error::Error::Io {
                            op: crate::error::IoOp::Read,
                            path: self.root.clone(),
                            source,
                        })
                    }
                }
            }
        }
        if out.is_empty() && self.merged.is_none() {
            if let Some(f) = self.follower.as_mut() {
                self.listed = f.poll().into_iter();
                out.extend(self.listed.by_ref().take(max));
            }
        }
        Ok(out)
    }

    /// True when every entry was read and nothing is followed.
    pub fn done(&self) -> bool {
        self.merged.is_none() && self.listed.len() == 0 && self.follower.is_none()
    }
}
