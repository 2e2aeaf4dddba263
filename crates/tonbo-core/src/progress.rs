//! A live progress line on stderr, for a person watching a long run.
//!
//! The stage's threads only bump shared atomic [`Counters`] (a relaxed add each, nothing to
//! measure); one small thread formats and redraws the line in place four times a second. It is
//! drawn only when stderr is a terminal, so cron logs and pipes see exactly what they saw before:
//! messages and the final summary, nothing else.
//!
//! Messages printed while the line is up go through [`note!`](crate::note), which erases the
//! line first (the drawer puts it back at its next tick), so a message never lands in the middle
//! of it. Plain text only, no color, so `NO_COLOR` has nothing to turn off.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the line is redrawn: often enough to look alive, rarely enough to cost nothing.
const TICK: Duration = Duration::from_millis(250);

/// Whether the line is on screen now. Held while drawing or printing a message, so the two never
/// interleave on stderr.
static SHOWN: Mutex<bool> = Mutex::new(false);

/// Counter slots a stage fills as it likes (the render function of [`Progress::start`] says
/// what each one means).
pub const SLOTS: usize = 8;

#[derive(Default)]
pub struct Counters {
    slots: [AtomicU64; SLOTS],
}

impl Counters {
    pub fn add(&self, slot: usize, n: u64) {
        if let Some(c) = self.slots.get(slot) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn set(&self, slot: usize, v: u64) {
        if let Some(c) = self.slots.get(slot) {
            c.store(v, Ordering::Relaxed);
        }
    }

    pub fn get(&self, slot: usize) -> u64 {
        self.slots
            .get(slot)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn snapshot(&self) -> [u64; SLOTS] {
        std::array::from_fn(|i| self.get(i))
    }
}

/// Whether a progress line can be drawn: stderr is a terminal that understands `\r` and the
/// erase-line sequence (not `TERM=dumb`).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

type Render = Box<dyn Fn(&[u64; SLOTS], Duration) -> String + Send>;

struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// The progress line of one run. Dropping it (or [`Progress::finish`]) stops the drawer and
/// erases the line, so the summary or an error that follows starts on a clean line.
pub struct Progress {
    counters: Arc<Counters>,
    stop: Arc<Stop>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing `render(counters, elapsed)` if `enabled` and stderr is a terminal;
    /// otherwise the counters are still there, and nothing is ever drawn.
    pub fn start(
        enabled: bool,
        render: impl Fn(&[u64; SLOTS], Duration) -> String + Send + 'static,
    ) -> Progress {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(Stop {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        let drawer = (enabled && stderr_is_terminal()).then(|| {
            let counters = counters.clone();
            let stop = stop.clone();
            let render: Render = Box::new(render);
            std::thread::spawn(move || draw_loop(&counters, &stop, &render))
        });
        Progress {
            counters,
            stop,
            drawer,
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether the line is being drawn.
    pub fn active(&self) -> bool {
        self.drawer.is_some()
    }

    /// Stops the drawer and erases the line.
    pub fn finish(mut self) {
        self.stop_drawer();
    }

    fn stop_drawer(&mut self) {
        let Some(drawer) = self.drawer.take() else {
            return;
        };
        if let Ok(mut s) = self.stop.stopped.lock() {
            *s = true;
        }
        self.stop.wake.notify_all();
        let _ = drawer.join();
        erase();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_drawer();
    }
}

fn draw_loop(counters: &Counters, stop: &Stop, render: &Render) {
    let start = Instant::now();
    let Ok(mut stopped) = stop.stopped.lock() else {
        return;
    };
    loop {
        // Waiting first: a run shorter than a tick shows no line at all, only its summary.
        stopped = match stop.wake.wait_timeout(stopped, TICK) {
            Ok((s, _)) => s,
            Err(_) => return,
        };
        if *stopped {
            return;
        }
        let line = render(&counters.snapshot(), start.elapsed());
        draw(&line);
    }
}

/// Redraws the line in place, cut to the terminal's width: a line that wrapped could not be
/// erased by `\r` alone.
fn draw(line: &str) {
    let width = terminal_width().saturating_sub(1).max(20);
    let line: String = line.chars().take(width).collect();
    let Ok(mut shown) = SHOWN.lock() else {
        return;
    };
    let mut e = std::io::stderr().lock();
    // A failing stderr must not stop the work; the summary will tell (or fail) later.
    let _ = write!(e, "\r{line}\x1b[K");
    let _ = e.flush();
    *shown = true;
}

fn erase() {
    let Ok(mut shown) = SHOWN.lock() else {
        return;
    };
    if *shown {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[K");
        let _ = e.flush();
        *shown = false;
    }
}

/// Prints one message line on stderr, erasing a progress line first. Use it through
/// [`note!`](crate::note). A failing stderr is ignored rather than a panic, as for rejects.
///
/// On a terminal every message starts by erasing the row it lands on, whether or not this
/// stage drew a line there: the stages of a pipeline share the terminal, and another stage's
/// progress line (tonbo-post's) is where the cursor waits when this one speaks.
pub fn message(args: std::fmt::Arguments<'_>) {
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let terminal = *TERMINAL.get_or_init(stderr_is_terminal);
    let mut shown = SHOWN.lock().ok();
    let mut e = std::io::stderr().lock();
    if let Some(shown) = shown.as_deref_mut() {
        *shown = false;
    }
    if terminal {
        let _ = write!(e, "\r\x1b[K");
    }
    let _ = writeln!(e, "{args}");
}

/// `eprintln!` that keeps clear of a live progress line (see [`message`]).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::progress::message(format_args!($($arg)*))
    };
}

#[cfg(unix)]
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ only fills the winsize struct it is given, which lives on this stack.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

#[cfg(not(unix))]
fn terminal_width() -> usize {
    80
}

/// Slots of a reader's progress counters (see [`reader`]).
pub const R_SCANNED: usize = 0;
pub const R_RECORDS: usize = 1;
pub const R_BYTES: usize = 2;

/// The progress line of a reader's `--progress`: `scanned` names what it scans (`files`,
/// `sessions`), counted in [`R_SCANNED`]; records written in [`R_RECORDS`]; bytes in
/// [`R_BYTES`], which `bytes_are` says are (`read` from files, or `written` as records).
pub fn reader(
    stage: &'static str,
    scanned: &'static str,
    bytes_are: &'static str,
    enabled: bool,
) -> Progress {
    Progress::start(enabled, move |c, t| {
        format!(
            "{stage}: {}, {} {scanned} scanned, {} records written, {} {bytes_are}, {:.1} MB/s",
            elapsed(t),
            count(c[R_SCANNED]),
            count(c[R_RECORDS]),
            bytes(c[R_BYTES]),
            rate(c[R_BYTES], t) / 1e6,
        )
    })
}

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in decimal units, as the rates are (`12.3 MB`).
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// `n` per second over `elapsed` (0 before any time has passed).
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Elapsed time as `m:ss`, or `h:mm:ss` from an hour on.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(elapsed(Duration::from_secs(7)), "0:07");
        assert_eq!(elapsed(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn counters_without_a_terminal_draw_nothing() {
        // Test harness stderr is captured, never a terminal: no drawer, counters still count.
        let p = Progress::start(true, |_, _| String::from("x"));
        p.counters().add(1, 5);
        p.counters().add(SLOTS, 5); // out of range: ignored, not a panic
        assert_eq!(p.counters().get(1), 5);
        p.finish();
    }
}
