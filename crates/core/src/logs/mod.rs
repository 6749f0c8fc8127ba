//! Log retrieval (DESIGN §3 logs): every line of `apps/logs/<service>/{out,error}.log` starts
//! with an RFC 3339 timestamp, so a time window is found by binary search on the live file
//! (only the window is read), rotated `<stream>-<date>[.<n>].log.gz` files and `archive/` are
//! chosen by the date in their name (files outside the window are not opened), and the two
//! streams are merged in time order. Pure parts (timestamps, severities, `--since`, the file
//! plan, the merge) are plain functions; reading sits in `read_*`.

pub mod files;
pub mod follow;
pub mod line;
pub mod read;
pub mod reader;
pub mod request;
pub mod scan;
pub mod slice;
pub mod ts;

pub use files::*;
pub use follow::*;
pub use line::*;
pub use read::*;
pub use reader::*;
pub use request::*;
pub use slice::*;
