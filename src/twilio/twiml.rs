//! TwiML answers. Every value is XML-escaped; these shapes are all we ever send. The
//! action URLs that bring Twilio back to us are built here, and only here.

use std::fmt::Write;

use crate::model::record::Decision;
use crate::rules::codes::CODE_DIGITS;
use crate::system::outbound::form;

/// The usual answer's size: a forward to two numbers with the default message is about
/// 250 bytes.
const TYPICAL_TWIML_BYTES: usize = 320;
/// The keypad prompt: short, because the visitor without a code waits through it.
const CODE_PROMPT: &str = "Enter your code, or hold to call the resident.";
/// Seconds Twilio waits for the first (and each next) digit: long enough to find the
/// keys, short enough that a visitor without a code is soon put through.
const CODE_TIMEOUT_SECS: u32 = 5;
/// Where our keypad prompt sends the digits.
pub const CODE_PATH: &str = "/voice/code";
/// Where a sequential order's `<Dial action>` reports how the dial ended.
pub const NEXT_PATH: &str = "/voice/next";

/// What an answer's action URLs are made of: our public URL (empty: relative URLs) and
/// the number overrides of the request (name, decoded value), carried so that what
/// follows a prompt or a dial forwards the same way.
#[derive(Default)]
pub struct Callbacks<'a> {
    pub base: &'a str,
    pub carry: &'a [(String, String)],
    /// Whether a forward's dial reports its end to [`NEXT_PATH`], so the call is known to
    /// ring until then. The webhook's answers do; the fallback TwiML must not, since it
    /// runs when this server cannot be reached (it says the message after the dial itself).
    pub dial_action: bool,
}

impl Callbacks<'_> {
    /// `base` + `path`, then the carried overrides and `step` as its query.
    fn url(&self, path: &str, step: Option<usize>) -> String {
        let step = step.map(|i| i.to_string());
        let carried = self.carry.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        let query = form(&carried.chain(step.as_deref().map(|i| ("step", i))).collect::<Vec<_>>());
        let sep = if query.is_empty() { "" } else { "?" };
        format!("{}{path}{sep}{query}", self.base)
    }
}

/// The TwiML for `decision`, its action URLs (a prompt, a dial in sequence) made of `links`.
pub fn render(decision: &Decision, links: &Callbacks) -> String {
    // Room for the usual answer (a Dial to two numbers and its message) in one allocation.
    let mut x = String::with_capacity(TYPICAL_TWIML_BYTES);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    match decision {
        // The only verb, so Twilio never answers (or bills) the call.
        Decision::Reject => x.push_str("<Reject/>"),
        Decision::Unlock { digits } => wrap(&mut x, "<Play digits=\"", digits, "\"/>"),
        Decision::Forward { numbers, timeout_secs, no_answer_message } => {
            // answerOnBridge: the visitor hears ringing until the resident picks up.
            let _ = write!(x, "<Dial answerOnBridge=\"true\" timeout=\"{timeout_secs}\"");
            if links.dial_action {
                // Everyone was rung: the next step is past the last, the message.
                wrap(&mut x, " action=\"", &links.url(NEXT_PATH, Some(numbers.len())), "\" method=\"POST\"");
            }
            x.push('>');
            for n in numbers {
                wrap(&mut x, "<Number>", n.as_str(), "</Number>");
            }
            x.push_str("</Dial>");
            // With an action, Twilio runs nothing after the dial: `/voice/next` says it.
            if !links.dial_action {
                wrap(&mut x, "<Say>", no_answer_message, "</Say>");
            }
        }
        // One person of a sequential order; Twilio posts the outcome to the action, and
        // whatever follows a Dial with an action is never run.
        Decision::DialOne { number, timeout_secs, next } => {
            let _ = write!(x, "<Dial answerOnBridge=\"true\" timeout=\"{timeout_secs}\"");
            wrap(&mut x, " action=\"", &links.url(NEXT_PATH, Some(*next)), "\" method=\"POST\">");
            wrap(&mut x, "<Number>", number.as_str(), "</Number></Dial>");
        }
        Decision::Hangup => x.push_str("<Hangup/>"),
        Decision::NobodyToCall { message } => wrap(&mut x, "<Say>", message, "</Say><Hangup/>"),
        // Twilio calls the action with the digits, or with none after the timeout
        // (actionOnEmptyResult), and that answer forwards as usual.
        Decision::AskCode => {
            let _ = write!(
                x,
                "<Gather input=\"dtmf\" numDigits=\"{CODE_DIGITS}\" timeout=\"{CODE_TIMEOUT_SECS}\" action=\"{}\" method=\"POST\" actionOnEmptyResult=\"true\"><Say>{CODE_PROMPT}</Say></Gather>",
                escape(&links.url(CODE_PATH, None))
            );
        }
    }
    x.push_str("</Response>\n");
    x
}

