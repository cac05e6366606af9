//! Sizes and durations as people write them, for the runtime's messages (and the caller's
//! `--verbose` lines).

use std::time::Duration;

/// `64 MiB`, `1.5 GiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(n: usize) -> String {
    const UNITS: &[(usize, &str)] = &[(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for &(size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// `5 s`, `1 h`, `1.5 s`, `250 ms`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if d.subsec_nanos() == 0 && s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if d >= Duration::from_secs(1) {
        if d.subsec_millis() == 0 {
            format!("{s} s")
        } else {
            format!("{:.1} s", d.as_secs_f64())
        }
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_written() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 h");
        assert_eq!(human_duration(Duration::from_millis(300)), "300 ms");
    }
}
