//! The `limits` section: bounds of both listeners that an admin (or a test) may tune.
//! Every other bound of the HTTP layer is a constant next to the code it protects.

use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

use crate::config::values::{duration, Refuse};

/// At least a second: below that keep-alive saves nothing, and a typo like `"30ms"` would
/// silently turn it off. At most ten minutes: a connection holds one of a listener's
/// capped threads for its whole life, and beyond a few minutes keep-alive saves nothing
/// more while an idle client pins its thread for longer. (The default: `DEFAULTS`.)
pub const CONNECTION_LIFETIME_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(600));

#[derive(Debug, Clone, Deserialize)]
pub struct LimitsConfig {
    /// How long a client may keep one connection to either listener: no request starts
    /// on a connection older than this, and the one under way is answered with
    /// `Connection: close`, so a keep-alive client cannot hold a thread forever with one
    /// slow request after another.
    #[serde(deserialize_with = "connection_lifetime")]
    pub connection_lifetime: Duration,
}

fn connection_lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = duration(d)?;
    let (lo, hi) = CONNECTION_LIFETIME_RANGE;
    if !(lo..=hi).contains(&t) {
        let (lo, hi) = (crate::util::time::human(lo), crate::util::time::human(hi));
        return Err(D::Error::refuse(format!("must be between {lo} and {hi}")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::time::Duration;

    fn lifetime(text: &str) -> Result<Duration, String> {
        parse(text, |_| None).map(|c| c.limits.connection_lifetime)
    }

    #[test]
    fn the_connection_lifetime_defaults_to_30s_and_is_bounded() {
        assert_eq!(lifetime("{}"), Ok(Duration::from_secs(30)));
        assert_eq!(lifetime(r#"{"limits": {"connection_lifetime": "3s"}}"#), Ok(Duration::from_secs(3)));
        assert_eq!(lifetime(r#"{"limits": {"connection_lifetime": "10m"}}"#), Ok(Duration::from_secs(600)));
        for bad in ["999ms", "11m", "0s", "soon"] {
            let e = lifetime(&format!(r#"{{"limits": {{"connection_lifetime": "{bad}"}}}}"#)).unwrap_err();
            assert!(e.contains("`limits.connection_lifetime`"), "{bad}: {e}");
        }
        let e = lifetime(r#"{"limits": {"connection_lifetime": "1h"}}"#).unwrap_err();
        assert!(e.ends_with("must be between 1s and 10m"), "{e}");
        let e = lifetime(r#"{"limits": {"lifetime": "3s"}}"#).unwrap_err();
        assert!(e.contains("`limits.lifetime`: unknown key"), "{e}");
    }
}