/// Escapes text for both element content and double-quoted attributes. Characters XML 1.0
/// cannot hold at all (most C0 controls) are dropped, so the document stays well-formed.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Appends `text` escaped between `before` and `after`, which are markup.
fn wrap(out: &mut String, before: &str, text: &str, after: &str) {
    out.push_str(before);
    escape_into(out, text);
    out.push_str(after);
}

/// Appends `s` escaped to `out`: the answer is built in one buffer, with no string per
/// value on the hot path.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::phone::PhoneNumber;

    #[test]
    fn escapes_markup_and_drops_controls() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
        assert_eq!(escape("a\u{0}b\u{1b}c\nd"), "abc\nd");
    }

    #[test]
    fn the_three_answers() {
        assert_eq!(
            render(&Decision::Reject, &Callbacks::default()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Reject/></Response>\n"
        );
        assert!(render(&Decision::Unlock { digits: "ww9".into() }, &Callbacks::default())
            .contains("<Response><Play digits=\"ww9\"/></Response>"));
        let fwd = render(
            &Decision::Forward {
                numbers: vec![
                    PhoneNumber::parse("+15552223333").unwrap(),
                    PhoneNumber::parse("+447700900123").unwrap(),
                ],
                timeout_secs: 25,
                no_answer_message: "Nobody's <home> & sorry".into(),
            },
            &Callbacks::default(),
        );
        assert!(fwd.contains(
            "<Dial answerOnBridge=\"true\" timeout=\"25\"><Number>+15552223333</Number><Number>+447700900123</Number></Dial>"
        ));
        assert!(fwd.contains("<Say>Nobody&apos;s &lt;home&gt; &amp; sorry</Say>"));
    }

    #[test]
    fn the_code_prompt_and_a_dial_in_sequence_carry_the_overrides() {
        let carry = [
            ("ExpectedFrom".to_string(), "+1 (555) 888-9999".to_string()),
            ("PhoneNumberToDial".to_string(), "+15552223333,+15554445555".to_string()),
        ];
        let links = Callbacks { base: "https://d.example", carry: &carry, dial_action: true };
        let query =
            "ExpectedFrom=%2B1+%28555%29+888-9999&amp;PhoneNumberToDial=%2B15552223333,%2B15554445555";
        let x = render(&Decision::AskCode, &links);
        assert!(x.contains(&format!(
            "<Response><Gather input=\"dtmf\" numDigits=\"6\" timeout=\"5\" action=\"https://d.example/voice/code?{query}\" method=\"POST\" actionOnEmptyResult=\"true\"><Say>Enter your code, or hold to call the resident.</Say></Gather></Response>"
        )), "{x}");
        let number = PhoneNumber::parse("+15552223333").unwrap();
        let x = render(&Decision::DialOne { number, timeout_secs: 20, next: 2 }, &links);
        assert!(x.contains(&format!(
            "<Response><Dial answerOnBridge=\"true\" timeout=\"20\" action=\"https://d.example/voice/next?{query}&amp;step=2\" method=\"POST\"><Number>+15552223333</Number></Dial></Response>"
        )), "{x}");
        let x = render(&Decision::AskCode, &Callbacks::default());
        assert!(x.contains("action=\"/voice/code\""), "no public URL: relative, as before: {x}");
        let two = ["+15552223333", "+15554445555"].map(|n| PhoneNumber::parse(n).unwrap()).to_vec();
        let forward = Decision::Forward { numbers: two, timeout_secs: 25, no_answer_message: "bye".into() };
        let x = render(&forward, &links);
        assert!(x.contains(&format!(
            "<Response><Dial answerOnBridge=\"true\" timeout=\"25\" action=\"https://d.example/voice/next?{query}&amp;step=2\" method=\"POST\"><Number>+15552223333</Number><Number>+15554445555</Number></Dial></Response>"
        )), "the message comes from /voice/next: {x}");
        let odd = [("ExpectedFrom".to_string(), "a&b=c%d+é".to_string())];
        let url = Callbacks { base: "", carry: &odd, dial_action: true }.url(NEXT_PATH, Some(1));
        assert_eq!(url, "/voice/next?ExpectedFrom=a%26b%3Dc%25d%2B%C3%A9&step=1");
    }
}
