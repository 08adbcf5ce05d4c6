//! The Prometheus text format, as the textfile collector reads it.

use std::fmt::Write as _;

/// One gauge with its samples (`labels`, value); labels already escaped.
pub fn gauge(m: &mut String, name: &str, help: &str, samples: Vec<(String, String)>) {
    let _ = writeln!(m, "# HELP {name} {help}");
    let _ = writeln!(m, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(m, "{name} {value}");
        } else {
            let _ = writeln!(m, "{name}{{{labels}}} {value}");
        }
    }
}
