//! URL checks for the config: the public webhook URL (signatures are computed over it, so
//! it must be exact) and notification targets, and the part of a URL that may be logged.

/// An http(s) URL with a host and nothing after the path, returned without a trailing
/// slash, so that `public_url + "/voice"` is exactly what Twilio signs.
pub fn check_public_url(u: &str) -> Result<String, String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host".into());
    }
    if u.contains(['?', '#']) || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold a query, fragment or spaces".into());
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// The public webhook URL: scheme and host (and port) only. Twilio is sent to it plus
/// `/voice`, and signatures are computed over it plus the path the server sees; a path
/// here (the natural copy of the webhook URL) would make every signature fail.
pub fn check_public_origin(u: &str) -> Result<String, String> {
    let url = check_public_url(u)?;
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => {
            let path = &url[after_scheme + i..];
            Err(format!("must be only the scheme and host (Twilio calls it plus /voice): remove {path}"))
        }
        None => Ok(url),
    }
}

/// A notification target: http(s), a host, no spaces; a query is allowed (ntfy templates).
pub fn check_target_url(u: &str) -> Result<String, String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("must start with https:// (or http://)")?;
    if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
        return Err("has no host".into());
    }
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold spaces".into());
    }
    Ok(u.to_string())
}

/// The part of a URL that may be logged: scheme and host, never the path or query,
/// which often hold the secret (an ntfy topic, a Home Assistant webhook id).
pub fn url_origin(u: &str) -> &str {
    let after_scheme = u.find("://").map_or(0, |i| i + 3);
    let end = u[after_scheme..].find(['/', '?', '#']).map_or(u.len(), |i| after_scheme + i);
    let origin = &u[..end];
    // user:password@host: drop the credentials too.
    match origin[after_scheme..].rfind('@') {
        Some(at) => &origin[after_scheme + at + 1..],
        None => origin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_origin_has_no_path() {
        assert_eq!(check_public_origin("https://door.example.com/").unwrap(), "https://door.example.com");
        assert_eq!(check_public_origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        let e = check_public_origin("https://door.example.com/voice").unwrap_err();
        assert!(e.ends_with("remove /voice"), "{e}");
        assert!(check_public_origin("https://h.example/a/voice/").unwrap_err().ends_with("remove /a/voice"));
    }

    #[test]
    fn url_origins_hide_paths_queries_and_credentials() {
        assert_eq!(url_origin("https://ntfy.sh/topic?x=1"), "https://ntfy.sh");
        assert_eq!(url_origin("http://ha.local:8123/api/webhook/id"), "http://ha.local:8123");
        assert_eq!(url_origin("https://user:pw@host.example/p"), "host.example");
        assert_eq!(url_origin("https://host.example"), "https://host.example");
    }
}
