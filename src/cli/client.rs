//! The client side of the control API, for the commands that talk to the running
//! server (`open`, `close`, `status`, `doctor`), so the server stays the only writer of
//! the state. The token comes from the config or the file the server made.

use std::cell::Cell;
use std::error::Error;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{Config, Secret};
use crate::model::api::{ErrorBody, ProofBody};
use crate::store::token;
use crate::system::outbound::{Agent, Failure};
use crate::twilio::signature;
use crate::util::ownership;

/// The control API is on this machine or the LAN: a slow answer means something is wrong.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// A nonce for the server's proof: 128 bits, never guessed ahead.
const NONCE_BYTES: usize = 16;
/// The proof answer is a few dozen bytes; whoever holds the port may send more.
const MAX_PROOF_BYTES: usize = 4096;

/// The control token: `control.token` (or `INTERCOM_CONTROL_TOKEN`), or the one the
/// server generated in `state_dir`.
fn control_token(config: &Config) -> Result<Secret, Box<dyn Error>> {
    if let Some(t) = &config.control.token {
        return Ok(t.clone());
    }
    // The service wrote it (as its own user): trusted once its directory is.
    let path = config.state_dir.join(token::TOKEN_FILE);
    crate::cli::files::readable(&path)?;
    if path.symlink_metadata().is_ok() {
        ownership::check_state_dir(&config.state_dir)?;
        let service = std::fs::metadata(&config.state_dir).ok().map(|m| m.uid());
        ownership::check_private_file(&path, service)?;
    }
    let file = path.display();
    let none =
        format!("no control token yet: set control.token, or start `intercom serve` once to create {file}");
    Ok(token::read_token(&config.state_dir)?.ok_or(none)?)
}

/// A client of the running server's control API.
pub struct Client {
    agent: Agent,
    /// `http://host:port` of the control listener.
    pub base: String,
    token: Secret,
    /// Whether the listener proved it knows the token (see [`signature::PROOF_PATH`]).
    proven: Cell<bool>,
}

impl Client {
    pub fn new(config: &Config, timeout: Duration) -> Result<Client, Box<dyn Error>> {
        let agent = Agent::plain(timeout);
        // An IPv6 address comes out bracketed, as URLs need.
        let base = format!("http://{}", crate::util::local_address(config.control.listen));
        Ok(Client { agent, base, token: control_token(config)?, proven: Cell::new(false) })
    }

    fn unreachable(&self, e: Failure) -> String {
        format!("cannot reach the intercom server at {} ({e}); is `intercom serve` running?", self.base)
    }

    /// Whoever holds the control port gets the token with the first request: first make
    /// it prove that it knows the token already, over a fresh nonce.
    fn prove_server(&self) -> Result<(), Box<dyn Error>> {
        if self.proven.get() {
            return Ok(());
        }
        let nonce = crate::util::random_hex(NONCE_BYTES).map_err(|e| format!("no nonce: {e}"))?;
        let url = format!("{}{}?nonce={nonce}", self.base, signature::PROOF_PATH);
        let sent = self.agent.send("GET", &url, &[("X-Intercom-Client", "cli")], None);
        let answer = sent.map_err(|e| self.unreachable(e))?;
        let ok = answer.status == 200 && answer.body.len() <= MAX_PROOF_BYTES;
        let why = match serde_json::from_slice::<ProofBody>(&answer.body) {
            Ok(ProofBody { proof }) if ok && signature::verify_control_proof(self.token.expose(), &nonce, &proof) => {
                self.proven.set(true);
                return Ok(());
            }
            Ok(_) if ok => "the server there holds a different control token than this command read: if you changed control.token or INTERCOM_CONTROL_TOKEN, restart the server so it uses the new one (`sudo systemctl restart intercom`); else give this command the server's config with --config (or another program holds the port)",
            _ => "it is not an intercom server (it cannot prove that it knows the token): is another program holding the port?",
        };
        Err(format!("the token was not sent to {}: {why}", self.base).into())
    }

    /// `GET path`, the answer read as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Box<dyn Error>> {
        self.decode(&self.call("GET", path, None)?)
    }

    /// `POST path` with `body` as JSON, the answer read as `T`.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Box<dyn Error>> {
        // `()` is sent as no body at all: the routes that take none refuse nothing else.
        let text = serde_json::to_string(body)?;
        self.decode(&self.call("POST", path, Some(if text == "null" { "" } else { &text }))?)
    }

    /// `DELETE path`; the answer has no body.
    pub fn delete(&self, path: &str) -> Result<(), Box<dyn Error>> {
        self.call("DELETE", path, None).map(drop)
    }

    fn decode<T: DeserializeOwned>(&self, text: &str) -> Result<T, Box<dyn Error>> {
        serde_json::from_slice(text.as_bytes())
            .map_err(|e| format!("unexpected answer from {}: {e}", self.base).into())
    }

    /// One request, with `json` as its body; the answer's text (empty for 204). A refusal
    /// is an error with the server's reason.
    fn call(&self, method: &str, path: &str, json: Option<&str>) -> Result<String, Box<dyn Error>> {
        self.prove_server()?;
        let bearer = format!("Bearer {}", self.token.expose());
        let headers = [("Authorization", bearer.as_str()), ("X-Intercom-Client", "cli")];
        let body = json.map(|j| ("application/json", j.as_bytes()));
        let url = format!("{}{path}", self.base);
        let answer = self.agent.send(method, &url, &headers, body).map_err(|e| self.unreachable(e))?;
        let (status, text) = (answer.status, answer.text());
        if !(200..300).contains(&status) {
            let reason =
                serde_json::from_slice::<ErrorBody>(text.as_bytes()).map_or(String::new(), |e| e.error);
            return Err(Box::new(Refused { status, reason }));
        }
        Ok(text)
    }
}

/// The server refused a request. Shown in words: the API's status code and its hint for
/// scripts (what follows "; send", a JSON example) are left out.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.reason.split("; send ").next() {
            Some(reason) if !reason.is_empty() => write!(f, "the server did not do it: {reason}"),
            _ => write!(f, "the server did not do it, and gave no reason (see `journalctl -u intercom`)"),
        }
    }
}

impl Error for Refused {}

/// The answer to a request for one thing by its ID; `None` if the server has no such ID.
pub fn found<T>(answer: Result<T, Box<dyn Error>>) -> Result<Option<T>, Box<dyn Error>> {
    match answer {
        Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.status == 404) => Ok(None),
        answer => answer.map(Some),
    }
}
