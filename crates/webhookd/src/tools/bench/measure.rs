//! Measures of the processes and the machine, read from `/proc` (Linux).
//!
//! The server is a child process, so its resident memory (VmRSS now, VmHWM at peak) and CPU
//! time (utime + stime) are its own, apart from the load generator's and the sink's. The
//! machine's busy CPU time over the run tells how much other work shared the cores: a clean
//! run has `other_cpu_seconds` near 0. Off Linux every measure is absent (`null`).

use std::time::Instant;

use super::report::{self, MachineFigures, ProcessFigures, ServerFigures, ThreadFigures};
use super::server::LocalServer;

/// The server's threads listed in the report, busiest first.
const THREADS_SHOWN: usize = 4;

/// What was read at the start of the run, before any load, to subtract at the end.
pub(crate) struct Meter {
    ticks_per_second: f64,
    started: Instant,
    machine_busy: Option<f64>,
    bench: Option<ProcStats>,
    server: Option<ProcStats>,
}

/// The measures at the end of the run.
pub(crate) struct Measured {
    pub(crate) server: Option<ServerFigures>,
    pub(crate) bench: Option<ProcessFigures>,
    pub(crate) machine: Option<MachineFigures>,
}

impl Meter {
    /// Starts measuring; `server` is the local server, when there is one (its memory now is
    /// the idle RSS).
    pub(crate) fn start(server: Option<&LocalServer>) -> Self {
        let ticks_per_second = clock_ticks();
        Self {
            ticks_per_second,
            started: Instant::now(),
            machine_busy: machine_busy_seconds(ticks_per_second),
            bench: ProcStats::read("self", ticks_per_second),
            server: server
                .and_then(|server| ProcStats::read(&server.pid().to_string(), ticks_per_second)),
        }
    }

    /// Reads the measures, while the server still runs.
    pub(crate) fn finish(&self, server: Option<&LocalServer>) -> Measured {
        let ticks = self.ticks_per_second;
        let bench_now = ProcStats::read("self", ticks);
        let server_now = server.and_then(|server| {
            let pid = server.pid().to_string();
            Some((server, pid.clone(), ProcStats::read(&pid, ticks)?))
        });
        let cpu_used = |start: Option<ProcStats>, now: Option<ProcStats>| {
            now.map_or(0.0, |now| {
                now.cpu_seconds - start.map_or(0.0, |start| start.cpu_seconds)
            })
        };
        let machine = machine_busy_seconds(ticks)
            .zip(self.machine_busy)
            .map(|(now, start)| {
                let busy = now - start;
                let ours = cpu_used(self.bench, bench_now)
                    + cpu_used(self.server, server_now.as_ref().map(|(_, _, stats)| *stats));
                MachineFigures {
                    cores: std::thread::available_parallelism().map_or(1, usize::from),
                    wall_seconds: report::round3(self.started.elapsed().as_secs_f64()),
                    busy_cpu_seconds: report::round3(busy),
                    other_cpu_seconds: Some(report::round3((busy - ours).max(0.0))),
                }
            });
        let server = server_now.map(|(server, pid, now)| ServerFigures {
            idle_rss_mib: report::mib(self.server.unwrap_or_default().rss_kib),
            peak_rss_mib: report::mib(now.peak_rss_kib),
            rss_mib: report::mib(now.rss_kib),
            cpu_seconds: report::round3(now.cpu_seconds),
            database_bytes: server.database_bytes(),
            busiest_threads: busiest_threads(&pid, ticks, THREADS_SHOWN)
                .into_iter()
                .map(|(name, cpu_seconds)| ThreadFigures {
                    name,
                    cpu_seconds: report::round3(cpu_seconds),
                })
                .collect(),
        });
        let bench = bench_now.map(|stats| ProcessFigures {
            peak_rss_mib: report::mib(stats.peak_rss_kib),
            cpu_seconds: report::round3(stats.cpu_seconds),
        });
        Measured {
            server,
            bench,
            machine,
        }
    }
}

/// A process's memory and CPU time, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStats {
    /// Resident memory now (VmRSS), in KiB.
    rss_kib: u64,
    /// Peak resident memory (VmHWM), in KiB.
    peak_rss_kib: u64,
    /// User and system CPU time, in seconds.
    cpu_seconds: f64,
}

impl ProcStats {
    /// The stats of process `pid` (`"self"` for this one), or `None` off Linux or once it is
    /// gone.
    fn read(pid: &str, ticks_per_second: f64) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name, which may hold spaces and parentheses: `state` is
        // field 3, `utime` 14 and `stime` 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
        };
        let cpu_ticks = ticks(11)? + ticks(12)?;
        Some(Self {
            rss_kib: kib("VmRSS:")?,
            peak_rss_kib: kib("VmHWM:")?,
            cpu_seconds: cpu_ticks as f64 / ticks_per_second,
        })
    }
}

/// The `count` threads of process `pid` that used the most CPU, with their CPU seconds, busiest
/// first: a thread near the run's wall time is what bounds the server.
fn busiest_threads(pid: &str, ticks_per_second: f64, count: usize) -> Vec<(String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut threads: Vec<(String, f64)> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let (head, tail) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let fields: Vec<&str> = tail.split_whitespace().collect();
            let ticks = |index: usize| {
                fields
                    .get(index)
                    .and_then(|field| field.parse::<u64>().ok())
            };
            Some((name, (ticks(11)? + ticks(12)?) as f64 / ticks_per_second))
        })
        .collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    threads.truncate(count);
    threads
}

/// CPU seconds the whole machine has spent busy since boot (every state of the first line of
/// `/proc/stat` but idle and iowait), to tell what other processes took during a run.
fn machine_busy_seconds(ticks_per_second: f64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&index| ticks.get(index))
        .sum();
    Some(busy as f64 / ticks_per_second)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 by default).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|&ticks| ticks > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu() {
        let stats = ProcStats::read("self", clock_ticks()).expect("/proc is readable");
        assert!(stats.rss_kib > 0);
        assert!(stats.peak_rss_kib >= stats.rss_kib);
        assert!(stats.cpu_seconds >= 0.0);
        assert!(machine_busy_seconds(clock_ticks()).is_some_and(|busy| busy > 0.0));
        let threads = busiest_threads("self", clock_ticks(), 2);
        assert!(!threads.is_empty() && threads.len() <= 2);
    }
}
