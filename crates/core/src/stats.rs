//! What each profile costs, for the resource view (SPEC §2.4): bytes to and from its
//! service, events per minute, its connection history, and (read when asked) its database
//! size; beside them the memory of the whole process tree (the app and its web views).
//!
//! Counting is a few atomic adds and one short lock per batch of events, so it is always on.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::profile::ConnState;
use crate::registry::ProfileId;

/// Connection changes kept per profile (the newest ones).
const HISTORY: usize = 20;

/// One profile's counters, shared by its HTTP client and its task.
pub struct Stats {
    started: Instant,
    sent: AtomicU64,
    received: AtomicU64,
    events: AtomicU64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Events applied per second of the last minute: (second since `started`, count).
    seconds: [(u64, u64); 60],
    history: VecDeque<Transition>,
}

/// A change of a profile's connection state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Transition {
    /// RFC 3339, UTC.
    pub at: String,
    pub state: ConnState,
}

/// One row of the resource view.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileResources {
    pub profile: ProfileId,
    /// Bytes of request bodies and outgoing frames (headers not counted).
    pub bytes_sent: u64,
    /// Bytes of response bodies and event-stream frames (headers not counted).
    pub bytes_received: u64,
    /// Events applied in the last 60 seconds.
    pub events_per_minute: u64,
    /// Events applied since the profile started in this process.
    pub events_total: u64,
    /// The profile's database, its write-ahead log included.
    pub database_bytes: u64,
    /// Newest last.
    pub history: Vec<Transition>,
}

/// The resource view: every running profile, and the process tree's memory.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Resources {
    pub profiles: Vec<ProfileResources>,
    /// The memory of this process and every process it started (the web views), when the
    /// platform tells; how it was counted is `memory_measure`.
    pub memory_bytes: Option<u64>,
    pub memory_measure: Option<crate::platform::MemoryMeasure>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            events: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                seconds: [(u64::MAX, 0); 60],
                history: VecDeque::with_capacity(HISTORY),
            }),
        }
    }
}

impl Stats {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `n` events were applied just now.
    pub fn applied(&self, n: usize) {
        self.applied_at(n as u64, self.started.elapsed().as_secs());
    }

    fn applied_at(&self, n: u64, second: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
        let mut inner = self.inner();
        let slot = &mut inner.seconds[(second % 60) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += n;
    }

    pub fn state(&self, state: &ConnState) {
        let at = crate::store::rfc3339(time::OffsetDateTime::now_utc());
        let mut inner = self.inner();
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(Transition {
            at,
            state: state.clone(),
        });
    }

    fn per_minute_at(&self, now: u64) -> u64 {
        self.inner()
            .seconds
            .iter()
            .filter(|(second, _)| *second <= now && now - *second < 60)
            .map(|(_, n)| n)
            .sum()
    }

    /// The row for `profile`, whose folder is `dir`.
    pub fn report(&self, profile: &ProfileId, dir: &Path) -> ProfileResources {
        let database_bytes = ["profile.db", "profile.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        ProfileResources {
            profile: profile.clone(),
            bytes_sent: self.sent.load(Ordering::Relaxed),
            bytes_received: self.received.load(Ordering::Relaxed),
            events_per_minute: self.per_minute_at(self.started.elapsed().as_secs()),
            events_total: self.events.load(Ordering::Relaxed),
            database_bytes,
            history: self.inner().history.iter().cloned().collect(),
        }
    }
}

/// PSS of this process and all its descendants, in bytes (Linux; `None` elsewhere or when
/// `/proc` cannot be read). PSS shares pages fairly between processes, so the sum is what the
/// app really costs.
pub fn process_tree_memory() -> Option<u64> {
    let me = std::process::id();
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the parenthesised name: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![me];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    // A process may end between the two reads, or belong to another user: it counts as 0.
    let total: u64 = tree.into_iter().filter_map(pss_bytes).sum();
    (total > 0).then_some(total)
}

/// One process's proportional set size in bytes, from `/proc/<pid>/smaps_rollup` (Linux).
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kib: u64 = rollup
        .lines()
        .filter_map(|l| l.strip_prefix("Pss:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum();
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_per_minute_counts_only_the_last_sixty_seconds() {
        let s = Stats::default();
        s.applied_at(500, 9);
        s.applied_at(3, 30);
        assert_eq!(s.per_minute_at(30), 503);
        assert_eq!(
            s.per_minute_at(68),
            503,
            "second 9 is 59 s old: still counted"
        );
        assert_eq!(s.per_minute_at(69), 3, "second 9 is a minute old: gone");
        // Second 69 reuses second 9's slot: the old count is replaced, not added to.
        s.applied_at(2, 69);
        assert_eq!(s.per_minute_at(69), 5);
        assert_eq!(s.events.load(Ordering::Relaxed), 505, "the total keeps all");
    }

    #[test]
    fn history_keeps_the_newest_changes() {
        let s = Stats::default();
        for i in 0..(HISTORY + 5) {
            s.state(&ConnState::Offline(format!("try {i}")));
        }
        s.state(&ConnState::Live);
        let report = s.report(&ProfileId::new("p"), Path::new("/nonexistent"));
        assert_eq!(report.history.len(), HISTORY);
        assert_eq!(report.history.last().unwrap().state, ConnState::Live);
        assert_eq!(
            report.history[0].state,
            ConnState::Offline("try 6".into()),
            "the oldest ones dropped first"
        );
        assert_eq!(report.database_bytes, 0, "no database yet reads as empty");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn memory_covers_the_process_and_its_children() {
        let alone = process_tree_memory().unwrap();
        assert!(
            alone > 1024 * 1024,
            "a process costs at least a MiB: {alone}"
        );
        // A child that holds 64 MiB of touched memory must show up in the tree's total.
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import time; b = b'x' * (64 << 20); print(flush=True); time.sleep(30)",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let with_child = process_tree_memory().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            with_child >= alone + 60 * 1024 * 1024,
            "{with_child} vs {alone}"
        );
    }
}
