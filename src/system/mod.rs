//! `system/`: what this program asks of the machine: the kernel's boot id, and whether the
//! clock is confirmed synchronized (so a window from before a power cut is not trusted to
//! a clock that may be hours behind); systemd's readiness and watchdog notifications
//! (`WATCHDOG=1` only while a self-check that the daemon builds passes); outbound HTTP(S),
//! and which TLS it and MQTT over TLS speak and which CAs they trust (the system's bundle,
//! read once); and the local time zone that schedules follow.
//!
//! Uses: `util`.

pub mod boot;
pub mod clock;
pub mod outbound;
pub mod tls;
pub mod tz;
pub mod watchdog;
