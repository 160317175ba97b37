//! `application/x-www-form-urlencoded` parsing, for query strings and Twilio's POST bodies.
//! Strict: bad percent-encoding or non-UTF-8 is an error, never a guess.

use crate::http::HttpError;

/// Twilio sends about 30 parameters with a voice call; anything far beyond is not Twilio.
pub const MAX_PARAMS: usize = 200;

/// Name/value pairs in order, repeats kept (signatures cover every value).
pub type Params = Vec<(String, String)>;

/// The pairs, or why the input is refused (for a 400's message: no caller branches on it).
pub fn parse(input: &[u8]) -> Result<Params, &'static str> {
    let mut out = Vec::new();
    for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err("too many parameters");
        }
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let (name, value) = (halves.next().unwrap_or_default(), halves.next().unwrap_or_default());
        out.push((decode(name)?, decode(value)?));
    }
    Ok(out)
}

fn decode(s: &[u8]) -> Result<String, &'static str> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(s.get(i + 1)), hex(s.get(i + 2))) else {
                    return Err("invalid percent-encoding");
                };
                bytes.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| "parameters are not UTF-8")
}

/// The value of a parameter that must appear at most once: a repeat is ambiguous, and
/// ambiguity about who is calling must not be resolved in the caller's favour.
pub fn single<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, HttpError> {
    let mut found = params.iter().filter(|(n, _)| n == name);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(HttpError::BadRequest(format!("parameter {name} given more than once"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Params, &'static str> {
        parse(s.as_bytes())
    }

    #[test]
    fn decodes_pairs_plus_and_percent() {
        let got = p("From=%2B1+555%20888&To=&flag&a=b=c&&").unwrap();
        let want: Params = [("From", "+1 555 888"), ("To", ""), ("flag", ""), ("a", "b=c")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(p("x=%C3%A9").unwrap()[0].1, "é");
        assert_eq!(p("").unwrap(), vec![]);
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(p("a=%4"), Err("invalid percent-encoding"));
        assert_eq!(p("a=%zz"), Err("invalid percent-encoding"));
        assert_eq!(p("a=%"), Err("invalid percent-encoding"));
        assert_eq!(p("a=%FF"), Err("parameters are not UTF-8"));
        assert_eq!(parse(b"a=\xff"), Err("parameters are not UTF-8"));
        assert_eq!(p(&"a=1&".repeat(MAX_PARAMS + 1)), Err("too many parameters"));
    }

    #[test]
    fn single_refuses_repeats() {
        let params = p("From=1&From=2&To=3").unwrap();
        assert!(single(&params, "From").is_err());
        assert_eq!(single(&params, "To"), Ok(Some("3")));
        assert_eq!(single(&params, "CallSid"), Ok(None));
    }
}
