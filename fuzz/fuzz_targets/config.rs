//! The tools' configuration file parser (`llamux_client::config`): any text is refused with a
//! message or gives a valid configuration, and the configuration it gives reads back the same
//! from its own TOML (`llmctl config show` then editing the file changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_client::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut c = Config::default();
    if c.apply_toml(text).is_err() {
        assert_eq!(c, Config::default(), "a refused file changed the configuration");
        return;
    }
    assert_eq!(c.validate(), Ok(()));
    let again = c.to_toml();
    let mut d = Config::default();
    d.apply_toml(&again).unwrap_or_else(|e| panic!("its own TOML is refused: {e}\n{again}"));
    assert_eq!(d, c, "its own TOML reads back differently:\n{again}");
});
