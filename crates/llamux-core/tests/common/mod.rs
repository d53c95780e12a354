//! Test assets named by environment variables (set by `cargo xtask test`, which fetches or
//! builds them). Without the variable a test says so and passes, unless `LLAMUX_REQUIRE_ASSETS`
//! is set, as it is in CI, where a missing asset fails.

use std::path::PathBuf;

/// The path in `var`, or `None` (with a note) when it is unset outside CI.
pub fn asset(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("LLAMUX_REQUIRE_ASSETS").is_some() => panic!("{var} is not set"),
        None => {
            eprintln!("skipped: {var} is not set (run through `cargo xtask test`)");
            None
        }
    }
}
