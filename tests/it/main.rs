//! Integration tests: the real binary, real sockets, temporary configs and state.

mod cli;
mod clock;
mod codes;
mod control;
mod crash;
mod disk;
mod docs;
mod doctor;
mod events;
mod fake_http;
mod hang;
mod harness;
mod household;

mod init_tmux;
mod layers;
mod let_in;
mod load;
mod mqtt;
mod notify;
mod onboarding;
mod pairing;
mod persistence;
mod secrets;
mod security;
mod strangers;
mod tls;
mod trust;
mod twilio_setup;
mod watchdog;
mod webhook;
