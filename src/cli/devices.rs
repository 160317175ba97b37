//! `intercom pair NAME` and `intercom devices [rm ID]`: paired phones through the
//! running server's control API (the server keeps the only list). `pair` prints the
//! one-time link and a QR code of it, for the phone's camera.

use std::error::Error;

use crate::cli::client::{found, Client};
use crate::cli::commands::page_address;
use crate::cli::out::say;
use crate::config::Config;
use crate::model::api::{DeviceBody, DevicesBody, PairingBody, PairingRequest};

/// `pair …` / `devices …`, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum DeviceArgs {
    Pair(String),
    List,
    Rm(String),
}

pub fn run(args: DeviceArgs, api: &Client, config: &Config) -> Result<(), Box<dyn Error>> {
    match args {
        DeviceArgs::Pair(name) => {
            let answer: PairingBody = api.post("/api/pairings", &PairingRequest { name })?;
            // Where the phone reaches the page: `http://LAN-address:port`.
            let link = format!("{}{}", page_address(config), answer.path);
            let minutes = answer.valid_seconds / 60;
            // Built without the `qr` feature: the link alone.
            #[cfg(feature = "qr")]
            crate::cli::out::say_raw!("{}", qr(&link)?);
            say!("Scan this with {:?}, or open this link on it:", answer.name);
            say!("  {link}");
            say!("It works once, for {minutes} minutes. The phone must be on the home network.");
        }
        DeviceArgs::List => {
            let list: DevicesBody = api.get("/api/devices")?;
            if list.devices.is_empty() {
                say!("no paired devices; pair one with `intercom pair \"Anna's phone\"`");
            }
            for d in &list.devices {
                say!("{}  {}", d.id, describe(d));
            }
        }
        DeviceArgs::Rm(id) => {
            found(api.delete(&format!("/api/devices/{id}")))?.ok_or(format!(
                "there is no paired device {id}: `intercom devices` lists them and their IDs"
            ))?;
            say!("removed device {id}: it is shut out from its next request on");
        }
    }
    Ok(())
}

/// `"Anna's phone", paired 2026-12-01 03:00 CET, last used 2026-12-01 04:00 CET`.
fn describe(d: &DeviceBody) -> String {
    let last_used = d.last_used.map_or("never".into(), crate::util::time::local);
    format!("{:?}, paired {}, last used {last_used}", d.name, crate::util::time::local(d.paired))
}

/// The QR code as text: two rows of modules per line (half blocks), with the quiet zone.
/// Light modules are drawn as blocks in the terminal's text colour, so on the usual dark
/// terminal the code shows dark on light as printed ones do (phone cameras also read
/// the inverted code a light terminal shows).
#[cfg(feature = "qr")]
fn qr(link: &str) -> Result<String, Box<dyn Error>> {
    let code = qrcode::QrCode::new(link.as_bytes()).map_err(|e| format!("cannot make a QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build()
        + "\n")
}

#[cfg(all(test, feature = "qr"))]
mod tests {
    #[test]
    fn the_qr_code_is_drawn_in_blocks() {
        assert!(super::qr("http://192.0.2.1:8081/pair#c=abc").unwrap().contains('█'));
    }
}
