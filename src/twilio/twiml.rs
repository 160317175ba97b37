//! TwiML answers. Every value is XML-escaped; these shapes are all we ever send.

use std::fmt::Write;

use crate::model::record::Decision;
use crate::rules::codes::CODE_DIGITS;

/// The usual answer's size: a forward to two numbers with the default message is about
/// 250 bytes.
const TYPICAL_TWIML_BYTES: usize = 320;
/// The keypad prompt: short, because the visitor without a code waits through it.
const CODE_PROMPT: &str = "Enter your code, or hold to call the resident.";
/// Seconds Twilio waits for the first (and each next) digit: long enough to find the
/// keys, short enough that a visitor without a code is soon put through.
const CODE_TIMEOUT_SECS: u32 = 5;

pub fn render(decision: &Decision) -> String {
    // Room for the usual answer (a Dial to two numbers and its message) in one allocation.
    let mut x = String::with_capacity(TYPICAL_TWIML_BYTES);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    match decision {
        // The only verb, so Twilio never answers (or bills) the call.
        Decision::Reject => x.push_str("<Reject/>"),
        Decision::Unlock { digits } => {
            x.push_str("<Play digits=\"");
            escape_into(&mut x, digits);
            x.push_str("\"/>");
        }
        Decision::Forward { numbers, timeout_secs, no_answer_message } => {
            // answerOnBridge: the visitor hears ringing until the resident picks up.
            let _ = write!(x, "<Dial answerOnBridge=\"true\" timeout=\"{timeout_secs}\">");
            for n in numbers {
                x.push_str("<Number>");
                escape_into(&mut x, n.as_str());
                x.push_str("</Number>");
            }
            x.push_str("</Dial><Say>");
            escape_into(&mut x, no_answer_message);
            x.push_str("</Say>");
        }
        Decision::NobodyToCall { message } => {
            x.push_str("<Say>");
            escape_into(&mut x, message);
            x.push_str("</Say><Hangup/>");
        }
        // Twilio calls `action` with the digits, or with none after the timeout
        // (actionOnEmptyResult), and that answer forwards as usual.
        Decision::AskCode { action } => {
            let _ = write!(
                x,
                "<Gather input=\"dtmf\" numDigits=\"{CODE_DIGITS}\" timeout=\"{CODE_TIMEOUT_SECS}\" action=\"{}\" method=\"POST\" actionOnEmptyResult=\"true\"><Say>{CODE_PROMPT}</Say></Gather>",
                escape(action)
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
            render(&Decision::Reject),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Reject/></Response>\n"
        );
        assert!(render(&Decision::Unlock { digits: "ww9".into() })
            .contains("<Response><Play digits=\"ww9\"/></Response>"));
        let fwd = render(&Decision::Forward {
            numbers: vec![
                PhoneNumber::parse("+15552223333").unwrap(),
                PhoneNumber::parse("+447700900123").unwrap(),
            ],
            timeout_secs: 25,
            no_answer_message: "Nobody's <home> & sorry".into(),
        });
        assert!(fwd.contains(
            "<Dial answerOnBridge=\"true\" timeout=\"25\"><Number>+15552223333</Number><Number>+447700900123</Number></Dial>"
        ));
        assert!(fwd.contains("<Say>Nobody&apos;s &lt;home&gt; &amp; sorry</Say>"));
    }

    #[test]
    fn the_code_prompt() {
        let x = render(&Decision::AskCode { action: "https://d.example/voice/code?a=1&b=2".into() });
        assert!(x.contains(
            "<Response><Gather input=\"dtmf\" numDigits=\"6\" timeout=\"5\" action=\"https://d.example/voice/code?a=1&amp;b=2\" method=\"POST\" actionOnEmptyResult=\"true\"><Say>Enter your code, or hold to call the resident.</Say></Gather></Response>"
        ), "{x}");
    }
}
