//! Integration tests: the real binary, real sockets, temporary configs and state.

mod cli;
mod control;
mod harness;
mod load;
mod persistence;
mod security;
mod webhook;
