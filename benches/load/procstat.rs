//! Server CPU time and peak RSS from /proc/<pid>, the machine's idle time from /proc/stat
//! (Linux).

/// A sample of a process's counters.
#[derive(Clone, Copy)]
pub struct Sample {
    /// user + system CPU seconds so far.
    pub cpu_secs: f64,
}

/// Reads utime + stime (fields 14 and 15 of /proc/<pid>/stat, in USER_HZ = 100 ticks/s).
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Sample {
        cpu_secs: ticks as f64 / 100.0,
    })
}

/// Resets the peak-RSS watermark (VmHWM) so the next reading covers only what follows.
/// Needs write access to /proc/<pid>/clear_refs (own process or root); false when refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Peak resident set size (VmHWM) in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The whole machine's CPU time so far, all cores, in USER_HZ ticks.
#[derive(Clone, Copy)]
pub struct Machine {
    /// Every state summed (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
    /// idle + iowait: time no process could use.
    pub idle: u64,
}

/// Reads the aggregate `cpu` line of /proc/stat.
pub fn machine() -> Option<Machine> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    Some(Machine {
        total: v.iter().sum(),
        idle: *v.get(3)? + *v.get(4)?,
    })
}
