//! `intercom twilio-setup`: points the Twilio number at this server through Twilio's
//! REST API; `intercom fallback-twiml`: the forward-only TwiML for the number's fallback.
//!
//! Setup looks the number up, refuses what it must not override (a TwiML App or a SIP
//! trunk routes the calls: only the user can decide to drop that), prints each field as
//! before → after, and changes them in one form POST, or in none when nothing differs.

use std::error::Error;
use std::time::Duration;

use crate::cli::out::say;
use crate::config::Config;
use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;
use crate::twilio::rest::{IncomingNumber, Rest};

/// One REST request of the setup. Twilio answers in well under a second; a slow mobile
/// uplink gets plenty of slack.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Twilio calls the webhook with POST: parameters in the body, as the signature expects.
pub const VOICE_METHOD: &str = "POST";

/// The TwiML a closed window gives, for a TwiML Bin: it forwards to every `forward_to`
/// number and never unlocks (the Bin cannot know whether a window is open).
pub fn fallback_twiml(config: &Config) -> Result<String, Box<dyn Error>> {
    if config.forward_to.is_empty() {
        return Err("forward_to is empty: the fallback forwards calls to you, so set forward_to to your phone number(s) first".into());
    }
    let forward = Decision::Forward {
        numbers: config.forward_to.clone(),
        timeout_secs: config.dial_timeout.as_secs(),
        no_answer_message: config.no_answer_message.clone(),
    };
    Ok(crate::twilio::twiml::render(&forward, &Default::default()))
}

/// The URL Twilio must call: exactly what signatures are computed over.
pub fn voice_url(public_url: &str) -> String {
    format!("{public_url}/voice")
}

/// One field of the number: its API parameter name, value now, and the value we want.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub before: Option<String>,
    pub after: String,
}

impl Field {
    pub fn changes(&self) -> bool {
        let before = self.before.as_deref().unwrap_or("");
        // Twilio spells methods in capitals; compare them as methods, URLs exactly.
        if self.name.ends_with("Method") {
            !before.eq_ignore_ascii_case(&self.after)
        } else {
            before != self.after
        }
    }
}

/// The fields setup manages, from the number as Twilio has it now.
pub fn plan(public_url: &str, fallback_url: Option<&str>, n: &IncomingNumber) -> Vec<Field> {
    let field =
        |name, now: &Option<String>, want: &str| Field { name, before: now.clone(), after: want.into() };
    let mut fields = vec![
        field("VoiceUrl", &n.voice_url, &voice_url(public_url)),
        field("VoiceMethod", &n.voice_method, VOICE_METHOD),
    ];
    if let Some(fallback) = fallback_url {
        fields.push(field("VoiceFallbackUrl", &n.voice_fallback_url, fallback));
        fields.push(field("VoiceFallbackMethod", &n.voice_fallback_method, VOICE_METHOD));
    }
    fields
}

pub fn twilio_setup(config: &Config, dry_run: bool) -> Result<(), Box<dyn Error>> {
    let no_number = "set twilio.number to the Twilio number your intercom calls (E.164, like +15550001111)";
    let number = config.twilio.number.as_ref().ok_or(no_number)?;
    let no_url = "set webhook.public_url to the https URL your tunnel serves";
    let public_url = config.webhook.public_url.as_deref().ok_or(no_url)?;
    let rest = Rest::new(&config.twilio, SETUP_TIMEOUT)?;
    let current = look_up(&rest, number)?;
    if let Some(why) = current.routed_elsewhere() {
        return Err(format!("{why}; then run twilio-setup again").into());
    }
    let fallback = config.twilio.fallback_url.as_deref();
    let fields = plan(public_url, fallback, &current);
    say!("{number} ({}):", current.sid);
    for f in &fields {
        let after = if f.changes() { format!("→ {}", f.after) } else { "(unchanged)".into() };
        say!("  {:<20} {} {after}", f.name, shown(f.before.as_deref()));
    }
    if fallback.is_none() {
        let (name, now) = ("VoiceFallbackUrl", shown(current.voice_fallback_url.as_deref()));
        say!(
            "  {name:<20} {now} (left alone: twilio.fallback_url is not set; see `intercom fallback-twiml`)"
        );
    }
    let changes: Vec<(&str, &str)> =
        fields.iter().filter(|f| f.changes()).map(|f| (f.name, f.after.as_str())).collect();
    if changes.is_empty() {
        say!("nothing to change; no request sent");
        return Ok(());
    }
    if dry_run {
        say!("dry run: {} field(s) would change; nothing was sent", changes.len());
        return Ok(());
    }
    let updated = rest.update_number(&current.sid, &changes).map_err(|e| rest.explain(&e))?;
    if let Some(f) = plan(public_url, fallback, &updated).iter().find(|f| f.changes()) {
        return Err(format!(
            "Twilio accepted the update but {} is still {:?}; run twilio-setup again",
            f.name, f.before
        )
        .into());
    }
    say!("updated {} field(s)", changes.len());
    Ok(())
}

/// A value from Twilio's answer, for the terminal: unset named, control characters dropped.
fn shown(value: Option<&str>) -> String {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => v.chars().filter(|c| !c.is_control()).collect(),
        None => "(not set)".into(),
    }
}

/// The number as Twilio has it; or why not: a REST error explained, or that the account
/// does not have it (with the numbers it does have).
pub fn look_up(rest: &Rest, number: &PhoneNumber) -> Result<IncomingNumber, String> {
    if let Some(n) = rest.find_number(number).map_err(|e| rest.explain(&e))? {
        return Ok(n);
    }
    let have = match rest.account_numbers() {
        Ok(list) if list.is_empty() => "it has no numbers".to_string(),
        Ok(list) => format!("its numbers are {}", list.join(", ")),
        Err(e) => format!("and listing its numbers failed: {}", rest.explain(&e)),
    };
    Err(format!("{number} is not a number of this Twilio account ({have}); fix twilio.number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_compares_urls_exactly_and_methods_in_any_case() {
        let n = IncomingNumber {
            voice_url: Some("https://door.example.com/voice/".into()),
            voice_method: Some("post".into()),
            ..Default::default()
        };
        let p = plan("https://door.example.com", None, &n);
        assert_eq!(p.len(), 2);
        assert!(p[0].changes(), "a trailing slash is a different URL to the signature");
        assert!(!p[1].changes());
        let p = plan("https://door.example.com", Some("https://handler.twilio.com/twiml/EH1"), &n);
        assert_eq!(
            p.iter().map(|f| f.name).collect::<Vec<_>>()[2..],
            ["VoiceFallbackUrl", "VoiceFallbackMethod"]
        );
        assert!(p[2].changes() && p[3].changes());
    }

    #[test]
    fn fallback_twiml_forwards_and_never_unlocks() {
        let c =
            crate::config::parse(r#"{"forward_to": ["+15552223333", "+447700900123"]}"#, |_| None).unwrap();
        let x = fallback_twiml(&c).unwrap();
        assert_eq!(x.matches("<Number>").count(), 2);
        assert!(!x.contains("<Play") && x.contains("<Say>"));
        let none = crate::config::parse("{}", |_| None).unwrap();
        assert!(fallback_twiml(&none).unwrap_err().to_string().contains("forward_to"));
    }
}
