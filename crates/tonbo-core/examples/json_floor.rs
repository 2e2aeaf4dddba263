//! The CPU floor for `make bench`: read NDJSON files line by line and parse every line as JSON
//! without keeping anything (`serde::de::IgnoredAny`). A stage that parses its input once cannot
//! beat this; ratios in the benchmark table are taken against it.
//!
//! Usage: cargo run --release --example json_floor -- FILE...

use std::io::Write;

fn main() -> std::process::ExitCode {
    let mut lines = 0u64;
    let mut bytes = 0u64;
    for path in std::env::args_os().skip(1) {
        let input = match tonbo_core::Input::open(std::path::Path::new(&path)) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("json_floor: {e:#}");
                return std::process::ExitCode::from(2);
            }
        };
        let mut reader = input.lines();
        while let Ok(Some(line)) = reader.next_line() {
            bytes += line.bytes.len() as u64 + 1;
            if serde_json::from_slice::<serde::de::IgnoredAny>(line.bytes).is_ok() {
                lines += 1;
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "json_floor: {lines} lines, {bytes} bytes parsed"
    );
    std::process::ExitCode::SUCCESS
}
