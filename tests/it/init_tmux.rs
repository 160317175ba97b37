//! `intercom init` as a person types it: the real binary in a real terminal (tmux), keys
//! sent one answer at a time, the screen read back. Wrong answers are explained and asked
//! again, the Auth Token is not shown, and "ring the intercom now" takes the caller ID of
//! the call the running server rejects.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// How long a prompt may take to appear on a loaded machine.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH: &str = "fedcba9876543210fedcba9876543210";

/// A tmux server of its own (its own socket), killed on drop.
struct Terminal {
    socket: PathBuf,
    _dir: TempDir,
}

impl Terminal {
    fn start(command: &str) -> Terminal {
        let dir = TempDir::new("tmux");
        let socket = dir.path().join("tmux.sock");
        let t = Terminal { socket, _dir: dir };
        let o = t.tmux(&["new-session", "-d", "-s", "init", "-x", "160", "-y", "50", command]);
        assert!(o.status.success(), "tmux: {}", String::from_utf8_lossy(&o.stderr));
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (cross/deps.sh installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-J", "-t", "init", "-S", "-200"]).stdout)
            .to_string()
    }

    /// Waits until the screen holds `text` `count` times; returns the screen. The pane
    /// drops trailing spaces, so a prompt is matched without its own.
    fn wait_for(&self, text: &str, count: usize) -> String {
        let text = text.trim_end();
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return screen;
            }
            assert!(Instant::now() < deadline, "no {text:?} on the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types a line as a person does: the keys, then Enter.
    fn answer(&self, keys: &str) {
        if !keys.is_empty() {
            assert!(self.tmux(&["send-keys", "-t", "init", "-l", keys]).status.success());
        }
        assert!(self.tmux(&["send-keys", "-t", "init", "Enter"]).status.success());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn init_typed_in_a_terminal_asks_checks_and_learns_the_intercom() {
    let mut c = base_config();
    c.as_object_mut().unwrap().remove("intercom_number");
    let s = Server::start(c);
    let command = format!(
        "env -u INTERCOM_TWILIO_AUTH_TOKEN -u INTERCOM_CONTROL_TOKEN {} init --force --config {}; echo init-exit=$?; sleep 600",
        env!("CARGO_BIN_EXE_intercom"),
        s.config_path.display()
    );
    let t = Terminal::start(&command);

    t.wait_for("Account SID (AC…): ", 1);
    t.answer("AC123");
    t.wait_for("expected an Account SID", 1);
    t.wait_for("Account SID (AC…): ", 2);
    t.answer(SID);
    t.wait_for("Auth Token (not shown as you type): ", 1);
    t.answer(AUTH);
    t.wait_for("API key SID", 1);
    t.answer("");
    t.wait_for("Your Twilio phone number", 1);
    t.answer("+1 555 000 1111");
    t.wait_for("Your phone number(s) to ring", 1);
    // A list with one number written as at home: its place is named, and no +1 is guessed.
    t.answer("+1 555 222 3333, 555 222 4444");
    t.wait_for("number 2 of 2: \"555 222 4444\" has no country code", 1);
    t.wait_for("Your phone number(s) to ring", 2);
    t.answer("+1 555 222 3333");
    t.wait_for("The public URL", 1);
    t.answer("https://door.example.net/voice");
    t.wait_for("remove /voice; try again.", 1);
    t.wait_for("The public URL", 2);
    t.answer("https://door.example.net");
    t.wait_for("or Enter to learn it by ringing: ", 1);
    assert!(!t.screen().contains("warning:"), "an https URL is not warned about");
    t.answer("");
    t.wait_for("press your button at the building's door now", 1);

    let call = s.call("POST", "/voice", "CallSid=CAtmux1&From=%2B15557770002&To=%2B15550001111");
    assert!(call.body.contains("<Reject"), "{}", call.body);
    t.wait_for("A call came from +15557770002. Is this your intercom? [Y/n] ", 1);
    t.answer("");
    let screen = t.wait_for("init-exit=", 1);
    assert!(screen.contains("init-exit=0"), "{screen}");
    assert!(screen.contains("intercom_number is +15557770002"), "{screen}");
    // The next steps carry this config, and the page's address is one a phone can reach.
    let config = s.config_path.display();
    assert!(screen.contains(&format!("`sudo intercom doctor --config {config}`")), "{screen}");
    assert!(screen.contains(&format!("opens the page at http://{}/", s.control)), "{screen}");
    assert!(!screen.contains(AUTH), "the Auth Token was shown:\n{screen}");

    let c: Value = serde_json::from_str(&std::fs::read_to_string(&s.config_path).unwrap()).unwrap();
    assert_eq!(c["intercom_number"], "+15557770002");
    assert_eq!(c["twilio"]["account_sid"], SID);
    assert_eq!(c["webhook"]["public_url"], "https://door.example.net");
    let env = std::fs::read_to_string(s.config_path.with_file_name("intercom.env")).unwrap();
    assert!(env.contains(&format!("INTERCOM_TWILIO_AUTH_TOKEN={AUTH}")), "{env}");
}
