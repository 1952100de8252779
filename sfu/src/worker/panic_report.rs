//! Panic reports that never stall a media worker.
//!
//! std's default panic hook, with `RUST_BACKTRACE` set (operators set it),
//! resolves and prints the backtrace on the panicking thread before the
//! unwind reaches our guard. Resolving reads the binary's debug info: in a
//! debug build it held a worker for ~0.5 s, its socket overflowed and every
//! other viewer on it lost media for one session's panic. The hook
//! installed here takes, on media-worker threads only, the message, the
//! location and an *unresolved* backtrace (a frame walk), and hands them to
//! one reporter thread that resolves and prints them. Other threads keep
//! the hook that was there before.
//!
//! Invariants: installed once per process (the first worker spawn), and it
//! chains the previous hook for every thread that is not a media worker.
//! Bounded: at most [`REPORT_QUEUE`] reports wait; past that a report is
//! printed at once without its backtrace (a panic storm must not grow
//! memory, and printing one line is cheap).

use std::backtrace::{Backtrace, BacktraceStatus};
use std::panic::PanicHookInfo;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Once;

/// Threads whose panics are reported off-thread (see `worker::spawn`).
pub const WORKER_THREAD_PREFIX: &str = "media-worker-";

/// Reports that may wait for the reporter thread.
pub const REPORT_QUEUE: usize = 16;

/// One panic, as taken on the panicking thread.
pub struct Report {
    pub thread: String,
    pub message: String,
    pub location: String,
    pub backtrace: Backtrace,
}

impl Report {
    /// std's layout: the first line, the message, then the backtrace when
    /// one was captured (resolving it happens here, on the caller).
    pub fn render(&self) -> String {
        let mut out = format!(
            "thread '{}' panicked at {}:\n{}",
            self.thread, self.location, self.message
        );
        if self.backtrace.status() == BacktraceStatus::Captured {
            out.push_str(&format!("\nstack backtrace:\n{}", self.backtrace));
        }
        out
    }
}

/// Installs the hook (once); reports go to a thread that prints them to
/// stderr.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (tx, rx) = sync_channel::<Report>(REPORT_QUEUE);
        let printer = std::thread::Builder::new()
            .name("panic-report".into())
            .spawn(move || print_reports(rx));
        match printer {
            Ok(_) => install_with(tx),
            // Without a reporter the default hook stays: slower, not lost.
            Err(e) => tracing::error!(error = %e, "cannot start the panic reporter thread"),
        }
    });
}

fn print_reports(rx: Receiver<Report>) {
    for report in rx {
        eprintln!("{}", report.render());
    }
}

/// Chains a hook that sends media-worker panics to `tx`.
pub fn install_with(tx: SyncSender<Report>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        if !name.starts_with(WORKER_THREAD_PREFIX) {
            return previous(info);
        }
        let report = Report {
            thread: name.to_string(),
            message: message_of(info),
            location: info
                .location()
                .map_or_else(|| "<unknown>".into(), ToString::to_string),
            backtrace: Backtrace::capture(),
        };
        if let Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) = tx.try_send(report) {
            eprintln!(
                "thread '{}' panicked at {}:\n{}\n(backtrace dropped: the panic reporter is behind)",
                r.thread, r.location, r.message
            );
        }
    }));
}

fn message_of(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn panic_on(name: &str) {
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(|| panic!("session {} broke", 42))
            .expect("a test thread spawns");
        assert!(thread.join().is_err());
    }

    /// One test owns the process-wide hook. Other tests of this crate may
    /// panic meanwhile (on their own threads), so it looks for its own
    /// thread names only.
    #[test]
    fn worker_panics_go_to_the_reporter_and_other_threads_keep_their_hook() {
        let chained = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = chained.clone();
        std::panic::set_hook(Box::new(move |_| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            seen.lock().expect("test hook lock").push(name);
        }));
        let (tx, rx) = sync_channel(REPORT_QUEUE);
        install_with(tx);

        let worker = format!("{WORKER_THREAD_PREFIX}report-test");
        panic_on(&worker);
        panic_on("report-test-control");
        let _ = std::panic::take_hook();

        let report = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok())
            .find(|r| r.thread == worker)
            .expect("the worker's panic reaches the reporter");
        assert_eq!(report.message, "session 42 broke");
        assert!(
            report.location.contains("panic_report.rs"),
            "{}",
            report.location
        );
        let first = format!("thread '{worker}' panicked at ");
        assert!(report.render().starts_with(&first), "{}", report.render());
        let chained = chained.lock().expect("test hook lock");
        assert!(
            chained.iter().any(|n| n == "report-test-control"),
            "{chained:?}"
        );
        assert!(!chained.contains(&worker), "{chained:?}");
    }
}
