//! URL checks for the config: the public webhook URL (signatures are computed over it, so
//! it must be exact) and notification targets, and the part of a URL that may be logged.

/// Where a URL's authority (`user@host:port`) starts and ends: after `scheme://`, up to
/// the path, query or fragment.
fn authority(u: &str) -> (usize, usize) {
    let start = u.find("://").map_or(0, |i| i + 3);
    (start, u[start..].find(['/', '?', '#']).map_or(u.len(), |i| start + i))
}

/// An http(s) URL's authority; an error without the scheme or a host.
fn http_authority(u: &str) -> Result<&str, String> {
    if !u.starts_with("https://") && !u.starts_with("http://") {
        return Err("must start with https:// (or http://)".into());
    }
    match authority(u) {
        (start, end) if start == end => Err("has no host".into()),
        (start, end) => Ok(&u[start..end]),
    }
}

/// An http(s) URL with a host and nothing after the path, returned without a trailing
/// slash, so that `public_url + "/voice"` is exactly what Twilio signs.
pub fn check_public_url(u: &str) -> Result<String, String> {
    http_authority(u)?;
    if u.contains(['?', '#']) || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold a query, fragment or spaces".into());
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// Where REST credentials go (`twilio.api_base`): a public URL, and https unless the
/// host is this machine, since HTTP Basic credentials would cross the network in clear.
pub fn check_api_base(u: &str) -> Result<String, String> {
    let u = check_public_url(u)?;
    if u.starts_with("http://") && !is_loopback(&u) {
        return Err("must start with https:// (http:// only to a loopback address such as 127.0.0.1: \
             the API credentials would cross the network in clear text)"
            .into());
    }
    Ok(u)
}

/// The public webhook URL: scheme and host (and port) only. Twilio is sent to it plus
/// `/voice`, and signatures are computed over it plus the path the server sees; a path
/// here (the natural copy of the webhook URL) would make every signature fail.
pub fn check_public_origin(u: &str) -> Result<String, String> {
    let url = check_public_url(u)?;
    match &url[authority(&url).1..] {
        "" => Ok(url),
        path => Err(format!("must be only the scheme and host (Twilio calls it plus /voice): remove {path}")),
    }
}

/// A notification target: http(s), a host, no spaces; a query is allowed (ntfy templates).
/// Plain http stays allowed (Home Assistant on the LAN is usually http), but not with a
/// `user:password@` in it unless the host is this machine.
pub fn check_target_url(u: &str) -> Result<String, String> {
    let authority = http_authority(u)?;
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not hold spaces".into());
    }
    if u.starts_with("http://") && authority.contains('@') && !is_loopback(u) {
        let why = "holds a user and password: use https:// so they do not cross the network in clear text";
        return Err(why.into());
    }
    Ok(u.to_string())
}

/// Whether an http(s) URL's host is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
pub fn is_loopback(u: &str) -> bool {
    let (start, end) = authority(u);
    let host_port = u[start..end].rsplit_once('@').map_or(&u[start..end], |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The part of a URL that may be logged: scheme and host, never the path or query,
/// which often hold the secret (an ntfy topic, a Home Assistant webhook id).
pub fn url_origin(u: &str) -> &str {
    let (start, end) = authority(u);
    // user:password@host: drop the credentials too.
    match u[start..end].rfind('@') {
        Some(at) => &u[start + at + 1..end],
        None => &u[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_is_https_unless_loopback() {
        for ok in ["https://api.twilio.com", "http://127.0.0.1:8080", "http://localhost/", "http://[::1]:9/x"]
        {
            assert!(check_api_base(ok).is_ok(), "{ok}");
        }
        for bad in
            ["http://api.twilio.com", "http://192.0.2.1:80", "http://127.0.0.1@evil.example", "http://[::2]"]
        {
            assert!(check_api_base(bad).unwrap_err().contains("https://"), "{bad}");
        }
    }

    #[test]
    fn plain_http_targets_carry_no_password_off_this_machine() {
        assert!(check_target_url("http://ha.local:8123/api/webhook/id").is_ok());
        assert!(check_target_url("https://u:p@ntfy.example/topic").is_ok());
        assert!(check_target_url("http://u:p@127.0.0.1:9/t").is_ok());
        assert!(check_target_url("http://u:p@ntfy.example/topic").unwrap_err().contains("https://"));
    }

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
