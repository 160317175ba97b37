//! `system/`: what this program asks of the machine: `boot.rs` (the boot id, and whether
//! the clock is confirmed synchronized, so a window from before a power cut is not trusted
//! to a clock that may be hours behind), `clock.rs` (the synchronization signals),
//! `watchdog.rs` (systemd's `READY=1` and `WATCHDOG=1`, sent only while a self-check that
//! the daemon builds passes) and `tls.rs` (which TLS outbound connections speak and which
//! CAs they trust: the system's bundle, read once; every HTTP agent, and MQTT over TLS,
//! takes its roots from there).
//!
//! Uses: `util`.

pub mod boot;
pub mod clock;
pub mod tls;
pub mod tz;
pub mod watchdog;
