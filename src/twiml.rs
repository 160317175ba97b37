//! TwiML answers. Every value is XML-escaped; the three shapes are all we ever send.

use std::fmt::Write;

use crate::record::Decision;

pub fn render(decision: &Decision) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>");
    match decision {
        // The only verb, so Twilio never answers (or bills) the call.
        Decision::Reject => x.push_str("<Reject/>"),
        Decision::Unlock { digits } => {
            let _ = write!(x, "<Play digits=\"{}\"/>", escape(digits));
        }
        Decision::Forward { numbers, timeout_secs, no_answer_message } => {
            // answerOnBridge: the visitor hears ringing until the resident picks up.
            let _ = write!(x, "<Dial answerOnBridge=\"true\" timeout=\"{timeout_secs}\">");
            for n in numbers {
                let _ = write!(x, "<Number>{}</Number>", escape(n.as_str()));
            }
            let _ = write!(x, "</Dial><Say>{}</Say>", escape(no_answer_message));
        }
        Decision::NobodyToCall { message } => {
            let _ = write!(x, "<Say>{}</Say><Hangup/>", escape(message));
        }
    }
    x.push_str("</Response>\n");
    x
}

/// Escapes text for both element content and double-quoted attributes. Characters XML 1.0
/// cannot hold at all (most C0 controls) are dropped, so the document stays well-formed.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::PhoneNumber;

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
}
